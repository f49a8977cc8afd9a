#!/bin/sh
# Create .venv and install pypbx into it (editable), with the extras given as arguments.
# Usage: scripts/setup.sh [test,lint]
set -eu
cd "$(dirname "$0")/.."
EXTRAS="${1:-fast}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
