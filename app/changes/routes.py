"""The changes feed: ``/api/{user_id}/changes``."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, g
from flask.views import MethodView

from .. import deletions, errors
from ..api import Blueprint
from ..auth import auth_required
from ..database import snapshot
from ..errors import Refused
from ..limits import per_user
from ..lists import queries as lists
from ..lists.schemas import LIST_EXAMPLE
from ..models import utcnow
from ..owners import write
from . import queries
from .schemas import ChangesArgsSchema, owner_tag

blp = Blueprint(
    "changes",
    __name__,
    url_prefix="/api/<user_id>/changes",
    description="Every change of the user's lists and tasks, deletions included, in order: "
    "how a frontend keeps its own copy in step.",
)

EXAMPLE = {
    "changes": [
        {
            "type": "list",
            "id": 7,
            "deleted": False,
            "etag": '"7.2.9f0a31c2"',
            "data": LIST_EXAMPLE,
        },
        {"type": "task", "id": 43, "deleted": True},
    ],
    "cursor": "MS5kLjEyLjIuNDMuMTc5NjY0MDAwMC4zZjJhOWMxYjdkNGU",
    "has_more": False,
}


@blp.route("", strict_slashes=False)
class Changes(MethodView):
    @auth_required
    @per_user
    @blp.arguments(ChangesArgsSchema(), location="query")
    @blp.response(
        200,
        {"$ref": "#/components/schemas/ChangesPage"},
        description="A page of the feed. Apply each item in order: upsert by `type` and "
        "`id` (with its `data`), or remove it when `deleted`.",
        example=EXAMPLE,
    )
    @blp.operation("listChanges", 410, 422)
    def get(self, args: dict[str, Any], user_id: str):
        """List changes

        Without a cursor: every list and task of the user, page by page (follow `cursor`
        while `has_more`); the last page's cursor is the one to poll with. With a cursor:
        what changed since, oldest first, deletions included. A cursor older than the
        deletions the service remembers (30 days) is a 410: start again without one.
        """
        cursor = args.get("cursor")
        now = utcnow()
        if cursor is not None and cursor.owner != owner_tag(user_id):  # another user's
            raise Refused(422, errors.BAD_CURSOR, "cursor", "query")
        if cursor is not None and cursor.issued < deletions.remembered_since(now).timestamp():
            days = current_app.config["CHANGES_RETENTION_DAYS"]
            raise Refused(410, errors.CURSOR_EXPIRED.format(days=days))
        if cursor is None:  # a user never seen before starts with their default list
            with snapshot() as conn:
                known = lists.get_list(conn, user_id, lists.DEFAULT) is not None
            if not known:
                with write(g.identity) as w:
                    lists.default_list(w)
        with snapshot() as conn:
            page = queries.read(conn, user_id, cursor, args["limit"], int(time.time()))
        body = {"changes": page.items, "cursor": page.cursor.encode(), "has_more": page.has_more}
        return current_app.response_class(current_app.json.dumps(body), mimetype="application/json")
