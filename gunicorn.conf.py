"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Production defaults for a 2-core machine; every value can be overridden from the
environment (or with gunicorn's own command-line flags, which win over this file).
"""

import glob
import os
import tempfile

from dotenv import load_dotenv
from gunicorn import glogging

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

# Worker model: gunicorn's stock sync workers, two per instance, behind nginx, which
# buffers every request and response so that a slow client never holds a worker (gunicorn's
# deployment guide; deploy/nginx.conf). Chosen by measurement through the production
# shape (bench/stack.py; figures in bench/README.md). Without a buffering proxy in front
# (a local run), a slow client holds a sync worker: GUNICORN_WORKER_CLASS=gthread and
# GUNICORN_THREADS=2 park idle connections instead.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # gthread only; keep DB_POOL_SIZE >= threads
backlog = 2048

timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 30  # on SIGTERM, in-flight requests get this long to finish
# For a threaded worker: keep above the proxy's upstream idle timeout (deploy/nginx.conf:
# 4 s), so that gunicorn never closes a kept-alive connection nginx is about to reuse.
# (A sync worker closes each connection after its response.)
keepalive = 5

# Recycle workers now and then, so that a slow leak cannot grow without bound.
max_requests = 10000
max_requests_jitter = 1000

# Import the app once in the master: a configuration error stops the start with one
# line and exit status 1, and workers share the loaded code.
preload_app = True

if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off the (possibly slow) container disk

# The app writes one JSON line per request itself; gunicorn's access log would repeat it.
accesslog = None


class Logger(glogging.Logger):
    """gunicorn's logger, without an access log to write."""

    # Why: with logconfig_dict set, gunicorn builds every request's access-log fields even
    # though no handler takes them (bench/README.md).
    def access(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201
        """Nothing: the request log is the app's (app/logs.py)."""


logger_class = Logger
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
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "app",
            "stream": "ext://sys.stderr",
        },
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


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
