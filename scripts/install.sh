#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the given hash-locked requirement files into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
args=()
for f in "$@"; do args+=(-r "$f"); done
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes "${args[@]}"
