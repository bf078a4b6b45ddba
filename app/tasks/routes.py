"""The tasks resource: ``/api/{user_id}/tasks``."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.pagination import PaginationMetadataSchema
from werkzeug.http import parse_etags
from werkzeug.routing import BaseConverter

from ..api import Blueprint
from ..auth import auth_required
from ..errors import ERROR_EXAMPLES, error_response_components, json_response
from ..models import MAX_TASK_ID
from . import queries
from .queries import ANY_VERSION, PreconditionFailed
from .schemas import (
    FIELD_NAMES,
    ClearCompletedArgsSchema,
    IdempotencyKeySchema,
    IfMatchSchema,
    IfNoneMatchSchema,
    TaskCreateSchema,
    TaskQueryArgsSchema,
    TaskSchema,
    TaskToggleSchema,
    TaskUpdateSchema,
    task_json,
)

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/<user_id>/tasks",
    description="A user's tasks. Every route needs a bearer token whose subject is {user_id}.",
)

# Path parameter documentation for the blueprint's url_prefix.
USER_ID_PARAMETER = {
    "in": "path",
    "name": "user_id",
    "required": True,
    "description": "The Better Auth user id; must equal the token's `sub`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

TASK_EXAMPLE = {
    "id": 42,
    "user_id": "k3J9xQ2mN8pL4vR7sT1wY6zA0bC5dE2f",
    "title": "Buy milk",
    "description": "Two litres, semi-skimmed",
    "completed": False,
    "priority": "medium",
    "due_date": "2026-12-24T17:00:00.000000Z",
    "tags": ["errands"],
    "completed_at": None,
    "created_at": "2026-11-26T17:38:00.123456Z",
    "updated_at": "2026-11-26T17:38:00.123456Z",
}

ETAG_HEADER = {
    "description": "The strong ETag of what the response describes.",
    "schema": {"type": "string"},
    "example": '"3.6c1b2f0e"',
}
PAGINATION_HEADERS = {
    "X-Pagination": {
        "description": "The page's metadata, a JSON object (flask-smorest's PaginationMetadata): "
        "total, total_pages, first_page, last_page and page always, previous_page and "
        "next_page where such a page exists.",
        "content": {"application/json": {"schema": PaginationMetadataSchema}},
    },
    "Link": {
        "description": "RFC 8288 links: first and last, and next/prev where such a page exists.",
        "schema": {"type": "string"},
    },
    "ETag": ETAG_HEADER,
}
# Every route can answer these: authentication, ownership, rate limits, a bug, the database away.
COMMON_ERRORS = (401, 403, 429, 500, 503)
BODY_ERRORS = (400, 413, 415)


def operation(operation_id: str, *codes: int):  # type: ignore[no-untyped-def]
    """Name the operation and document the errors (and 304) it can answer."""
    responses = {
        str(code): {"$ref": f"#/components/responses/{ERROR_EXAMPLES[code][0]}"}
        for code in sorted({*COMMON_ERRORS, *codes} - {304})
    }
    if 304 in codes:
        responses["304"] = {"$ref": "#/components/responses/NotModified"}
    return blp.doc(operationId=operation_id, responses=responses)


def register_responses(spec: Any) -> None:
    """The response components the operations refer to: every error, with an example
    as the service sends it, and 304."""
    for name, component in error_response_components().items():
        spec.components.response(name, component)
    spec.components.response(
        "NotModified",
        {
            "description": "Not modified: the current ETag is in If-None-Match. No body.",
            "headers": {"ETag": ETAG_HEADER},
        },
    )


class TaskIdConverter(BaseConverter):
    """Matches any path segment: the id is parsed in the view, after authentication,
    so an unauthenticated request cannot learn whether an id is well formed."""


def task_id_param_schema(converter: BaseConverter) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_TASK_ID}


def task_not_found() -> None:
    abort(404, message="Task not found.")


def parse_task_id(raw: str) -> int:
    """Path ids are positive integers within the database's range; anything else is 404."""
    if not raw.isascii() or not raw.isdigit() or raw.startswith("0") or len(raw) > 19:
        task_not_found()
    task_id = int(raw)
    if task_id > MAX_TASK_ID:
        task_not_found()
    return task_id


# --------------------------------------------------------------------------- ETags

# Part of every task ETag: a change of the task's fields (a new one, say) changes them all.
REPRESENTATION = format(zlib.crc32(",".join(FIELD_NAMES).encode()), "x")


def task_etag(row: Any) -> str:
    """A task's strong ETag, from the version its every change bumps."""
    return version_etag(row.version)


def version_etag(version: int) -> str:
    return f'"{version}.{REPRESENTATION}"'


CREATED_VERSION = 1  # a new task's version (models.Task.version's default)


def if_match_versions(headers: Mapping[str, Any]) -> Sequence[int] | None:
    """The task versions an If-Match accepts: ANY_VERSION without one (or with ``*``),
    else those of its strong ETags that are ours (anything else matches nothing)."""
    if "if_match" not in headers:
        return ANY_VERSION
    etags = parse_etags(headers["if_match"])
    if etags.star_tag:
        return ANY_VERSION
    versions = []
    for tag in etags.as_set():  # strong tags only: a weak one never matches
        version, _, representation = (tag or "").partition(".")
        if representation == REPRESENTATION and version.isdigit():
            versions.append(int(version))
    return versions


def respond(
    body: bytes | str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    etag: str,
    if_none_match: str | None = None,
) -> Response:
    """An encoded JSON body with its ETag; 304 when ``if_none_match`` (a read's header)
    already has it (weak comparison, as RFC 9110 asks for If-None-Match)."""
    if if_none_match is not None and parse_etags(if_none_match).contains_weak(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag})
    return current_app.response_class(
        body, status=status, headers={**(headers or {}), "ETag": etag}, mimetype="application/json"
    )


def encoded(payload: Any) -> bytes:
    return current_app.json.dumps(payload).encode()


def found(
    row: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    if_none_match: str | None = None,
) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        task_not_found()
    return respond(
        encoded(task_json(row)), status, headers, etag=task_etag(row), if_none_match=if_none_match
    )


def precondition_failed() -> None:
    abort(412, message="The task has changed since the ETag in If-Match; fetch it again.")


# --------------------------------------------------------------------------- pagination


def pagination_headers(total: int, page: int, page_size: int) -> dict[str, str]:
    """``X-Pagination`` (JSON) and ``Link`` (RFC 8288, absolute URLs) for one page."""
    total_pages = -(-total // page_size)
    last_page = max(total_pages, 1)
    meta: dict[str, int] = {
        "total": total,
        "total_pages": total_pages,
        "first_page": 1,
        "last_page": last_page,
        "page": page,
    }
    if page > 1:
        meta["previous_page"] = min(page - 1, last_page)
    if page < last_page:
        meta["next_page"] = page + 1
    # Every query parameter but page kept as sent.
    others = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    links = {
        "first": 1,
        "last": last_page,
        "prev": meta.get("previous_page"),
        "next": meta.get("next_page"),
    }
    link = ", ".join(
        f'<{request.base_url}?{urlencode([*others, ("page", number)])}>; rel="{rel}"'
        for rel, number in links.items()
        if number is not None
    )
    return {"X-Pagination": json.dumps(meta), "Link": link}


# --------------------------------------------------------------------------- routes


# strict_slashes=False: a trailing slash is served as if it were not there.
@blp.route("", strict_slashes=False)
class Tasks(MethodView):
    @auth_required
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(
        200,
        TaskSchema(many=True),
        description="One page of the user's tasks; the metadata is in the headers.",
        headers=PAGINATION_HEADERS,
        example=[TASK_EXAMPLE],
    )
    @operation("listTasks", 304, 404, 422)
    def get(self, headers: dict[str, Any], args: dict[str, Any], user_id: str):
        """List tasks

        Filter by status, text, priority, tags, due date and last change; sort by
        creation, update, title, due date or priority (ties broken by id); page
        through the result. Filters combine; `X-Pagination.total` counts the filtered set.
        """
        page, page_size = args["page"], args["page_size"]
        with queries.connection() as conn:
            total, rows = queries.list_page(
                conn, user_id, args, limit=page_size, offset=(page - 1) * page_size
            )
        body = encoded([task_json(row) for row in rows])
        pagination = pagination_headers(total, page, page_size)
        # The list's ETag: a digest of what the response says (its body and X-Pagination).
        digest = hashlib.blake2b(body, digest_size=16)
        digest.update(pagination["X-Pagination"].encode())
        return respond(
            body,
            headers=pagination,
            etag=f'"{digest.hexdigest()}"',
            if_none_match=headers.get("if_none_match"),
        )

    @auth_required
    @blp.arguments(IdempotencyKeySchema(), location="headers")
    @blp.arguments(
        TaskCreateSchema(),
        example={"title": "Buy milk", "due_date": "2026-12-24T17:00:00Z", "tags": ["errands"]},
    )
    @blp.response(
        201,
        TaskSchema,
        description="The new task; `Location` is its URL. A replay of an earlier create "
        "with the same `Idempotency-Key` says `Idempotent-Replayed: true`.",
        headers={
            "Location": {"description": "URL of the new task.", "schema": {"type": "string"}},
            "ETag": ETAG_HEADER,
            "Idempotent-Replayed": {
                "description": "`true` when this is the first response to the same "
                "Idempotency-Key and body, answered again.",
                "schema": {"type": "string", "enum": ["true"]},
                "example": "true",
            },
        },
        example=TASK_EXAMPLE,
    )
    @operation("createTask", *BODY_ERRORS, 409, 422)
    def post(self, headers: dict[str, Any], data: dict[str, Any], user_id: str):
        """Create a task

        With an `Idempotency-Key` header, retrying the same create within 24 hours
        answers the first response again (`Idempotent-Replayed: true`) and creates
        nothing; the same key with another body is a 422, and a duplicate sent while
        the first is still running may get a 409 (retry it).
        """
        key = headers.get("idempotency_key")
        if key is None:
            row = queries.create_task(g.identity, data)
            return found(row, 201, {"Location": task_url(user_id, row.id)})
        outcome = queries.create_task_once(
            g.identity, data, key, lambda row: current_app.json.dumps(task_json(row))
        )
        if outcome.conflict == "body":
            abort(
                422,
                message="This Idempotency-Key was used with another body; use a new key.",
                errors={"headers": {"Idempotency-Key": ["Already used with another body."]}},
            )
        if outcome.conflict == "running":
            abort(
                409,
                message="A request with this Idempotency-Key is still running; retry shortly.",
                headers={"Retry-After": "1"},
            )
        replay = {} if outcome.row is not None else {"Idempotent-Replayed": "true"}
        # The first response again: its body, Location and ETag (a new task's version).
        return respond(
            outcome.body or "",
            201,
            {"Location": task_url(user_id, outcome.task_id), **replay},
            etag=version_etag(CREATED_VERSION),
        )

    @auth_required
    @blp.arguments(ClearCompletedArgsSchema(), location="query", unknown="raise")
    @blp.response(
        200,
        {
            "type": "object",
            "properties": {"deleted": {"type": "integer", "minimum": 0}},
            "required": ["deleted"],
        },
        description="How many completed tasks were deleted.",
        example={"deleted": 3},
    )
    @operation("clearCompletedTasks", 422)
    def delete(self, args: dict[str, Any], user_id: str):
        """Clear completed tasks

        Deletes every completed task of the user, in one statement. Only
        `?status=completed`, exactly: anything else is a 422, so a typo cannot
        wipe a list.
        """
        with queries.connection() as conn:
            deleted = queries.clear_completed(conn, user_id)
        return json_response({"deleted": deleted})


def task_url(user_id: str, task_id: int | None) -> str:
    return url_for("tasks.TaskById", user_id=user_id, task_id=task_id, _external=True)


@blp.route("/<task_id:task_id>", strict_slashes=False)
class TaskById(MethodView):
    @auth_required
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @operation("getTask", 304, 404)
    def get(self, headers: dict[str, Any], user_id: str, task_id: str):
        """Get a task"""
        task_id_ = parse_task_id(task_id)
        with queries.connection() as conn:
            row = queries.get_task(conn, user_id, task_id_)
        return found(row, if_none_match=headers.get("if_none_match"))

    @auth_required
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(TaskUpdateSchema(), example={"title": "Buy oat milk"})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @operation("updateTask", *BODY_ERRORS, 404, 412, 422)
    def put(self, headers: dict[str, Any], data: dict[str, Any], user_id: str, task_id: str):
        """Update a task

        Send only the fields to change; a field left out keeps its value, `null`
        clears the description or the due date, and `tags` replaces the whole list.
        """
        task_id_ = parse_task_id(task_id)
        try:
            return found(queries.update_task(user_id, task_id_, data, if_match_versions(headers)))
        except PreconditionFailed:
            precondition_failed()

    @auth_required
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.response(204, description="The task was deleted.")
    @operation("deleteTask", 404, 412)
    def delete(self, headers: dict[str, Any], user_id: str, task_id: str):
        """Delete a task"""
        task_id_ = parse_task_id(task_id)
        try:
            deleted = queries.delete_task(user_id, task_id_, if_match_versions(headers))
        except PreconditionFailed:
            precondition_failed()
        if not deleted:
            task_not_found()


@blp.route("/<task_id:task_id>/complete", strict_slashes=False)
class TaskCompletion(MethodView):
    @auth_required
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(TaskToggleSchema(), required=False, example={"completed": True})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @operation("toggleTask", *BODY_ERRORS, 404, 412, 422)
    def patch(self, headers: dict[str, Any], data: dict[str, Any], user_id: str, task_id: str):
        """Toggle completion

        Without a body, flips `completed`. With `{"completed": true|false}`,
        sets it (idempotent, safe to retry).
        """
        task_id_ = parse_task_id(task_id)
        try:
            row = queries.toggle_task(
                user_id, task_id_, data.get("completed"), if_match_versions(headers)
            )
        except PreconditionFailed:
            precondition_failed()
        return found(row)
