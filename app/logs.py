"""Logs: one line per request and per error, JSON or text; request ids.

Never logged: tokens, secrets, request bodies, query strings.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HANDLER_NAME = "tasks-api"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
request_log = logging.getLogger("tasks.request")


# What every record has; anything else on a record came from the call's ``extra``.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, process (the pid:
    which worker), message, then the record's extra fields (the request line's method,
    route, status, ...) and the exception, if any."""

    # Why: one dict dumped once, not a general formatter's field merging (bench/README.md).
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in RECORD_ATTRIBUTES)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = g.get("request_id")
        return True


def formatter_for(fmt: str) -> logging.Formatter:
    return TextFormatter() if fmt == "text" else JSONFormatter()


def configure_logging(level: str, fmt: str) -> None:
    """Send the root logger to stderr in the chosen format (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter_for(fmt))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # No line says which thread wrote it: records need not look the thread up.
    logging.logThreads = logging.logMultiprocessing = False


def init_request_logging(app: Flask) -> None:
    @app.before_request
    def start_request() -> None:
        g.started = time.perf_counter()  # also the start of the latency metric (ops.py)
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

    @app.after_request
    def log_request(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        if not request_log.isEnabledFor(level):
            return response
        started = g.get("started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        identity = g.get("identity")
        rule = request.url_rule
        route = rule.rule if rule is not None else None
        write_line(
            level,
            {
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": identity.user_id if identity is not None else None,
                # The client's address (behind TRUSTED_PROXY_COUNT proxies, the forwarded one).
                "remote_addr": request.remote_addr,
                "request_id": request_id,
            },
        )
        return response


def write_line(level: int, fields: dict[str, Any]) -> None:
    """The request's line: a record made from its fields and handed to the request log.
    Why: ``Logger.log`` would also look up the caller's file and line (bench/README.md)."""
    message = "{method} {route} {status} {duration_ms}ms".format(**fields)
    record = logging.makeLogRecord(
        {
            "name": request_log.name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": message,
            **fields,
        }  # fmt: skip
    )
    request_log.handle(record)
