#!/usr/bin/env bash
# Quickstart, step 1: install, configure a local secret, migrate, and serve on SQLite.
# Safe to run again: it reuses .venv and .env and only applies new migrations.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install.sh requirements.txt
. .venv/bin/activate

if [ ! -f .env ]; then
  secret=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')
  umask 077
  {
    echo "# Written by scripts/serve.sh for a local run; see .env.example for every variable."
    echo "BETTER_AUTH_SECRET=$secret"
    echo "CORS_ORIGINS=http://localhost:3000"
    echo "LOG_FORMAT=text"
  } > .env
  echo "Wrote .env with a generated BETTER_AUTH_SECRET."
fi

flask db upgrade
echo
echo "Tasks API on http://127.0.0.1:${PORT:-8000}  (docs: http://127.0.0.1:${PORT:-8000}/docs)"
echo "Get a token for a user:  .venv/bin/flask token create USER_ID"
echo "Browser origins allowed (CORS_ORIGINS in .env): $(python -c 'import dotenv; dotenv.load_dotenv(); from app.config import from_env; print(", ".join(from_env()["CORS_ORIGINS"]) or "none")')"
echo
HOST=${HOST:-127.0.0.1} exec gunicorn -c gunicorn.conf.py wsgi:app
