"""The tasks resource: ``/api/{user_id}/tasks``."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
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
from .queries import TASK_FIELDS
from .schemas import (
    TaskQueryArgsSchema,
    TaskSchema,
    TaskToggleSchema,
    TaskUpdateSchema,
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

ERROR_REFS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "REQUEST_ENTITY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
BODY_ERRORS = (400, 413, 415)


def errors(*codes: int):  # type: ignore[no-untyped-def]
    """Document error responses without wrapping the view (no per-request cost)."""

    def decorator(func):  # type: ignore[no-untyped-def]
        apidoc = deepcopy(getattr(func, "_apidoc", {}))
        responses = apidoc.setdefault("response", {}).setdefault("responses", {})
        for code in (401, 403, *codes, 500, 503):
            responses.setdefault(code, []).append(ERROR_REFS[code])
        func._apidoc = apidoc
        return func

    return decorator


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


def task_json(row: Sequence[Any]) -> dict[str, Any]:
    """The TaskSchema dump of a row of ``queries.TASK_COLUMNS`` (timestamps come
    formatted from the database): one C-level zip instead of marshmallow's per-field
    work, ~15x faster for a page. tests/test_queries.py checks it matches
    ``TaskSchema().dump`` of the stored task."""
    return dict(zip(TASK_FIELDS, row))


def found(row: Any) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        abort(404, message="Task not found.")
    return json_response(task_json(row))


def pagination_headers(total: int, page: int, page_size: int) -> dict[str, str]:
    total_pages = -(-total // page_size)
    last_page = max(total_pages, 1)
    # X-Pagination is json.dumps of these integers, written out (tests compare the two).
    meta = (
        f'{{"total": {total}, "total_pages": {total_pages}, "first_page": 1, '
        f'"last_page": {last_page}, "page": {page}'
    )
    base = _link_base()
    links = [f'{base}1>; rel="first"', f'{base}{last_page}>; rel="last"']
    if page > 1:
        previous_page = min(page - 1, last_page)
        meta += f', "previous_page": {previous_page}'
        links.append(f'{base}{previous_page}>; rel="prev"')
    if page < last_page:
        meta += f', "next_page": {page + 1}'
        links.append(f'{base}{page + 1}>; rel="next"')
    return {"X-Pagination": meta + "}", "Link": ", ".join(links)}


_LINK_BASES: dict[tuple[str, bytes], str] = {}
LINK_BASES_MAX = 1024


def _link_base() -> str:
    """``<path?other=params&page=`` for the Link header: every query parameter but
    ``page`` kept as sent. A pure function of the path and query string, so remembered
    (bounded: forgotten all at once when full)."""
    key = (request.path, request.query_string)
    base = _LINK_BASES.get(key)
    if base is None:
        others = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "page"])
        path = quote(key[0])
        base = f"<{path}?{others}&page=" if others else f"<{path}?page="
        if len(_LINK_BASES) >= LINK_BASES_MAX:
            _LINK_BASES.clear()
        _LINK_BASES[key] = base
    return base


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
        offset = (page - 1) * page_size
        with queries.connection() as conn:
            total, rows = queries.list_page(
                conn,
                user_id,
                status=args["status"],
                sort=args["sort"],
                order=args["order"],
                limit=page_size,
                offset=offset,
            )
        return json_response(
            [task_json(row) for row in rows], headers=pagination_headers(total, page, page_size)
        )

    @auth_required
    @blp.arguments(TaskSchema(), example={"title": "Buy milk", "description": "Two litres"})
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
        location = url_for("tasks.TaskById", user_id=user_id, task_id=row[0])  # the id
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
