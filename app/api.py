"""flask-smorest extension objects tuned to the contract."""

from __future__ import annotations

import json
from typing import Any

import flask
import marshmallow as ma
from flask_smorest import Api as BaseApi
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import ClientDisconnected, HTTPException

from .errors import ErrorSchema, error_payload


class JSONBodyParser(FlaskParser):
    """Request bodies are JSON or nothing.

    webargs treats a non-JSON body as "no body", which would turn a text/plain
    update into a silent no-op; here it is a 415. Any body that does not parse
    (bad UTF-8, too deeply nested, a number too long to convert) is a 400, never a 500.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        body = read_body(req)
        if not body:
            return core.missing
        if not req.is_json:
            abort(415, message="The request body must be JSON (Content-Type: application/json).")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            abort(
                400,
                message="The request body is not valid JSON.",
                errors={"json": ["Invalid JSON body."]},
            )


def read_body(req: flask.Request) -> bytes:
    """The whole request body, or the error that says why not: 413 past
    MAX_CONTENT_LENGTH (chunked bodies too), 400 for malformed chunked framing or a body
    that ended before its Content-Length."""
    try:
        body = req.get_data(cache=True)
    except ClientDisconnected:
        abort(400, message="The request body ended early: the client closed the connection.")
    except HTTPException:
        raise
    except Exception:  # the server's reader: bad chunk sizes, missing terminators...
        abort(400, message="The request body could not be read: its chunked framing is malformed.")
    limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
    if req.content_length is None and len(body) >= limit and req.environ["wsgi.input"].read(1):
        # werkzeug stops reading a chunked body at the limit without saying it was cut.
        abort(413)
    if req.content_length is not None and len(body) < req.content_length:
        abort(
            400,
            message=f"The request body ended after {len(body)} of the {req.content_length} "
            "bytes its Content-Length announced.",
        )
    return body


class Blueprint(BaseBlueprint):
    ARGUMENTS_PARSER = JSONBodyParser()


class Api(BaseApi):
    """flask-smorest's Api with the contract's error body and the error's own headers kept."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):  # type: ignore[no-untyped-def]
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        # Keep headers the exception carries (Allow on 405, ...); the body is always JSON.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        message = data.get("message")
        errors = data.get("errors") or data.get("messages")
        if code == 500:
            message = None  # details only in the log
            errors = None
        if code == 404 and message is None:
            message = (
                "No such route. The routes are /api/{user_id}/tasks, "
                "/api/{user_id}/tasks/{task_id} and /api/{user_id}/tasks/{task_id}/complete "
                "(see /docs)."
            )
        if code == 405 and message is None:
            message = method_not_allowed_message(headers.get("Allow", ""))
        return error_payload(code, message, errors), code, headers


def method_not_allowed_message(allow: str) -> str:
    """Name the methods the route allows, and the toggle route to a PATCH on a task."""
    allowed = [m.strip() for m in allow.split(",") if m.strip() not in ("", "HEAD", "OPTIONS")]
    message = f"{flask.request.method} is not allowed here; this route allows {', '.join(allowed)}."
    if flask.request.method == "PATCH" and "PUT" in allowed:
        message += " To complete or reopen a task, PATCH its /complete route."
    return message
