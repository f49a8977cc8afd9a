#!/bin/sh
# Set up pypbx and start it in the foreground on a configuration directory
# (default: the shipped tutorial example).
set -eu
cd "$(dirname "$0")/.."
CONF="${1:-examples/tutorial}"
sh scripts/install-deps.sh runtime
sh scripts/setup.sh fast
sh scripts/make-sounds.sh "$CONF/sounds"
exec .venv/bin/pypbx run -C "$CONF"
