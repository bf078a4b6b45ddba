"""The error contract, in one place: one JSON shape, a fixed reason phrase per status, and
the sentence of every error message the service (and nginx in front of it) sends.

``{"code", "status", "message"[, "errors"]}``: no HTML, no traceback, no SQL. The handlers,
the OpenAPI examples and nginx's own error pages (deploy/nginx.conf, tested against this
module) all take their words from here, so a sentence changes in one place.
"""

from __future__ import annotations

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

# The reason phrases as the service has always spelled them. Fixed here rather than taken
# from the standard library's status enum, whose phrases change with the Python version
# (3.13 says "Content Too Large" and "Unprocessable Content"); clients read `code` anyway.
PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    422: "Unprocessable Entity",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
UNKNOWN_PHRASE = "Error"

# --------------------------------------------------------------------------- messages
# Every `message` the service sends. Those with {placeholders} are filled in where sent.

# Requests and bodies (app/api.py)
INVALID_JSON = "The request body is not valid JSON."
NOT_JSON = "The request body must be JSON (Content-Type: application/json)."
BODY_ENDED_EARLY = "The request body ended early: the client closed the connection."
BAD_CHUNKED_FRAMING = "The request body could not be read: its chunked framing is malformed."
BODY_SHORTER_THAN_LENGTH = (
    "The request body ended after {received} of the {announced} bytes its Content-Length announced."
)
NO_SUCH_ROUTE = (
    "No such route. The routes are /api/{user_id}/tasks, /api/{user_id}/tasks/{task_id}, "
    "/api/{user_id}/tasks/{task_id}/complete, /api/{user_id}/tasks/{task_id}/move, "
    "/api/{user_id}/lists, /api/{user_id}/lists/{list_id} and "
    "/api/{user_id}/lists/{list_id}/move (see /docs)."
)
METHOD_NOT_ALLOWED = "{method} is not allowed here; this route allows {allowed}."
TOGGLE_HINT = " To complete or reopen a task, PATCH its /complete route."
VALIDATION_FAILED = "Validation failed"

# Authentication and ownership (app/auth.py)
NO_TOKEN = "A bearer token is required: send the header Authorization: Bearer <token>."
NOT_BEARER = (
    "The Authorization header must be Bearer <token>: the word Bearer, a space, then the token."
)
EMPTY_BEARER = "The Authorization header has no token after Bearer."
FORBIDDEN = "The token does not grant access to this user's tasks."
# Why a token was refused: they say the fix and reveal no key or secret. ASCII without
# double quotes: each sentence is also the WWW-Authenticate error_description.
TOKEN_TOO_LONG = "The token is too long."
TOKEN_MALFORMED = "The token is malformed: a JWT is three base64url parts joined by dots."
TOKEN_REPEATS_NAME = (
    "The token repeats {name}; each claim and header parameter may appear once (RFC 8725)."
)
TOKEN_ALG_MISSING = "The token's algorithm (alg) is missing or not accepted."
TOKEN_METHOD_NOT_CONFIGURED = "The token's algorithm is not accepted: no {method} is configured."
TOKEN_EXPIRED = "The token has expired."
TOKEN_NOT_YET_VALID = "The token is not valid yet (its nbf or iat is in the future): check clocks."
TOKEN_MISSING_CLAIM = "The token has no {claim} claim, which is required."
TOKEN_NOT_A_NUMBER = "The token's {claim} claim must be a number of seconds since 1970."
TOKEN_WRONG_ISSUER = "The token's iss claim is not the issuer this service expects."
TOKEN_WRONG_AUDIENCE = "The token's aud claim is not the audience this service expects."
TOKEN_SUB_NOT_STRING = "The token's sub claim must be a string: the user id."
TOKEN_BAD_SUB = "The token's sub claim must be a user id: 1-255 characters, no control characters."
TOKEN_BAD_SIGNATURE = "The token's signature does not verify with this service's keys."
TOKEN_UNKNOWN_KEY = "The token's key (kid) is not in the auth server's key set."
TOKEN_ALG_NOT_FOR_KEY = "The token's algorithm (alg) is not accepted for its key."
TOKEN_INVALID = "The token is invalid."

# Resources (app/tasks/, app/lists/)
TASK_NOT_FOUND = "Task not found."
TASK_CHANGED = "The task has changed since the ETag in If-Match; fetch it again."
LIST_NOT_FOUND = "List not found."
LIST_CHANGED = "The list has changed since the ETag in If-Match; fetch it again."
KEY_REUSED = "This Idempotency-Key was used with another body; use a new key."
KEY_RUNNING = "A request with this Idempotency-Key is still running; retry shortly."
NO_SUCH_TASK = "No such task: it is not one of yours."
NO_SUCH_LIST = "No such list: it is not one of yours."
USE_MOVE = "Change it with POST /api/{user_id}/tasks/{task_id}/move."
USE_LIST_MOVE = "Change it with POST /api/{user_id}/lists/{list_id}/move."
PARENT_IN_OTHER_LIST = (
    "parent_id is in list {parent_list}, not in list {list_id}: a subtask is in its parent's list."
)
UNDER_ITSELF = "A task cannot be moved under itself or one of its subtasks."
TOO_DEEP = "Tasks nest at most {limit} levels deep; this would put one at level {depth}."
NOT_A_SIBLING = (
    "after_id must be a sibling at the destination: a task in list {list_id} under {parent}."
)
AFTER_ITSELF = "after_id must be another task than the one being moved."
AFTER_ITSELF_LIST = "after_id must be another list than the one being moved."
TOO_MANY_LISTS = "A user has at most {limit} lists, the default one included; delete one first."
DEFAULT_LIST_STAYS = "The default list cannot be deleted; rename it, or delete its tasks."
CURSOR_EXPIRED = (
    "This cursor is older than the deletions the service remembers ({days} days): start "
    "again without a cursor."
)
BAD_CURSOR = "Not a cursor of this feed: send back a cursor it answered, or none."

# Limits and the service's health
TOO_MANY_REQUESTS = "Too many requests: the limit is {limit}; retry in {seconds} s."
DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."

# A status's message when nothing more specific was said.
DEFAULT_MESSAGES = {
    400: "The request could not be understood.",
    401: "A valid bearer token is required.",
    403: "Access to this resource is forbidden.",
    404: "The requested resource was not found.",
    405: "The method is not allowed for this resource.",
    413: "The request body is larger than 64 KiB.",
    415: NOT_JSON,
    422: VALIDATION_FAILED,
    429: "Too many requests; slow down.",
    500: "An internal error occurred.",
    503: "The service is temporarily unavailable; try again shortly.",
}

# What nginx answers itself (deploy/nginx.conf's error pages, tested against this table),
# with the Retry-After it sends, if any.
PROXY_ERRORS: dict[int, tuple[str, int | None]] = {
    400: (DEFAULT_MESSAGES[400], None),
    404: (DEFAULT_MESSAGES[404], None),
    408: ("The request was not received in time.", None),
    413: (DEFAULT_MESSAGES[413], None),
    414: ("The request URL is too long.", None),
    429: ("Too many requests at once from this address; retry in 1 s.", 1),
    500: (DEFAULT_MESSAGES[500], None),
    501: ("The request uses a transfer encoding the server does not support.", None),
    502: ("The service is unreachable; try again shortly.", RETRY_AFTER_SECONDS),
    503: (DEFAULT_MESSAGES[503], RETRY_AFTER_SECONDS),
    504: ("The service did not answer in time; try again shortly.", RETRY_AFTER_SECONDS),
    505: ("Only HTTP/1.0 and HTTP/1.1 are supported.", None),
}


class ErrorSchema(ma.Schema):
    """Every error the service answers has this shape."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(
        required=True,
        metadata={"description": "The status's reason phrase, fixed whatever the server's "
                  "Python version; read `code`."},
    )  # fmt: skip
    message = fields.String(required=True, metadata={"description": "One human sentence."})
    errors = fields.Dict(
        metadata={
            "description": "Validation failures, keyed by location (json, query, path) "
            "and then by field.",
        }
    )


class Refused(Exception):
    """A request the service's rules refuse, answered in the error shape: ``code``, the
    sentence, and for a 422 the field it is about (``errors.json`` for the body, or
    ``errors.query``)."""

    def __init__(
        self, code: int, message: str, field: str | None = None, location: str = "json"
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.location = location


def _refused(exc: Refused) -> Response:
    details = {exc.location: {exc.field: [exc.message]}} if exc.field else None
    return json_response(error_payload(exc.code, exc.message, details), exc.code)


def phrase(code: int) -> str:
    return PHRASES.get(code, UNKNOWN_PHRASE)


def error_payload(code: int, message: str | None = None, errors: Any = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": code,
        "status": phrase(code),
        "message": message or DEFAULT_MESSAGES.get(code) or phrase(code),
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
        error_payload(503, DATABASE_UNAVAILABLE),
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
    app.register_error_handler(Refused, _refused)
    # Lost connections, timeouts, "database is locked": transient, so 503 + Retry-After.
    app.register_error_handler(OperationalError, _service_unavailable)
    app.register_error_handler(InterfaceError, _service_unavailable)
    # Every pooled connection busy for pool_timeout seconds: overloaded, so also 503.
    app.register_error_handler(PoolTimeoutError, _service_unavailable)
    # Driver errors SQLAlchemy did not wrap (raised while returning a connection to the
    # pool as the server goes away): still the database, still 503.
    app.register_error_handler(psycopg2.OperationalError, _service_unavailable)
    app.register_error_handler(psycopg2.InterfaceError, _service_unavailable)


# --------------------------------------------------------------------------- OpenAPI

# Every kind of error response the OpenAPI document describes: its component name, its
# status, and an example as the service sends it. An operation names the kinds it answers
# (a status alone means its first kind here).
ERROR_EXAMPLES: dict[str, tuple[int, str, Any]] = {
    "BadRequest": (400, INVALID_JSON, {"json": ["Invalid JSON body."]}),
    "Unauthorized": (401, DEFAULT_MESSAGES[401], None),
    "Forbidden": (403, FORBIDDEN, None),
    "NotFound": (404, TASK_NOT_FOUND, None),
    "ListNotFound": (404, LIST_NOT_FOUND, None),
    "Conflict": (409, KEY_RUNNING, None),
    "TooManyLists": (409, TOO_MANY_LISTS.format(limit=500), None),
    "DefaultListStays": (409, DEFAULT_LIST_STAYS, None),
    "PreconditionFailed": (412, TASK_CHANGED, None),
    "ListPreconditionFailed": (412, LIST_CHANGED, None),
    "CursorExpired": (410, CURSOR_EXPIRED.format(days=30), None),
    "PayloadTooLarge": (413, DEFAULT_MESSAGES[413], None),
    "UnsupportedMediaType": (415, NOT_JSON, None),
    "ValidationFailed": (422, VALIDATION_FAILED, {"json": {"title": ["Must not be blank."]}}),
    "MoveRefused": (
        422,
        UNDER_ITSELF,
        {"json": {"parent_id": [UNDER_ITSELF]}},
    ),
    "ListMoveRefused": (
        422,
        NO_SUCH_LIST,
        {"json": {"after_id": [NO_SUCH_LIST]}},
    ),
    "TooManyRequests": (
        429,
        TOO_MANY_REQUESTS.format(limit="300 per 1 minute", seconds=12),
        None,
    ),
    "InternalError": (500, DEFAULT_MESSAGES[500], None),
    "ServiceUnavailable": (503, DATABASE_UNAVAILABLE, None),
}
# A status's usual kind: the first of that status above.
DEFAULT_KIND = {code: name for name, (code, _, _) in reversed(ERROR_EXAMPLES.items())}
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


def _content(code: int, message: str, details: Any) -> dict[str, Any]:
    return {"schema": ErrorSchema, "example": error_payload(code, message, details)}


def error_response_component(name: str) -> dict[str, Any]:
    """One kind of error as an OpenAPI response component."""
    code, message, details = ERROR_EXAMPLES[name]
    component: dict[str, Any] = {
        "description": phrase(code),
        "content": {"application/json": _content(code, message, details)},
    }
    if code in ERROR_HEADERS:
        component["headers"] = ERROR_HEADERS[code]
    return component


def error_responses(*answers: int | str) -> tuple[dict[str, Any], set[str]]:
    """The OpenAPI responses of an operation's errors, each a status (its usual kind) or
    the name of a kind; and the response components they refer to. Two kinds of one status
    are one response, written out with both examples."""
    kinds: dict[int, list[str]] = {}
    for answer in answers:
        name = DEFAULT_KIND[answer] if isinstance(answer, int) else answer
        kinds.setdefault(ERROR_EXAMPLES[name][0], []).append(name)
    responses: dict[str, Any] = {}
    referred = set()
    for code, names in sorted(kinds.items()):
        if len(names) == 1:
            responses[str(code)] = {"$ref": f"#/components/responses/{names[0]}"}
            referred.add(names[0])
            continue
        examples = {
            name: {"value": error_payload(code, *ERROR_EXAMPLES[name][1:])} for name in names
        }
        response: dict[str, Any] = {
            "description": phrase(code),
            "content": {"application/json": {"schema": ErrorSchema, "examples": examples}},
        }
        if code in ERROR_HEADERS:
            response["headers"] = ERROR_HEADERS[code]
        responses[str(code)] = response
    return responses, referred
