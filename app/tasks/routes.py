"""The tasks resource: ``/api/{user_id}/tasks``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, g, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from werkzeug.routing import BaseConverter

from ..api import Blueprint
from ..auth import auth_required
from ..errors import json_response
from ..models import MAX_TASK_ID
from . import queries
from .schemas import (
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
    "created_at": "2026-11-26T17:38:00.123456Z",
    "updated_at": "2026-11-26T17:38:00.123456Z",
}

PAGINATION_HEADERS = {
    "X-Pagination": {
        "description": "JSON: total, total_pages, first_page, last_page, page, "
        "and previous_page/next_page where such a page exists.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": "RFC 8288 links: first and last, and next/prev where such a page exists.",
        "schema": {"type": "string"},
    },
}

# Every route can answer these: authentication, ownership, a bug, the database away.
COMMON_ERRORS = (401, 403, 500, 503)
BODY_ERRORS = (400, 413, 415)


def errors(*codes: int):  # type: ignore[no-untyped-def]
    """Document the error responses a view can answer (flask-smorest's alt_response)."""

    def decorator(func):  # type: ignore[no-untyped-def]
        for code in sorted({*COMMON_ERRORS, *codes}):
            func = blp.alt_response(code, response=ERROR_RESPONSES[code])(func)
        return func

    return decorator


ERROR_RESPONSES = {
    code: name
    for code, name in (
        (400, "BAD_REQUEST"),
        (401, "UNAUTHORIZED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND"),
        (413, "REQUEST_ENTITY_TOO_LARGE"),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        (422, "UNPROCESSABLE_ENTITY"),
        (500, "INTERNAL_SERVER_ERROR"),
        (503, "SERVICE_UNAVAILABLE"),
    )
}


class TaskIdConverter(BaseConverter):
    """Matches any path segment: the id is parsed in the view, after authentication,
    so an unauthenticated request cannot learn whether an id is well formed."""


def task_id_param_schema(converter: BaseConverter) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_TASK_ID}


def parse_task_id(raw: str) -> int:
    """Path ids are positive integers within the database's range; anything else is 404."""
    if not raw.isascii() or not raw.isdigit() or raw.startswith("0") or len(raw) > 19:
        abort(404, message="Task not found.")
    task_id = int(raw)
    if task_id > MAX_TASK_ID:
        abort(404, message="Task not found.")
    return task_id


def found(row: Any) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        abort(404, message="Task not found.")
    return json_response(task_json(row))


def pagination_headers(total: int, page: int, page_size: int) -> dict[str, str]:
    """``X-Pagination`` (JSON) and ``Link`` (RFC 8288) for one page of ``total`` items."""
    last_page = max(-(-total // page_size), 1)
    meta: dict[str, int] = {
        "total": total,
        "total_pages": -(-total // page_size),
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
        f'<{quote(request.path)}?{urlencode([*others, ("page", number)])}>; rel="{rel}"'
        for rel, number in links.items()
        if number is not None
    )
    return {"X-Pagination": json.dumps(meta), "Link": link}


@blp.route("")
class Tasks(MethodView):
    @auth_required
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(
        200,
        TaskSchema(many=True),
        description="One page of the user's tasks; the metadata is in the headers.",
        headers=PAGINATION_HEADERS,
        example=[TASK_EXAMPLE],
    )
    @errors(422)
    def get(self, args: dict[str, Any], user_id: str):
        """List tasks

        Filter by status, sort by creation, update or title (ties broken by id),
        and page through the result.
        """
        page, page_size = args["page"], args["page_size"]
        with queries.connection() as conn:
            total, rows = queries.list_page(
                conn,
                user_id,
                status=args["status"],
                sort=args["sort"],
                order=args["order"],
                limit=page_size,
                offset=(page - 1) * page_size,
            )
        return json_response(
            [task_json(row) for row in rows], headers=pagination_headers(total, page, page_size)
        )

    @auth_required
    @blp.arguments(TaskCreateSchema(), example={"title": "Buy milk", "description": "Two litres"})
    @blp.response(
        201,
        TaskSchema,
        description="The new task; `Location` is its URL.",
        headers={"Location": {"description": "URL of the new task.", "schema": {"type": "string"}}},
        example=TASK_EXAMPLE,
    )
    @errors(*BODY_ERRORS, 422)
    def post(self, data: dict[str, Any], user_id: str):
        """Create a task"""
        row = queries.create_task(g.identity, data)
        location = url_for("tasks.TaskById", user_id=user_id, task_id=row.id)
        return json_response(task_json(row), 201, {"Location": location})


@blp.route("/<task_id:task_id>")
class TaskById(MethodView):
    @auth_required
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE)
    @errors(404)
    def get(self, user_id: str, task_id: str):
        """Get a task"""
        task_id_ = parse_task_id(task_id)
        with queries.connection() as conn:
            return found(queries.get_task(conn, user_id, task_id_))

    @auth_required
    @blp.arguments(TaskUpdateSchema(), example={"title": "Buy oat milk"})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE)
    @errors(*BODY_ERRORS, 404, 422)
    def put(self, data: dict[str, Any], user_id: str, task_id: str):
        """Update a task

        Send only the fields to change; a field left out keeps its value and
        `null` clears the description.
        """
        task_id_ = parse_task_id(task_id)
        with queries.connection() as conn:
            return found(queries.update_task(conn, user_id, task_id_, data))

    @auth_required
    @blp.response(204, description="The task was deleted.")
    @errors(404)
    def delete(self, user_id: str, task_id: str):
        """Delete a task"""
        task_id_ = parse_task_id(task_id)
        with queries.connection() as conn:
            deleted = queries.delete_task(conn, user_id, task_id_)
        if not deleted:
            abort(404, message="Task not found.")


@blp.route("/<task_id:task_id>/complete")
class TaskCompletion(MethodView):
    @auth_required
    @blp.arguments(TaskToggleSchema(), required=False, example={"completed": True})
    @blp.response(200, TaskSchema, example=TASK_EXAMPLE)
    @errors(*BODY_ERRORS, 404, 422)
    def patch(self, data: dict[str, Any], user_id: str, task_id: str):
        """Toggle completion

        Without a body, flips `completed`. With `{"completed": true|false}`,
        sets it (idempotent, safe to retry).
        """
        task_id_ = parse_task_id(task_id)
        with queries.connection() as conn:
            return found(queries.toggle_task(conn, user_id, task_id_, data.get("completed")))
