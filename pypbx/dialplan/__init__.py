"""The dial plan: extensions.conf model, patterns, expressions and the interpreter."""
