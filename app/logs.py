"""Structured logs: one JSON line per request and per error; request ids.

Never logged: tokens, secrets, request bodies, query strings.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HANDLER_NAME = "tasks-api"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
request_log = logging.getLogger("tasks.request")
_ENCODER = json.JSONEncoder(default=str)  # for what orjson refuses (lone surrogates)


def new_request_id() -> str:
    """32 random hex digits (the shape of ``uuid4().hex``, at a fifth of its cost)."""
    return os.urandom(16).hex()


class JSONFormatter(logging.Formatter):
    """One compact JSON object per line, encoded with orjson (the standard library's
    encoder cost ~12 us a line inside a request); anything orjson cannot encode is
    written with ``str``, and a line it refuses (a lone surrogate) by the standard
    library. Times are UTC with milliseconds: ``2026-11-30T09:06:10.869+00:00``."""

    _second: tuple[int, str] = (-1, "")  # the last second seen, formatted

    def _time(self, created: float) -> str:
        second = int(created)
        cached = self._second  # one read: threads replace the pair whole
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        millis = min(int((created - second) * 1000), 999)
        return f"{cached[1]}.{millis:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        request_id = getattr(record, "request_id", None)
        if request_id and "request_id" not in entry:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            return _ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s%(details)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        record.details = (" " + " ".join(f"{k}={v}" for k, v in fields.items())) if fields else ""
        return super().format(record)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
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
    # Records need not say which source line, thread or multiprocessing process logged
    # them: neither format shows it, and finding out costs every record (the logging
    # HOWTO's "Optimization" section).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False


class RequestLine:
    """Makes the request log's records: what ``request_log.log(level, "request",
    extra={"fields": ...})`` makes, for less.

    ``Logger.makeRecord`` builds each record from scratch (about 30 attributes, the
    source file's name split apart, the level's name looked up): a third of the cost of
    a request line. Here a record starts as a copy of one made by ``makeRecord`` and
    only what differs from line to line is set: the time, the level, the process and
    thread (where logging records them) and the fields. tests/test_ops.py checks it
    against ``makeRecord``.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._prototype: dict[str, Any] | None = None

    def record(self, level: int, fields: dict[str, Any]) -> logging.LogRecord:
        prototype = self._prototype
        if prototype is None:
            made = self.logger.makeRecord(  # as Logger.log makes it, no source lookup
                self.logger.name, level, "(unknown file)", 0, "request", (), None,
                "(unknown function)",
            )
            prototype = self._prototype = dict(made.__dict__)
        record = logging.LogRecord.__new__(logging.LogRecord)
        attributes = record.__dict__
        attributes.update(prototype)
        now = time.time()
        attributes["created"] = now
        attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
        attributes["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
        attributes["levelno"] = level
        attributes["levelname"] = logging.getLevelName(level)
        if logging.logThreads:
            attributes["thread"] = threading.get_ident()
            attributes["threadName"] = threading.current_thread().name
        if logging.logProcesses and hasattr(os, "getpid"):
            attributes["process"] = os.getpid()
        attributes["fields"] = fields
        return record

    def log(self, level: int, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.handle(self.record(level, fields))


def init_request_logging(app: Flask) -> None:
    line = RequestLine(request_log)

    @app.before_request
    def start_request() -> None:
        ctx = g._get_current_object()  # one context lookup, not one per attribute
        ctx.started = time.perf_counter()  # also the start of the latency metric (ops.py)
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        ctx.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()

    @app.after_request
    def log_request(response: Response) -> Response:
        ctx = g._get_current_object()
        req = request._get_current_object()
        request_id = getattr(ctx, "request_id", None) or new_request_id()
        response.headers[REQUEST_ID_HEADER] = request_id
        level = logging.DEBUG if req.path in QUIET_PATHS else logging.INFO
        if not request_log.isEnabledFor(level):
            return response
        started = getattr(ctx, "started", None)
        identity = getattr(ctx, "identity", None)
        rule = req.url_rule
        line.log(
            level,
            {
                "method": req.method,
                "route": rule.rule if rule is not None else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                if started is not None
                else None,
                "user_id": identity.user_id if identity is not None else None,
                # The client's address (behind TRUSTED_PROXY_COUNT proxies, the forwarded one).
                "remote_addr": req.remote_addr,
                "request_id": request_id,
            },
        )
        return response
