"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Production defaults for a 2-core machine; every value can be overridden from the
environment (or with gunicorn's own command-line flags, which win over this file).
"""

import gc
import glob
import os
import tempfile

from dotenv import load_dotenv

# A local .env (LOG_FORMAT, PORT, ...) counts for these settings too; real variables win.
load_dotenv()

# Prometheus multiprocess mode: each worker writes its metrics to files in this folder
# and /metrics sums them. It must be set before the app imports prometheus_client.
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"tasks-api-metrics-{os.getpid()}"),
)
os.makedirs(_metrics_dir, exist_ok=True)

# HOST defaults to all interfaces (containers); the local quickstart sets 127.0.0.1.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# Worker model: gthread, 2 workers x 2 threads on 2 cores, chosen by measurement
# (bench/run.py --routes hello,list,get --duration 5 --repeat 2, wrk on the same box,
# 2026-11-30, 0 % steal; bench/README.md "Third round"). Same code, req/s for
# list / get at 32 and 256 connections, and hello at 32:
#   gthread 2x2:  1518 / 1604 and 1459 / 1578, hello 4571   <- chosen
#   gthread 2x1:  1345 / 1582 and 1338 / 1470, hello 3813   (a DB round trip idles the worker)
#   gthread 3x2:  1521 / 1661 and 1416 / 1452, hello 4528   (a third process's memory, no gain)
#   gthread 2x4:  1486 / 1654 and 1451 / 1572, hello 4845   (p99 at 256: 436 ms against 374)
#   sync 3:       1541 / 1718 and 1546 / 1667, hello 4527
#   sync 4:       1615 / 1798 and 1567 / 1776, hello 4595   (p99 at 256: 180 ms against 374)
# sync 4 served 6-12 % more here, with half the p99 at 256 connections, but it keeps no
# connection alive (a new TCP connection per request from the load balancer) and a slow
# client holds a whole worker (4 slow uploads stop the instance): it needs a buffering
# proxy such as nginx in front. gthread's poller parks idle and slow connections
# without a thread, so it is the default; behind a buffering proxy,
# GUNICORN_WORKER_CLASS=sync WEB_CONCURRENCY=4 GUNICORN_THREADS=1 is the faster choice.
# Threads overlap a request's database round trip with another's Python work; more
# threads than that only add GIL switching. (Earlier measurements, before the
# connections were balanced across workers, are in bench/README.md; their gthread
# figures were halved whenever one worker held every connection.)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
if worker_class == "gthread":
    # gthread that spreads connections evenly over the workers and refuses (rather
    # than resets) connections once SIGTERM arrives (app/workers.py).
    worker_class = "app.workers.BalancedThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))  # keep DB_POOL_SIZE >= threads
# Connections waiting for a thread; past this the kernel queues them.
worker_connections = 1000
backlog = 2048

timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 30  # on SIGTERM, in-flight requests get this long to finish
# Keep above the proxy's upstream idle timeout (deploy/nginx.conf: 4 s), so that gunicorn
# never closes a kept-alive connection nginx is about to reuse.
keepalive = 5

# Recycle workers now and then, so a slow leak cannot grow without bound (none is
# measured: bench/soak.py, +0.1 % over 5 minutes without recycling). The worker class
# restarts one worker at a time and exits fast (app/workers.py).
max_requests = 10000
max_requests_jitter = 1000

# Import the app once in the master: a configuration error stops the start with one
# line and exit status 1, and workers share the loaded code.
preload_app = True

if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off the (possibly slow) container disk

# The app writes one JSON line per request itself; gunicorn's access log would repeat it.
# The logger class also skips building access entries nobody writes (app/workers.py).
accesslog = None
logger_class = "app.workers.QuietAccessLogger"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "app": {
            "()": "app.logs.JSONFormatter"
            if os.environ.get("LOG_FORMAT", "json").lower() == "json"
            else "app.logs.TextFormatter"
        }
    },
    "filters": {"request_id": {"()": "app.logs.RequestIdFilter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"},
        # The app's root handler, as app/logs.py makes it (same name, so the app replaces it
        # rather than adding a second): a SIGHUP re-applies this configuration, which would
        # otherwise leave the root logger without one and the request log silent.
        "tasks-api": {
            "class": "logging.StreamHandler",
            "formatter": "app",
            "filters": ["request_id"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": loglevel.upper(), "handlers": ["tasks-api"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
}

# gunicorn 27's control socket lives at one fixed path per user: several instances on
# one host would fight over it, and operators here use signals (TERM, HUP, TTIN/TTOU).
control_socket_disable = True

# Trust X-Forwarded-* only from these proxy addresses (comma-separated).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):  # type: ignore[no-untyped-def]
    # Once per master start (not on SIGHUP, which re-reads this file while the workers
    # still write their series): stale files of an earlier run would be summed into the
    # new counts.
    for stale in glob.glob(os.path.join(_metrics_dir, "*.db")):  # only prometheus_client's
        os.remove(stale)


def when_ready(server):  # type: ignore[no-untyped-def]
    # On SIGTERM the workers refuse new connections before their final drain, rather
    # than resetting those that arrive while the socket closes (app/workers.py).
    from app.workers import watch_for_shutdown

    watch_for_shutdown(server)


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    # The preloaded app's objects (~100,000) are never freed: out of the collector's
    # sight, so a worker's full collections skip them (one took ~30 ms with them, every
    # few thousand requests, and touched their pages, undoing copy-on-write sharing).
    gc.freeze()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    # In the worker, once it has stopped: skip the interpreter's slow teardown.
    from app.workers import exit_worker_now

    exit_worker_now(worker)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
