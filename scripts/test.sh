#!/bin/sh
# Set everything up and run the whole test suite: Debian test peers, venv, lint, pytest.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/setup.sh "fast,test,lint"
# atheris (libFuzzer) ships wheels for x86_64 only: without it its campaign is skipped
.venv/bin/python -m pip install -q -e ".[fuzz]" \
    || echo "atheris could not be installed: tests/security/test_atheris.py will skip"
sh scripts/make-sounds.sh examples/tutorial/sounds
echo "== lint"
.venv/bin/ruff check pypbx tests bench
.venv/bin/ruff format --check pypbx tests bench
.venv/bin/mypy pypbx
if [ "$#" -eq 0 ]; then
    echo "== long seeded fuzz campaigns and live attack tests"
    .venv/bin/python -m pytest -q -m slow -p no:cacheprovider
fi
echo "== tests"
.venv/bin/python -m pytest -m "not slow" "$@"
