#!/usr/bin/env bash
# The production shape on one box, for operators to try and for tests:
#
#   client -> nginx -> gunicorn instance 1 -> PgBouncer (transaction mode) -> PostgreSQL
#                   -> gunicorn instance 2 /            Redis (shared rate limits)
#
#   scripts/stack.sh up            start it all; exits 0 once /readyz answers 200 through
#                                  nginx, and prints BASE_URL=... and STATE=... last
#   scripts/stack.sh down STATE    stop everything `up` started and drop its database
#
# PostgreSQL: the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
# `up` creates its own database tasks_stack_<id> there. Redis: REDIS_URL (default
# redis://127.0.0.1:6379/0). The service's own variables (BETTER_AUTH_SECRET, CORS_ORIGINS,
# RATE_LIMIT_PER_USER, LOG_FORMAT, WEB_CONCURRENCY, ...) are passed on from the environment;
# a .env file is not read. So are nginx's: NGINX_CONN_PER_ADDRESS, and NGINX_TRUSTED_PROXIES
# (the load balancers in front of nginx, whose X-Forwarded-For names the client; empty:
# nginx is the edge). nginx and pgbouncer are installed with apt-get when missing
# (as root). Several stacks can run side by side: each has its own ports and folder.
# Progress goes to stderr; stdout has only the BASE_URL and STATE lines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
INSTANCES=2
READY_TIMEOUT=${STACK_READY_TIMEOUT:-60}

say() { echo "stack: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  echo "usage: $0 up | $0 down STATE" >&2
  exit 2
}

# --- helpers -------------------------------------------------------------------------

find_bin() {  # nginx and pgbouncer live in /usr/sbin, often not on a user's PATH
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true
}

install_packages() {
  [ "$(id -u)" = 0 ] || die "missing: $* (Debian packages). Install them as root" \
    "(apt-get install -y $*) or run this script as root, which installs them."
  say "installing $* with apt-get"
  # The packages' own system services must not start (the stack runs its own copies):
  # policy-rc.d exit 101 tells the maintainer scripts so, for the time of the install.
  local policy=/usr/sbin/policy-rc.d added=0 status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
  fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
    >&2 || status=$?
  if [ "$added" = 1 ]; then rm -f "$policy"; fi
  [ "$status" = 0 ] || die "apt-get install $* failed (exit $status)"
}

free_ports() {  # N distinct free loopback ports (held together while chosen)
  python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])' "$1"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

http_ok() {  # a 2xx answer to GET $1 within 2 s
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" \
    2>/dev/null
}

# PostgreSQL connection parameters and database administration, with the app's driver.
pg() {
  "$ROOT/.venv/bin/python" - "$@" <<'PY'
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2

action, url = sys.argv[1], sys.argv[2]
url = "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url
parts = urlsplit(url)
if action == "params":  # host port user password sslmode, one per line
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    print(parts.hostname or "127.0.0.1", parts.port or 5432, unquote(parts.username or ""),
          unquote(parts.password or ""), query.get("sslmode", ""), sep="\n")
elif action == "url":  # the same server, another database
    print(urlunsplit(parts._replace(path="/" + sys.argv[3])))
else:  # create NAME / drop NAME, connected to the database of the URL
    name = sys.argv[3]
    try:
        conn = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        sys.exit(f"stack: cannot connect to PostgreSQL ({parts.hostname}:{parts.port or 5432}): "
                 + str(exc).strip().splitlines()[0])
    conn.autocommit = True
    with conn.cursor() as cur:
        if action == "create":
            cur.execute(f'CREATE DATABASE "{name}"')
        else:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()
PY
}

# Stop one process: SIGTERM, up to $2 seconds, then SIGKILL.
stop_pid() {
  local pid=$1 wait_s=$2
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((wait_s * 10))); do alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# Stop a gunicorn instance: its whole process group (the master started it as a session
# leader), so workers left behind by a killed master go too.
stop_group() {
  local pgid=$1 wait_s=$2
  group_alive "$pgid" || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq $((wait_s * 10))); do group_alive "$pgid" || return 0; sleep 0.1; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

group_alive() {  # a process of this group that is one of ours (a gunicorn) still runs
  pgrep -g "$1" -f gunicorn >/dev/null
}

# --- down ----------------------------------------------------------------------------

down() {
  local state=$1
  [ -f "$state" ] || die "no such state file: $state"
  local key value dir="" database="" admin_url="" nginx_pid="" pgbouncer_pid=""
  local -a gunicorns=()
  while IFS='=' read -r key value; do
    case $key in
      DIR) dir=$value ;;
      DATABASE) database=$value ;;
      ADMIN_URL) admin_url=$value ;;
      NGINX_PID) nginx_pid=$value ;;
      PGBOUNCER_PID) pgbouncer_pid=$value ;;
      GUNICORN_PID) gunicorns+=("$value") ;;
    esac
  done <"$state"

  # nginx first (no new requests), then the instances, then what they use.
  if [ -z "$nginx_pid" ] && [ -n "$dir" ] && [ -f "$dir/nginx/nginx.pid" ]; then
    nginx_pid=$(cat "$dir/nginx/nginx.pid")
  fi
  if alive "$nginx_pid" && ps -o args= -p "$nginx_pid" | grep -q nginx; then
    stop_pid "$nginx_pid" 10
  fi
  local pid
  for pid in "${gunicorns[@]}"; do stop_group "$pid" 35 & done
  wait
  if alive "$pgbouncer_pid" && ps -o args= -p "$pgbouncer_pid" | grep -q pgbouncer; then
    stop_pid "$pgbouncer_pid" 10
  fi
  if [ -n "$database" ] && [ -n "$admin_url" ]; then
    pg drop "$admin_url" "$database" || say "could not drop database $database"
  fi
  if [ -n "$dir" ] && [[ $dir == */tasks-stack.* ]]; then rm -rf "$dir"; fi
  say "stopped"
}

# --- up ------------------------------------------------------------------------------

STATE=""
DIR=""

on_exit() {  # a failed `up`: show why, then take down what was started
  local status=$?
  [ "$status" = 0 ] && return
  [ -n "$DIR" ] || exit "$status"
  local f
  for f in "$DIR"/migrate.log "$DIR"/pgbouncer/pgbouncer.log "$DIR"/gunicorn-*.log \
           "$DIR"/nginx/error.log "$DIR"/nginx/start.log; do
    if [ -s "$f" ]; then
      echo "--- last lines of $f ---" >&2
      tail -n 25 "$f" >&2
    fi
  done
  say "start failed; taking down what was started"
  if [ -f "$STATE" ]; then down "$STATE" || true; fi
  exit "$status"
}

record() { echo "$1=$2" >>"$STATE"; }

up() {
  if [ -z "${BETTER_AUTH_SECRET:-}" ] && [ -z "${BETTER_AUTH_URL:-}" ] \
     && [ -z "${BETTER_AUTH_JWKS_URL:-}" ]; then
    die "BETTER_AUTH_SECRET is not set (nor BETTER_AUTH_URL): the service refuses to start" \
      "without a way to verify tokens. Export the frontend's secret (32+ characters)" \
      "or its Better Auth URL; this script does not invent one."
  fi
  # NGINX_TRUSTED_PROXIES as set_real_ip_from lines, by the script the nginx image sources
  # too (docker-compose.yml), so the list becomes directives in one place. First, so that a
  # bad entry stops the start (its one line on stderr) before anything was started.
  local real_ip_from
  # shellcheck source=deploy/nginx-real-ip.envsh
  real_ip_from=$(. deploy/nginx-real-ip.envsh && printf '%s' "$NGINX_REAL_IP_FROM") || exit 1
  [ -x .venv/bin/gunicorn ] || ./scripts/install.sh requirements.txt >&2

  local nginx pgbouncer missing=()
  nginx=$(find_bin nginx)
  pgbouncer=$(find_bin pgbouncer)
  [ -n "$nginx" ] || missing+=(nginx)
  [ -n "$pgbouncer" ] || missing+=(pgbouncer)
  if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
    nginx=$(find_bin nginx)
    pgbouncer=$(find_bin pgbouncer)
  fi

  DIR=$(mktemp -d /tmp/tasks-stack.XXXXXXXX)
  chmod 755 "$DIR"  # nginx's workers and pgbouncer (as postgres) reach their folders
  STATE=$DIR/stack.state
  trap on_exit EXIT
  (umask 077 && : >"$STATE")  # it holds the admin database URL
  local id database
  id=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
  database=tasks_stack_$id
  record DIR "$DIR"

  local ports nginx_port pgbouncer_port
  read -r -a ports <<<"$(free_ports $((INSTANCES + 2)))"
  nginx_port=${ports[0]}
  pgbouncer_port=${ports[1]}

  # -- PostgreSQL: our own database, migrated straight (not through PgBouncer) ----------
  local admin_url=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
  local pg_host pg_port pg_user pg_password pg_sslmode
  { read -r pg_host; read -r pg_port; read -r pg_user; read -r pg_password; read -r pg_sslmode; } \
    < <(pg params "$admin_url")
  say "creating database $database on $pg_host:$pg_port"
  pg create "$admin_url" "$database"
  record DATABASE "$database"
  record ADMIN_URL "$admin_url"
  local direct_url
  direct_url=$(pg url "$admin_url" "$database")
  # PgBouncer drops the app's per-connection settings (startup "options"): set them on the
  # database instead (docs/deploy.md, "Connection budget").
  PGCONNECT_TIMEOUT=5 "$ROOT/.venv/bin/python" -c '
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True
with conn.cursor() as cur:
    cur.execute(f"ALTER DATABASE \"{sys.argv[2]}\" SET statement_timeout = {int(sys.argv[3])}")
    cur.execute(f"ALTER DATABASE \"{sys.argv[2]}\" SET timezone = %s", ("UTC",))
' "$direct_url" "$database" "${DB_STATEMENT_TIMEOUT_MS:-5000}"

  say "applying migrations"
  DATABASE_URL=$direct_url PYTHON_DOTENV_DISABLED=1 .venv/bin/flask --app wsgi db upgrade \
    </dev/null >"$DIR/migrate.log" 2>&1 || die "migrations failed"

  # -- PgBouncer, transaction mode ----------------------------------------------------
  local pgb=$DIR/pgbouncer
  mkdir -p "$pgb"
  local server="host=$pg_host port=$pg_port dbname=$database user=$pg_user"
  [ -z "$pg_password" ] || server+=" password=$pg_password"
  (umask 077 && cat >"$pgb/pgbouncer.ini" <<EOF
[databases]
$database = $server

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgbouncer_port
unix_socket_dir =
; Loopback only; the server login is the one in [databases].
auth_type = any
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
; The app sends statement_timeout/timezone as startup options; they are set on the
; database instead.
ignore_startup_parameters = options,extra_float_digits
${pg_sslmode:+server_tls_sslmode = $pg_sslmode}
logfile = $pgb/pgbouncer.log
pidfile = $pgb/pgbouncer.pid
EOF
  )
  local as_user=() pgb_user=postgres
  if [ "$(id -u)" = 0 ]; then  # pgbouncer refuses to run as root
    id -u postgres >/dev/null 2>&1 || pgb_user=nobody
    chown -R "$pgb_user": "$pgb"
    as_user=(-u "$pgb_user")
  fi
  say "starting PgBouncer on 127.0.0.1:$pgbouncer_port"
  "$pgbouncer" -d "${as_user[@]}" "$pgb/pgbouncer.ini" </dev/null >>"$pgb/start.log" 2>&1 \
    || { cat "$pgb/start.log" >&2; die "PgBouncer did not start"; }
  for _ in $(seq 50); do [ -s "$pgb/pgbouncer.pid" ] && break; sleep 0.1; done
  [ -s "$pgb/pgbouncer.pid" ] || die "PgBouncer wrote no pid file"
  record PGBOUNCER_PID "$(cat "$pgb/pgbouncer.pid")"
  for _ in $(seq 50); do port_open "$pgbouncer_port" && break; sleep 0.1; done

  # -- gunicorn instances ---------------------------------------------------------------
  local app_url="postgresql://${pg_user:-postgres}@127.0.0.1:$pgbouncer_port/$database"
  local i port log servers="" pids=()
  for i in $(seq "$INSTANCES"); do
    port=${ports[$((i + 1))]}
    log=$DIR/gunicorn-$i.log
    say "starting gunicorn instance $i on 127.0.0.1:$port (log $log)"
    # setsid: the master leads its own process group, which `down` stops as one.
    DATABASE_URL=$app_url \
    REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0} \
    HOST=127.0.0.1 PORT=$port \
    PROMETHEUS_MULTIPROC_DIR=$DIR/metrics-$i \
    TRUSTED_PROXY_COUNT=1 FORWARDED_ALLOW_IPS=127.0.0.1 \
    PYTHON_DOTENV_DISABLED=1 \
      setsid .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app </dev/null >>"$log" 2>&1 &
    pids+=($!)
    record GUNICORN_PID "$!"
    record GUNICORN_PORT "$port"
    record LOG "$log"
    servers+="server 127.0.0.1:$port max_fails=0; "
  done

  # -- nginx --------------------------------------------------------------------------
  local ngx=$DIR/nginx conf
  mkdir -p "$ngx/tmp"
  conf=$(<deploy/nginx.conf)
  # The template's placeholders, literally (nginx's own $variables stay as they are).
  # shellcheck disable=SC2016
  local listen_ph='${NGINX_LISTEN}' servers_ph='${TASKS_API_SERVERS}' conn_ph='${NGINX_CONN_PER_ADDRESS}'
  # shellcheck disable=SC2016
  local real_ip_ph='${NGINX_REAL_IP_FROM}'
  conf=${conf//"$listen_ph"/127.0.0.1:$nginx_port}
  conf=${conf//"$servers_ph"/$servers}
  conf=${conf//"$conn_ph"/${NGINX_CONN_PER_ADDRESS:-16}}
  conf=${conf//"$real_ip_ph"/$real_ip_from}
  printf '%s\n' "$conf" >"$ngx/tasks.conf"
  cat >"$ngx/nginx.conf" <<EOF
daemon on;
worker_processes auto;
worker_rlimit_nofile 8192;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
    access_log $ngx/access.log;
    client_body_temp_path $ngx/tmp/client_body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    include $ngx/tasks.conf;
}
EOF
  say "starting nginx on 127.0.0.1:$nginx_port" \
    "(trusted load balancers: ${NGINX_TRUSTED_PROXIES:-none})"
  "$nginx" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" \
    </dev/null >>"$ngx/start.log" 2>&1 || die "nginx did not start"
  for _ in $(seq 50); do [ -s "$ngx/nginx.pid" ] && break; sleep 0.1; done
  [ -s "$ngx/nginx.pid" ] || die "nginx wrote no pid file"
  record NGINX_PID "$(cat "$ngx/nginx.pid")"
  local base_url=http://127.0.0.1:$nginx_port
  record BASE_URL "$base_url"

  # -- ready: every instance answers /readyz, and so does nginx ------------------------
  local deadline=$((SECONDS + READY_TIMEOUT)) pid ready
  while :; do
    for pid in "${pids[@]}"; do alive "$pid" || die "gunicorn (pid $pid) exited"; done
    ready=1
    for i in $(seq "$INSTANCES"); do
      port=${ports[$((i + 1))]}
      http_ok "http://127.0.0.1:$port/readyz" || ready=0
    done
    if [ "$ready" = 1 ] && http_ok "$base_url/readyz"; then
      break
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "not ready within ${READY_TIMEOUT} s"
    sleep 0.2
  done
  trap - EXIT
  say "ready"
  echo "BASE_URL=$base_url"
  echo "STATE=$STATE"
}

case ${1:-} in
  up) [ $# = 1 ] || usage; up ;;
  down) [ $# = 2 ] || usage; down "$2" ;;
  *) usage ;;
esac
