"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import time

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
    multiprocess,
)
from sqlalchemy import event, text
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
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def migrations_head(directory: str) -> str | None:
    return ScriptDirectory(directory).get_current_head()


def init_metrics(app: Flask) -> None:
    @app.after_request
    def record(response: Response) -> Response:
        started = g.get("started")  # set by the request log's before_request (logs.py)
        if started is None or request.path in UNTRACKED_PATHS:
            return response
        rule = request.url_rule
        # The method is the client's to choose: unknown ones share one label value, so
        # nobody can mint new series at will.
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        labels = (
            method,
            rule.rule if rule is not None else "<unmatched>",
            str(response.status_code),
        )
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return response

    with app.app_context():
        engine = db.engine
    event.listen(engine, "connect", lambda *a: POOL_CONNECTIONS.inc())
    event.listen(engine, "close", lambda *a: POOL_CONNECTIONS.dec())
    event.listen(engine, "checkout", lambda *a: POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *a: POOL_CHECKED_OUT.dec())
