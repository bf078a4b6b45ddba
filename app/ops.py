"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .errors import RETRY_AFTER_SECONDS, error_payload, json_response
from .models import db

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)

# Created once per process. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by
# gunicorn.conf.py before this module is imported) makes them shared files that
# /metrics sums across the worker processes.
REQUESTS = Counter(
    "tasks_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "tasks_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POOL_CHECKED_OUT = Gauge(
    "tasks_db_pool_checked_out",
    "Database connections in use.",
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    "tasks_db_pool_connections",
    "Database connections open (idle or in use).",
    multiprocess_mode="livesum",
)
UNTRACKED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. Touches no database."""
    return json_response({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the database answers and its schema is at the migrations' head."""
    head = current_app.config["MIGRATIONS_HEAD"]
    try:
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        db.session.rollback()
        return _not_ready("The database is unreachable or has no schema.")
    finally:
        db.session.remove()
    if current != head:
        return _not_ready(f"The database schema is at {current!r}, not at {head!r}.")
    return json_response({"status": "ready", "migration": head}, 200)


def _not_ready(message: str) -> Response:
    return json_response(
        error_payload(503, message), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; 404 when METRICS_ENABLED is off."""
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    request_metrics.flush()  # this process's latest; other workers' are at most a flush old
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def migrations_head(directory: str) -> str | None:
    return ScriptDirectory(directory).get_current_head()


class RequestMetrics:
    """Request counts and latencies, added up in this process and written to the
    Prometheus series in batches.

    Under gunicorn every series is a value in a file shared with /metrics, and
    prometheus_client writes it under a process-wide lock on every ``inc``: a request
    cost five such writes (its count, its latency's sum and bucket, the pool's
    checked-out gauge up and down), ~45 us of a ~600 us request (bench/README.md).
    Here a request adds to a dict under a lock of its own, and the totals reach the
    series every FLUSH_SECONDS (from a thread of this process), when /metrics is served
    by this process, and when the process exits. The pool's checked-out gauge is read
    off the pools at each flush, instead of being moved up and down by every request.

    Prometheus scrapes every 15 s or more, so counts that arrive up to FLUSH_SECONDS
    later change nothing it sees; the histogram buckets and sums are exactly those
    ``observe`` would have written.
    """

    FLUSH_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], list[Any]] = {}
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._bounds = tuple(LATENCY._upper_bounds)  # noqa: SLF001 - the buckets, +Inf last
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._flusher_pid: int | None = None

    def watch_pool(self, engine: Engine) -> None:
        self._engines.add(engine)

    def record(self, labels: tuple[str, str, str], seconds: float) -> None:
        bucket = bisect_left(self._bounds, seconds)  # the first bound >= seconds, as observe
        with self._lock:
            entry = self._pending.get(labels)
            if entry is None:
                entry = self._pending[labels] = [0, 0.0, [0] * len(self._bounds)]
            entry[0] += 1
            entry[1] += seconds
            entry[2][bucket] += 1
        if self._flusher_pid != os.getpid():
            self._start_flusher()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for labels, (count, total, buckets) in pending.items():
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
            counter, histogram = series
            counter.inc(count)
            # What ``count`` calls of histogram.observe would write, in one write each.
            histogram._sum.inc(total)  # noqa: SLF001
            for index, n in enumerate(buckets):
                if n:
                    histogram._buckets[index].inc(n)  # noqa: SLF001
        checked_out = 0
        for engine in list(self._engines):
            checkedout = getattr(engine.pool, "checkedout", None)  # QueuePool; not SQLite's
            if checkedout is not None:
                checked_out += checkedout()
        POOL_CHECKED_OUT.set(checked_out)

    def _start_flusher(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._flusher_pid == pid:
                return
            self._flusher_pid = pid  # per process: a forked worker starts its own
        threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True).start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # never let the thread die; the next flush tries again
                log.exception("could not write request metrics")


request_metrics = RequestMetrics()
atexit.register(request_metrics.flush)  # a worker's last counts, when it exits


def init_metrics(app: Flask) -> None:
    @app.after_request
    def record(response: Response) -> Response:
        # Timed from the request log's start (logs.start_request runs first).
        started = getattr(g._get_current_object(), "started", None)
        req = request._get_current_object()
        if started is None or req.path in UNTRACKED_PATHS:
            return response
        rule = req.url_rule
        # The method is the client's to choose: unknown ones share one label value, so
        # nobody can mint new series at will.
        method = req.method if req.method in KNOWN_METHODS else "OTHER"
        labels = (method, rule.rule if rule is not None else "<unmatched>", str(response.status_code))
        request_metrics.record(labels, time.perf_counter() - started)
        return response

    with app.app_context():
        engine = db.engine
    request_metrics.watch_pool(engine)
    event.listen(engine, "connect", lambda *a: POOL_CONNECTIONS.inc())
    event.listen(engine, "close", lambda *a: POOL_CONNECTIONS.dec())
