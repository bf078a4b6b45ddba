"""flask-smorest extension objects tuned to the contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import Api as BaseApi
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.routing import BaseConverter

from . import errors
from .errors import ErrorSchema, error_payload, error_response_component, error_responses
from .etags import not_modified_component
from .models import MAX_ID

# Every route can answer these: authentication, ownership, rate limits, a bug, the database away.
COMMON_ERRORS = (401, 403, 429, 500, 503)
# And every route that reads a body, these.
BODY_ERRORS = (400, 413, 415)

# The path's user id, documented once for every blueprint under /api/{user_id}.
USER_ID_PARAMETER = {
    "in": "path",
    "name": "user_id",
    "required": True,
    "description": "The Better Auth user id; must equal the token's `sub`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


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
            abort(415, message=errors.NOT_JSON)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            abort(400, message=errors.INVALID_JSON, errors={"json": ["Invalid JSON body."]})


def read_body(req: flask.Request) -> bytes:
    """The whole request body, or the error that says why not: 413 past
    MAX_CONTENT_LENGTH (chunked bodies too), 400 for malformed chunked framing or a body
    that ended before its Content-Length."""
    try:
        body = req.get_data(cache=True)
    except ClientDisconnected:
        abort(400, message=errors.BODY_ENDED_EARLY)
    except HTTPException:
        raise
    except Exception:  # the server's reader: bad chunk sizes, missing terminators...
        abort(400, message=errors.BAD_CHUNKED_FRAMING)
    limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
    if req.content_length is None and len(body) >= limit and req.environ["wsgi.input"].read(1):
        # werkzeug stops reading a chunked body at the limit without saying it was cut.
        abort(413)
    if req.content_length is not None and len(body) < req.content_length:
        message = errors.BODY_SHORTER_THAN_LENGTH.format(
            received=len(body), announced=req.content_length
        )
        abort(400, message=message)
    return body


class Blueprint(BaseBlueprint):
    ARGUMENTS_PARSER = JSONBodyParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_components: set[str] = set()  # what its operations refer to

    def operation(self, operation_id: str, *answers: int | str) -> Callable[..., Any]:
        """Name the operation and document the errors (and 304) it can answer: each a
        status, or the name of a kind of error (app/errors.py, ERROR_EXAMPLES)."""
        errors_ = [answer for answer in (*COMMON_ERRORS, *answers) if answer != 304]
        responses, referred = error_responses(*dict.fromkeys(errors_))
        self.error_components |= referred
        if 304 in answers:
            responses["304"] = {"$ref": "#/components/responses/NotModified"}
        return self.doc(operationId=operation_id, responses=responses)


class IdConverter(BaseConverter):
    """An id in a path. Matches any segment: the id is parsed in the view, after
    authentication, so an unauthenticated request cannot learn whether it is well formed."""


def id_param_schema(converter: BaseConverter) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}


def parse_id(raw: str, not_found: Callable[[], NoReturn]) -> int:
    """Path ids are positive integers within the database's range; anything else is
    ``not_found()``."""
    if not raw.isascii() or not raw.isdigit() or raw.startswith("0") or len(raw) > 19:
        not_found()
    number = int(raw)
    if number > MAX_ID:
        not_found()
    return number


class Api(BaseApi):
    """flask-smorest's Api with the contract's error body and the error's own headers kept,
    and what every resource's operations refer to: the error responses, 304, path ids."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app: flask.Flask, **kwargs: Any) -> None:
        super().init_app(app, **kwargs)
        self.error_components: set[str] = set()
        not_modified_component(self.spec)
        # Named for what it holds: the rule (and so the route label of logs and metrics)
        # reads /api/<user_id>/tasks/<task_id:task_id>.
        app.url_map.converters["task_id"] = IdConverter
        self.register_converter(IdConverter, id_param_schema)

    def register_blueprint(self, blp: Any, **options: Any) -> None:
        """Register ``blp``, and the error response components its operations refer to."""
        super().register_blueprint(blp, **options)
        for name in sorted(getattr(blp, "error_components", set()) - self.error_components):
            self.spec.components.response(name, error_response_component(name))
            self.error_components.add(name)

    def handle_http_exception(self, error: HTTPException):  # type: ignore[no-untyped-def]
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        # Keep headers the exception carries (Allow on 405, ...); the body is always JSON.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        message = data.get("message")
        details = data.get("errors") or data.get("messages")
        if code == 500:
            message = None  # details only in the log
            details = None
        if code == 404 and message is None:
            message = errors.NO_SUCH_ROUTE
        if code == 405 and message is None:
            message = method_not_allowed_message(headers.get("Allow", ""))
        return error_payload(code, message, details), code, headers


def method_not_allowed_message(allow: str) -> str:
    """Name the methods the route allows, and the toggle route to a PATCH on a task."""
    allowed = [m.strip() for m in allow.split(",") if m.strip() not in ("", "HEAD", "OPTIONS")]
    method = flask.request.method
    message = errors.METHOD_NOT_ALLOWED.format(method=method, allowed=", ".join(allowed))
    if method == "PATCH" and "PUT" in allowed:
        message += errors.TOGGLE_HINT
    return message
