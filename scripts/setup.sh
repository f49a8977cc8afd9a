#!/bin/sh
# Create .venv and install pypbx into it (editable), with the extras given as arguments.
# Usage: scripts/setup.sh [test,lint]
set -eu
cd "$(dirname "$0")/.."
EXTRAS="${1:-fast}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian's python3 ships venv separately.
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
