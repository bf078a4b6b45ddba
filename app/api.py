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
from werkzeug.exceptions import HTTPException

from .errors import ErrorSchema, error_payload


class JSONBodyParser(FlaskParser):
    """Request bodies are JSON or nothing.

    webargs treats a non-JSON body as "no body", which would turn a text/plain
    update into a silent no-op; here it is a 415. Any body that does not parse
    (bad UTF-8, too deeply nested, a number too long to convert) is a 400, never a 500.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        body = req.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
        if not body:
            return core.missing
        if not req.is_json:
            abort(415, message="The request body must be JSON (Content-Type: application/json).")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            abort(400, message="The request body is not valid JSON.", errors={"json": ["Invalid JSON body."]})


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
        return error_payload(code, message, errors), code, headers
