"""The lists resource: ``/api/{user_id}/lists``."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app, g, url_for
from flask.views import MethodView
from flask_smorest import abort
from werkzeug.routing import BaseConverter

from .. import deletions, errors, idempotency
from ..api import BODY_ERRORS, Blueprint, parse_id
from ..auth import auth_required
from ..database import connection
from ..etags import (
    ETAG_HEADER,
    IfMatchSchema,
    IfNoneMatchSchema,
    respond,
)
from ..idempotency import IdempotencyKeySchema
from ..limits import per_user
from ..owners import write
from . import queries
from .queries import DEFAULT
from .schemas import LIST, LIST_EXAMPLE, ListMoveSchema

blp = Blueprint(
    "lists",
    __name__,
    url_prefix="/api/<user_id>/lists",
    description="A user's lists of tasks, in the user's order. Every route needs a bearer "
    "token whose subject is {user_id}.",
)

VERSIONS = LIST.versions  # a list's ETags


class ListIdConverter(BaseConverter):
    """A list id in a path, or ``default``. Matches any segment: it is parsed in the view,
    after authentication."""


def list_id_param_schema(converter: BaseConverter) -> dict[str, Any]:
    return {
        "oneOf": [
            {"type": "integer", "format": "int64", "minimum": 1},
            {"type": "string", "enum": [DEFAULT]},
        ],
        "description": "A list's id, or `default` for the user's default list.",
    }


def list_not_found() -> Any:
    abort(404, message=errors.LIST_NOT_FOUND)


def parse_list_id(raw: str) -> int | str:
    return DEFAULT if raw == DEFAULT else parse_id(raw, list_not_found)


def found(
    row: Any, status: int = 200, headers: dict[str, str] | None = None, revalidate: bool = False
) -> Response:
    # Returning a Response makes @blp.response skip its marshmallow dump; the schema
    # still documents the body.
    if row is None:
        list_not_found()
    return LIST.answer(row, status, headers, revalidate)


def list_url(user_id: str, list_id: int) -> str:
    return url_for("lists.ListById", user_id=user_id, list_id=list_id, _external=True)


@blp.route("", strict_slashes=False)
class Lists(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.response(
        200,
        LIST.schema(many=True),
        description="All the user's lists, in their order (position, then id); the default "
        "list is made on the first request that needs it.",
        headers={"ETag": ETAG_HEADER},
        example=[LIST_EXAMPLE],
    )
    @blp.operation("listLists", 304)
    def get(self, _headers: dict[str, Any], user_id: str):
        """List lists"""
        with connection() as conn:
            rows = queries.all_lists(conn, user_id)
        if not any(row.is_default for row in rows):
            with write(g.identity) as w:
                queries.default_list(w)
            with connection() as conn:
                rows = queries.all_lists(conn, user_id)
        body = current_app.json.dumps([LIST.json(row) for row in rows]).encode()
        etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
        return respond(body, etag=etag, revalidate=True)

    @auth_required
    @per_user
    @blp.arguments(IdempotencyKeySchema(), location="headers")
    @blp.arguments(LIST.create_schema(), example={"title": "Groceries", "color": "#3b82f6"})
    @blp.response(
        201,
        LIST.schema,
        description="The new list, last in the user's order; `Location` is its URL.",
        headers=idempotency.created_headers("list"),
        example=LIST_EXAMPLE,
    )
    @blp.operation("createList", *BODY_ERRORS, "Conflict", "TooManyLists", 422)
    def post(self, headers: dict[str, Any], data: dict[str, Any], user_id: str):
        """Create a list

        At most 500 lists per user, the default one included: past that, 409. With an
        `Idempotency-Key`, a retry answers the first response again, as for tasks.
        """

        def make(w: Any) -> idempotency.Created:
            row = queries.create_list(w, data)
            return idempotency.Created(row.id, LIST.encoded(row), LIST.etag(row))

        key = headers.get("idempotency_key")
        created, replayed = idempotency.create(g.identity, key, "list", data, make)
        location = list_url(user_id, created.resource_id)
        return idempotency.respond_created(created, replayed, location)


@blp.route("/<list_id:list_id>", strict_slashes=False)
class ListById(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfNoneMatchSchema(), location="headers")
    @blp.response(200, LIST.schema, example=LIST_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("getList", 304, "ListNotFound")
    def get(self, _headers: dict[str, Any], user_id: str, list_id: str):
        """Get a list"""
        wanted = parse_list_id(list_id)
        with connection() as conn:
            row = queries.get_list(conn, user_id, wanted)
        if row is None and wanted == DEFAULT:
            with write(g.identity) as w:
                row = queries.default_list(w)
        return found(row, revalidate=True)

    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(LIST.update_schema(), example={"title": "Weekly shop"})
    @blp.response(200, LIST.schema, example=LIST_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation("updateList", *BODY_ERRORS, "ListNotFound", "ListPreconditionFailed", 422)
    def put(self, _headers: dict[str, Any], data: dict[str, Any], user_id: str, list_id: str):
        """Update a list

        Send `title` and/or `color`; a field left out keeps its value.
        """
        wanted = parse_list_id(list_id)
        with write(g.identity) as w:
            resolved = queries.resolve(w, wanted)
            row = resolved and queries.update_list(w, resolved, data, VERSIONS.if_match(resolved))
        return found(row)

    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.response(204, description="The list and its tasks were deleted.")
    @blp.operation("deleteList", "ListNotFound", "DefaultListStays", "ListPreconditionFailed")
    def delete(self, _headers: dict[str, Any], user_id: str, list_id: str):
        """Delete a list and its tasks

        The default list cannot be deleted (409).
        """
        wanted = parse_list_id(list_id)
        with write(g.identity) as w:
            resolved = queries.resolve(w, wanted)
            deleted = resolved and queries.delete_list(w, resolved, VERSIONS.if_match(resolved))
        if not deleted:
            list_not_found()
        deletions.forget_old(w.now)


@blp.route("/<list_id:list_id>/move", strict_slashes=False)
class ListMove(MethodView):
    @auth_required
    @per_user
    @blp.arguments(IfMatchSchema(), location="headers")
    @blp.arguments(ListMoveSchema(), example={"after_id": 7})
    @blp.response(200, LIST.schema, example=LIST_EXAMPLE, headers={"ETag": ETAG_HEADER})
    @blp.operation(
        "moveList", *BODY_ERRORS, "ListNotFound", "ListPreconditionFailed", "ListMoveRefused"
    )
    def post(self, _headers: dict[str, Any], data: dict[str, Any], user_id: str, list_id: str):
        """Move a list

        Places the list right after the list `after_id`; `null` (or no `after_id`): first.
        """
        wanted = parse_list_id(list_id)
        with write(g.identity) as w:
            resolved = queries.resolve(w, wanted)
            after_id = data.get("after_id")
            row = resolved and queries.move_list(w, resolved, after_id, VERSIONS.if_match(resolved))
        return found(row)
