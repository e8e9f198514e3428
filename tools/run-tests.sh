#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what it needs
# (Debian packages, tox), then runs every tox environment CI runs.
#
# tox goes into a virtualenv of its own ($TOX_VENV, default ./.venv-tox):
# Debian's /usr/bin/python3 is "externally managed" (PEP 668) and refuses a
# plain `pip install`. The virtualenv is made by the python3 first on PATH,
# Debian's or any other.
#
#   tools/run-tests.sh [PYTEST ARGS...]   bootstrap, then run the suite
#   tools/run-tests.sh --bootstrap-only   install Debian packages and tox only
set -euo pipefail
cd "$(dirname "$0")/.."
BOOTSTRAP_ONLY=""
if [ "${1:-}" = "--bootstrap-only" ]; then
    BOOTSTRAP_ONLY=1
    shift
fi
tools/install-deps.sh
TOX_VENV=${TOX_VENV:-.venv-tox}
# A venv left by an interpreter that is gone (or half made) is made again.
if ! "$TOX_VENV/bin/python" -c 'import tox' >/dev/null 2>&1; then
    rm -rf "$TOX_VENV"
    python3 -m venv "$TOX_VENV"
    "$TOX_VENV/bin/python" -m pip install -q --disable-pip-version-check 'tox>=4'
fi
if [ -n "$BOOTSTRAP_ONLY" ]; then
    echo "tox ready: $TOX_VENV/bin/tox ($("$TOX_VENV/bin/python" -m tox --version | head -n 1))"
    exit 0
fi
# Arguments, when given, go to pytest; none keeps each env's own test paths.
if [ $# -gt 0 ]; then
    exec "$TOX_VENV/bin/python" -m tox -e "${TOX_ENVS:-py3,heat}" -- "$@"
fi
exec "$TOX_VENV/bin/python" -m tox -e "${TOX_ENVS:-py3,heat}"
