"""One JSON error shape for everything the application answers.

``{"code", "status", "message"[, "errors"]}``: no HTML, no traceback, no SQL.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import marshmallow as ma
import psycopg2
from flask import Flask, Response, current_app
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
    """A JSON body with the app's encoder (schema field order, compact)."""
    return current_app.response_class(
        current_app.json.dumps_bytes(payload),  # type: ignore[attr-defined]
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


def register_error_handlers(app: Flask) -> None:
    # Lost connections, timeouts, "database is locked": transient, so 503 + Retry-After.
    app.register_error_handler(OperationalError, _service_unavailable)
    app.register_error_handler(InterfaceError, _service_unavailable)
    # Every pooled connection busy for pool_timeout seconds: overloaded, so also 503.
    app.register_error_handler(PoolTimeoutError, _service_unavailable)
    # Driver errors SQLAlchemy did not wrap (raised while returning a connection to the
    # pool as the server goes away): still the database, still 503.
    app.register_error_handler(psycopg2.OperationalError, _service_unavailable)
    app.register_error_handler(psycopg2.InterfaceError, _service_unavailable)
