#!/bin/sh
# Set up pypbx and start it in the foreground on a configuration directory
# (default: the shipped tutorial example).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh fast
exec .venv/bin/pypbx run -C "${1:-examples/tutorial}"
