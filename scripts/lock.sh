#!/usr/bin/env sh
# Regenerate the pinned, hash-locked requirement files from the *.in lists.
# Needs uv (pip install uv); run from the repository root. Resolved for Python 3.11.0, the
# oldest supported, so that the lock installs on every 3.11 (redis needs async-timeout
# before 3.11.3; Debian bookworm ships 3.11.2).
set -eu
uv pip compile requirements.in --python-version 3.11.0 --generate-hashes -o requirements.txt
uv pip compile requirements-dev.in --python-version 3.11.0 --generate-hashes -o requirements-dev.txt
