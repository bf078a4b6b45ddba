"""The tasks resource: ``/api/{user_id}/tasks``."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app, g, url_for
from flask.views import MethodView
from flask_smorest import abort

from .. import errors, idempotency
from ..api import BODY_ERRORS, Blueprint, parse_id
from ..auth import auth_required
from ..database import connection
from ..errors import json_response
from ..etags import ETAG_HEADER, IfMatchSchema, IfNoneMatchSchema, respond
from ..idempotency import IdempotencyKeySchema
from ..limits import per_user
from ..pagination import PAGINATION_HEADERS, pagination_headers
from . import queries
from .schemas import (
    TASK,
    ClearCompletedArgsSchema,
    TaskCreateSchema,
    TaskMoveSchema,
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
    "list_id": 7,
    "parent_id": None,
    "position": "a0",
    "completed_at": None,
    "created_at": "2026-11-26T17:38:00.123456Z",
    "updated_at": "2026-11-26T17:38:00.123456Z",
}

VERSIONS = TASK.versions  # a task's ETags


def task_not_found() -> Any:
    abort(404, message=errors.TASK_NOT_FOUND)


def found(
    row: Any, status: int = 200, headers: dict[str, str] | None = None, revalidate: bool = False
) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        task_not_found()
    return TASK.answer(row, status, headers, revalidate)


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
        body = current_app.json.dumps([task_json(row) for row in rows]).encode()
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
        headers=idempotency.created_headers("task"),
        example=TASK_EXAMPLE,
    )
    @blp.operation("createTask", *BODY_ERRORS, 409, 422, "MoveRefused")
    def post(self, headers: dict[str, Any], data: dict[str, Any], user_id: str):
        """Create a task

        With an `Idempotency-Key` header, retrying the same create within 24 hours
        answers the first response again (`Idempotent-Replayed: true`) and creates
        nothing; the same key with another body is a 422, and a duplicate sent while
        the first is still running may get a 409 (retry it).
        """

        def made(row: Any) -> idempotency.Created:
            return idempotency.Created(row.id, TASK.encoded(row), TASK.etag(row))

        key = headers.get("idempotency_key")
        if key is None:  # the common create has a way of its own (queries.create_task)
            created, replayed = made(queries.create_task(g.identity, data)), False
        else:
            make = lambda w: made(queries.create_in(w, data))  # noqa: E731
            created, replayed = idempotency.create(g.identity, key, "task", data, make)
        location = task_url(user_id, created.resource_id)
        return idempotency.respond_created(created, replayed, location)

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
        deleted = queries.clear_completed(g.identity)
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
        return found(queries.update_task(g.identity, task_id_, data, VERSIONS.if_match(task_id_)))

    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.response(204, description="The task was deleted.")
    @blp.operation("deleteTask", 404, 412)
    def delete(self, _headers: dict[str, Any], user_id: str, task_id: str):
        """Delete a task"""
        task_id_ = parse_task_id(task_id)
        if not queries.delete_task(g.identity, task_id_, VERSIONS.if_match(task_id_)):
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
        completed = data.get("completed")
        return found(
            queries.toggle_task(g.identity, task_id_, completed, VERSIONS.if_match(task_id_))
        )


@blp.route("/<task_id:task_id>/move", strict_slashes=False)
class TaskMove(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(TaskMoveSchema(), example={"list_id": 7, "parent_id": None, "after_id": 43})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("moveTask", *BODY_ERRORS, 404, 412, 422, "MoveRefused")
    def post(self, _headers: dict[str, Any], data: dict[str, Any], user_id: str, task_id: str):
        """Move a task

        Places the task and its subtasks in list `list_id`, under `parent_id` (null: the
        top level), right after its sibling `after_id` (null or absent: first). Each
        field is optional: see the fields for the defaults. One call per drag and drop.
        """
        task_id_ = parse_task_id(task_id)
        return found(queries.move_task(g.identity, task_id_, data, VERSIONS.if_match(task_id_)))
