#!/usr/bin/env sh
# Regenerate the pinned, hash-locked requirement files from the *.in lists.
# Needs uv (pip install uv); run from the repository root.
set -eu
uv pip compile requirements.in --python-version 3.11.7 --generate-hashes -o requirements.txt
uv pip compile requirements-dev.in --python-version 3.11.7 --generate-hashes -o requirements-dev.txt
