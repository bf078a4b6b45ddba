#!/usr/bin/env bash
# The example frontend, all three parts with one command (see README.md):
#   1. the Tasks API (gunicorn, this repository), trusting Better Auth's JWKS only
#      (BETTER_AUTH_URL; no shared secret), CORS for the page's origin, SQLite in a temp folder;
#   2. Better Auth (auth-server.mjs: email + password, the jwt() plugin), in memory;
#   3. the page (page-server.mjs), after generating src/schema.d.ts from the running API's
#      /openapi.json with openapi-typescript and compiling src/ with tsc.
# Ctrl-C stops all three; users and tasks are forgotten.
#
# Ports: AUTH_PORT (3000), API_PORT (8000), WEB_PORT (5173), all on 127.0.0.1. The page is
# http://127.0.0.1:$WEB_PORT: use that host name, not localhost (the origins must match).
# Needs Python 3.11+ and Node.js 20.19+; the first run installs both sides' dependencies.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$HERE"

HOST=127.0.0.1
unset NODE_ENV  # NODE_ENV=production would make Better Auth set Secure cookies, which http cannot carry
AUTH_PORT=${AUTH_PORT:-3000}
API_PORT=${API_PORT:-8000}
WEB_PORT=${WEB_PORT:-5173}
AUTH_URL="http://$HOST:$AUTH_PORT"
API_URL="http://$HOST:$API_PORT"
WEB_URL="http://$HOST:$WEB_PORT"

say() { printf '[example] %s\n' "$*"; }

# --- dependencies (first run only) -----------------------------------------------------
if [ ! -x "$ROOT/.venv/bin/gunicorn" ]; then
  say "installing the API's Python packages into $ROOT/.venv"
  "$ROOT/scripts/install.sh" requirements.txt
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the page's npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

STATE=$(mktemp -d "${TMPDIR:-/tmp}/tasks-example.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$STATE"
}
trap cleanup EXIT
trap 'say "stopping"; exit 0' INT TERM

wait_for() {  # URL NAME PID: until the URL answers, or the process has died
  local url=$1 name=$2 pid=$3
  for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then say "$name exited before it was ready"; exit 1; fi
    if "$ROOT/.venv/bin/python" - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).close()
EOF
    sleep 0.2
  done
  say "$name did not answer at $url within 60 s"; exit 1
}

# --- 1. the Tasks API ------------------------------------------------------------------
# Set explicitly, so a developer's .env cannot add a shared secret or change the origins:
# an empty value counts as unset for the service, and real variables win over .env.
export DATABASE_URL="sqlite:///$STATE/tasks.db"
export BETTER_AUTH_URL="$AUTH_URL" BETTER_AUTH_SECRET="" BETTER_AUTH_JWKS_URL=""
export JWT_ISSUER="" JWT_AUDIENCE="" REDIS_URL=""
export CORS_ORIGINS="$WEB_URL"
export HOST PORT="$API_PORT" LOG_FORMAT="${LOG_FORMAT:-text}"
say "API: migrating $DATABASE_URL"
(cd "$ROOT" && .venv/bin/flask --app wsgi db upgrade >"$STATE/migrate.log" 2>&1) \
  || { cat "$STATE/migrate.log"; exit 1; }
(cd "$ROOT" && exec .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app) &
pids+=($!)
api_pid=$!

# --- 2. Better Auth --------------------------------------------------------------------
# A new secret each run: storage is in memory, so nothing it protects outlives the run.
BETTER_AUTH_SECRET=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64url"))') \
  AUTH_URL="$AUTH_URL" WEB_ORIGIN="$WEB_URL" node auth-server.mjs &
pids+=($!)
auth_pid=$!

wait_for "$API_URL/healthz" "the API" "$api_pid"
wait_for "$AUTH_URL/api/auth/jwks" "Better Auth" "$auth_pid"

# --- 3. the page -----------------------------------------------------------------------
say "generating src/schema.d.ts from $API_URL/openapi.json"
npx --no -- openapi-typescript "$API_URL/openapi.json" -o src/schema.d.ts >"$STATE/generate.log" 2>&1 \
  || { cat "$STATE/generate.log"; exit 1; }
say "compiling src/ (tsc --strict)"
npx --no -- tsc -p tsconfig.json
WEB_URL="$WEB_URL" AUTH_URL="$AUTH_URL" API_URL="$API_URL" node page-server.mjs &
pids+=($!)
wait_for "$WEB_URL/config.json" "the page server" "$!"

say "Better Auth: $AUTH_URL   API: $API_URL"
say "ready: open $WEB_URL"
# Until Ctrl-C, or until one of the three stops (then the others are stopped too).
set +e
wait -n "${pids[@]}"
status=$?
say "a server stopped (status $status); stopping the others"
exit "$status"
