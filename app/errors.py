"""One JSON error shape for everything the application answers.

``{"code", "status", "message"[, "errors"]}``: no HTML, no traceback, no SQL.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import marshmallow as ma
import psycopg2
from flask import Flask, Response, current_app, request
from marshmallow import fields
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

DEFAULT_MESSAGES = {
    400: "The request could not be understood.",
    401: "A valid bearer token is required.",
    403: "Access to this resource is forbidden.",
    404: "The requested resource was not found.",
    405: "The method is not allowed for this resource.",
    413: "The request body is larger than 64 KiB.",
    415: "The request body must be JSON (Content-Type: application/json).",
    422: "Validation failed",
    429: "Too many requests; slow down.",
    500: "An internal error occurred.",
    503: "The service is temporarily unavailable; try again shortly.",
}


class ErrorSchema(ma.Schema):
    """Every error the service answers has this shape."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "The status's reason phrase."})
    message = fields.String(required=True, metadata={"description": "One human sentence."})
    errors = fields.Dict(
        metadata={
            "description": "Validation failures, keyed by location (json, query, path) "
            "and then by field.",
        }
    )


def error_payload(code: int, message: str | None = None, errors: Any = None) -> dict[str, Any]:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    payload: dict[str, Any] = {
        "code": code,
        "status": phrase,
        "message": message or DEFAULT_MESSAGES.get(code) or phrase,
    }
    if errors:
        payload["errors"] = errors
    return payload


def json_response(payload: Any, status: int = 200, headers: Any = None) -> Response:
    """A JSON body with the app's encoder (fields in their order, compact)."""
    return current_app.response_class(
        current_app.json.dumps(payload),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def _service_unavailable(exc: SQLAlchemyError) -> Response:
    # Log the driver's class only: the statement and its parameters stay out of logs.
    orig = getattr(exc, "orig", None)
    log.error("database unavailable: %s", type(orig or exc).__name__)
    return json_response(
        error_payload(503, "The database is unavailable; try again shortly."),
        503,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# Unread body a 413 reads and discards, so that the connection can serve the next
# request (gunicorn would otherwise drop it without saying Connection: close).
DRAIN_LIMIT = 8 * 1024 * 1024


def drain_refused_body(response: Response) -> Response:
    if response.status_code == 413:
        stream = request.environ.get("wsgi.input")
        drained = 0
        try:
            while stream is not None and drained < DRAIN_LIMIT:
                chunk = stream.read(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except Exception:  # noqa: S110 - a body that cannot be read is not ours to drain
            pass
    return response


def register_error_handlers(app: Flask) -> None:
    app.after_request(drain_refused_body)
    # Lost connections, timeouts, "database is locked": transient, so 503 + Retry-After.
    app.register_error_handler(OperationalError, _service_unavailable)
    app.register_error_handler(InterfaceError, _service_unavailable)
    # Every pooled connection busy for pool_timeout seconds: overloaded, so also 503.
    app.register_error_handler(PoolTimeoutError, _service_unavailable)
    # Driver errors SQLAlchemy did not wrap (raised while returning a connection to the
    # pool as the server goes away): still the database, still 503.
    app.register_error_handler(psycopg2.OperationalError, _service_unavailable)
    app.register_error_handler(psycopg2.InterfaceError, _service_unavailable)


# Every error response the OpenAPI document describes: its component name, and an
# example as the service sends it.
ERROR_EXAMPLES: dict[int, tuple[str, str, Any]] = {
    400: ("BadRequest", "The request body is not valid JSON.", {"json": ["Invalid JSON body."]}),
    401: ("Unauthorized", DEFAULT_MESSAGES[401], None),
    403: ("Forbidden", "The token does not grant access to this user's tasks.", None),
    404: ("NotFound", "Task not found.", None),
    409: ("Conflict", "A request with this Idempotency-Key is still running; retry shortly.", None),
    412: (
        "PreconditionFailed",
        "The task has changed since the ETag in If-Match; fetch it again.",
        None,
    ),
    413: ("PayloadTooLarge", DEFAULT_MESSAGES[413], None),
    415: ("UnsupportedMediaType", DEFAULT_MESSAGES[415], None),
    422: ("ValidationFailed", "Validation failed", {"json": {"title": ["Must not be blank."]}}),
    429: (
        "TooManyRequests",
        "Too many requests: the limit is 300 per 1 minute; retry in 12 s.",
        None,
    ),
    500: ("InternalError", DEFAULT_MESSAGES[500], None),
    503: ("ServiceUnavailable", "The database is unavailable; try again shortly.", None),
}
_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "RFC 6750 challenge, e.g. "
            '`Bearer realm="tasks", error="invalid_token"`.',
            "schema": {"type": "string"},
        }
    },
    409: {"Retry-After": _RETRY_AFTER},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


def error_response_components() -> dict[str, dict[str, Any]]:
    """The error responses as OpenAPI response components, by name."""
    components = {}
    for code, (name, message, errors) in ERROR_EXAMPLES.items():
        component: dict[str, Any] = {
            "description": http.HTTPStatus(code).phrase,
            "content": {
                "application/json": {
                    "schema": ErrorSchema,
                    "example": error_payload(code, message, errors),
                }
            },
        }
        if code in ERROR_HEADERS:
            component["headers"] = ERROR_HEADERS[code]
        components[name] = component
    return components
