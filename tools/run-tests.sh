#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what it needs
# (Debian packages, tox), then runs every tox environment CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
python3 -m pip install -q --disable-pip-version-check 'tox>=4'
# Arguments, when given, go to pytest; none keeps each env's own test paths.
if [ $# -gt 0 ]; then
    exec python3 -m tox -e "${TOX_ENVS:-py3,heat}" -- "$@"
fi
exec python3 -m tox -e "${TOX_ENVS:-py3,heat}"
