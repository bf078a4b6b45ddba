"""The tasks resource: ``/api/{user_id}/tasks``."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app, g, url_for
from flask.views import MethodView
from flask_smorest import abort

from .. import errors
from ..api import BODY_ERRORS, Blueprint, parse_id
from ..auth import auth_required
from ..database import connection
from ..errors import json_response
from ..etags import ETAG_HEADER, IfMatchSchema, IfNoneMatchSchema, Versions, respond
from ..limits import per_user
from ..pagination import PAGINATION_HEADERS, pagination_headers
from . import queries
from .queries import PreconditionFailed
from .schemas import (
    FIELD_NAMES,
    ClearCompletedArgsSchema,
    IdempotencyKeySchema,
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

# A task's ETag: its version (bumped by every change) and a digest of its field names.
VERSIONS = Versions(FIELD_NAMES)
CREATED_VERSION = 1  # a new task's version (models.Task.version's default)


def task_not_found() -> Any:
    abort(404, message=errors.TASK_NOT_FOUND)


def precondition_failed() -> Any:
    abort(412, message=errors.TASK_CHANGED)


def encoded(payload: Any) -> bytes:
    return current_app.json.dumps(payload).encode()


def found(
    row: Any, status: int = 200, headers: dict[str, str] | None = None, revalidate: bool = False
) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        task_not_found()
    return respond(
        encoded(task_json(row)),
        status,
        headers,
        etag=VERSIONS.etag(row.version),
        revalidate=revalidate,
    )


# --------------------------------------------------------------------------- routes


# strict_slashes=False: a trailing slash is served as if it were not there.
@blp.route("", strict_slashes=False)
class Tasks(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(
        200,
        TaskSchema(many=True),
        description="One page of the user's tasks; the metadata is in the headers.",
        headers={**PAGINATION_HEADERS, "ETag": ETAG_HEADER},
        example=[TASK_EXAMPLE],
    )
    @blp.operation("listTasks", 304, 404, 422)
    def get(self, _headers: dict[str, Any], args: dict[str, Any], user_id: str):
        """List tasks

        Filter by status, text, priority, tags, due date and last change; sort by
        creation, update, title, due date or priority (ties broken by id); page
        through the result. Filters combine; `X-Pagination.total` counts the filtered set.
        """
        page, page_size = args["page"], args["page_size"]
        with connection() as conn:
            total, rows = queries.list_page(
                conn, user_id, args, limit=page_size, offset=(page - 1) * page_size
            )
        body = encoded([task_json(row) for row in rows])
        pagination = pagination_headers(total, page, page_size)
        # The list's ETag: a digest of what the response says (its body and X-Pagination).
        digest = hashlib.blake2b(body, digest_size=16)
        digest.update(pagination["X-Pagination"].encode())
        return respond(body, headers=pagination, etag=f'"{digest.hexdigest()}"', revalidate=True)

    @auth_required
    @per_user
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
    @blp.operation("createTask", *BODY_ERRORS, 409, 422)
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
                message=errors.KEY_REUSED,
                errors={"headers": {"Idempotency-Key": ["Already used with another body."]}},
            )
        if outcome.conflict == "running":
            abort(409, message=errors.KEY_RUNNING, headers={"Retry-After": "1"})
        replay = {} if outcome.row is not None else {"Idempotent-Replayed": "true"}
        # The first response again: its body, Location and ETag (a new task's version).
        return respond(
            outcome.body or "",
            201,
            {"Location": task_url(user_id, outcome.task_id), **replay},
            etag=VERSIONS.etag(CREATED_VERSION),
        )

    @auth_required
    @per_user
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
    @blp.operation("clearCompletedTasks", 422)
    def delete(self, args: dict[str, Any], user_id: str):
        """Clear completed tasks

        Deletes every completed task of the user, in one statement. Only
        `?status=completed`, exactly: anything else is a 422, so a typo cannot
        wipe a list.
        """
        with connection() as conn:
            deleted = queries.clear_completed(conn, user_id)
        return json_response({"deleted": deleted})


def task_url(user_id: str, task_id: int | None) -> str:
    return url_for("tasks.TaskById", user_id=user_id, task_id=task_id, _external=True)


def parse_task_id(raw: str) -> int:
    return parse_id(raw, task_not_found)


@blp.route("/<task_id:task_id>", strict_slashes=False)
class TaskById(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("getTask", 304, 404)
    def get(self, _headers: dict[str, Any], user_id: str, task_id: str):
        """Get a task"""
        task_id_ = parse_task_id(task_id)
        with connection() as conn:
            row = queries.get_task(conn, user_id, task_id_)
        return found(row, revalidate=True)

    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(TaskUpdateSchema(), example={"title": "Buy oat milk"})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("updateTask", *BODY_ERRORS, 404, 412, 422)
    def put(self, _headers: dict[str, Any], data: dict[str, Any], user_id: str, task_id: str):
        """Update a task

        Send only the fields to change; a field left out keeps its value, `null`
        clears the description or the due date, and `tags` replaces the whole list.
        """
        task_id_ = parse_task_id(task_id)
        try:
            return found(queries.update_task(user_id, task_id_, data, VERSIONS.if_match()))
        except PreconditionFailed:
            precondition_failed()

    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.response(204, description="The task was deleted.")
    @blp.operation("deleteTask", 404, 412)
    def delete(self, _headers: dict[str, Any], user_id: str, task_id: str):
        """Delete a task"""
        task_id_ = parse_task_id(task_id)
        try:
            deleted = queries.delete_task(user_id, task_id_, VERSIONS.if_match())
        except PreconditionFailed:
            precondition_failed()
        if not deleted:
            task_not_found()


@blp.route("/<task_id:task_id>/complete", strict_slashes=False)
class TaskCompletion(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(TaskToggleSchema(), required=False, example={"completed": True})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("toggleTask", *BODY_ERRORS, 404, 412, 422)
    def patch(self, _headers: dict[str, Any], data: dict[str, Any], user_id: str, task_id: str):
        """Toggle completion

        Without a body, flips `completed`. With `{"completed": true|false}`,
        sets it (idempotent, safe to retry).
        """
        task_id_ = parse_task_id(task_id)
        try:
            row = queries.toggle_task(user_id, task_id_, data.get("completed"), VERSIONS.if_match())
        except PreconditionFailed:
            precondition_failed()
        return found(row)
