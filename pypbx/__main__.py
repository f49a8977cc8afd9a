"""`python -m pypbx` runs the command line."""

from pypbx.cli import main

raise SystemExit(main())
