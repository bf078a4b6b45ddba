#!/bin/sh
# Container entry point: optionally apply migrations, then run the given command.
# RUN_MIGRATIONS=1 is for a single instance; with many replicas run
# `flask db upgrade` once per release as its own job instead (see docs/deploy.md).
set -eu
if [ "${RUN_MIGRATIONS:-0}" = "1" ]; then
  flask db upgrade
fi
exec "$@"
