#!/usr/bin/env bash
# Quickstart, step 2: install everything and run the test suite.
# SQLite by default; set TEST_DATABASE_URL=postgresql://... to run the same tests on PostgreSQL.
# Extra arguments go to pytest (e.g. scripts/test.sh -k toggle).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install.sh requirements.txt requirements-dev.txt
. .venv/bin/activate
exec python -m pytest "$@"
