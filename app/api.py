"""flask-smorest extension objects tuned to the contract."""

from __future__ import annotations

import json
from threading import Lock
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

    def _raw_load_json(self, req: flask.Request) -> Any:
        body = req.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
        if not body:
            return core.missing
        if not req.is_json:
            abort(415, message="The request body must be JSON (Content-Type: application/json).")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            self._handle_invalid_json_error(exc, req)  # type: ignore[arg-type]


class ArgumentsParser(JSONBodyParser):
    """Also remembers what each query string parsed to.

    Loading a query string through its marshmallow schema (defaults, conversion,
    validation) is a pure function of the schema and the raw query string, and a
    frontend sends the same few query strings over and over: a parse that succeeded
    is kept, for up to QUERY_CACHE_SIZE query strings of up to QUERY_CACHE_MAX_BYTES
    each (the least recently used go first). Failures are never kept: they raise, and
    are parsed again next time. Each request gets its own copy of the result.
    """

    QUERY_CACHE_SIZE = 1024
    QUERY_CACHE_MAX_BYTES = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._query_cache: dict[tuple[ma.Schema, Any, bytes], dict[str, Any]] = {}
        self._query_cache_lock = Lock()

    def parse(self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any) -> Any:
        if location != "query" or not isinstance(argmap, ma.Schema) or kwargs.get("validate"):
            return super().parse(argmap, req, location=location, **kwargs)
        req = req if req is not None else self.get_default_request()
        query = req.query_string
        if len(query) > self.QUERY_CACHE_MAX_BYTES:
            return super().parse(argmap, req, location=location, **kwargs)
        key = (argmap, kwargs.get("unknown"), query)
        cache = self._query_cache
        with self._query_cache_lock:
            parsed = cache.pop(key, None)
            if parsed is not None:
                cache[key] = parsed  # most recently used last
                return dict(parsed)
        parsed = super().parse(argmap, req, location=location, **kwargs)
        with self._query_cache_lock:
            cache[key] = dict(parsed)
            if len(cache) > self.QUERY_CACHE_SIZE:
                del cache[next(iter(cache))]
        return parsed


class Blueprint(BaseBlueprint):
    ARGUMENTS_PARSER = ArgumentsParser()


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
        if code == 400 and errors == {"json": ["Invalid JSON body."]}:
            message = "The request body is not valid JSON."
        return error_payload(code, message, errors), code, headers
