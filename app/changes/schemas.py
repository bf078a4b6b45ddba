"""The changes feed's cursor, its query string and its documented answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from marshmallow import fields, validate

from .. import errors
from ..fields import SingleValuedQuery
from ..models import MAX_ID

# The kinds of item, numbered in the feed's order within one write (lists first), with the
# numbers the deletions table stores; START and END stand before and after every kind.
START, LIST, TASK, END = 0, 1, 2, 3
KINDS = {LIST: "list", TASK: "task"}
LIMIT_MAX = 1000
CURSOR_MAX = 200
_CURSOR = re.compile(r"1\.([sd])\.(\d{1,19})\.([0-3])\.(\d{1,19})\.(\d{1,12})\.([0-9a-f]{12})")


def owner_tag(user_id: str) -> str:
    """Which user a cursor was given to (a digest: the user id itself stays out of it)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Cursor:
    """Where a client is in the feed.

    In the first read (``snapshot``): every live list, then every task, by id; ``seq`` is
    the user's write counter when it began, from which changes are read once it is done.
    After it: the last change delivered, by (seq, kind, id), the order of the feed.
    ``issued``: when it was given (seconds since 1970): too old a cursor is a 410.
    ``owner``: the user it was given to (``owner_tag``)."""

    snapshot: bool
    seq: int
    kind: int
    id: int
    issued: int
    owner: str

    def encode(self) -> str:
        mode = "s" if self.snapshot else "d"
        text = f"1.{mode}.{self.seq}.{self.kind}.{self.id}.{self.issued}.{self.owner}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def moved(self, *, snapshot: bool, seq: int, kind: int, id: int, issued: int) -> Cursor:
        return Cursor(snapshot, seq, kind, id, issued, self.owner)

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        found = _CURSOR.fullmatch(text)
        if found is None:
            return None
        mode, seq, kind, item, issued, owner = found.groups()
        if int(seq) > MAX_ID or int(item) > MAX_ID:
            return None
        return cls(mode == "s", int(seq), int(kind), int(item), int(issued), owner)


class CursorField(fields.String):
    default_error_messages = {"invalid_cursor": errors.BAD_CURSOR}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Cursor:
        text = super()._deserialize(value, attr, data, **kwargs)
        cursor = Cursor.decode(text) if len(text) <= CURSOR_MAX else None
        if cursor is None:
            raise self.make_error("invalid_cursor")
        return cursor


class ChangesArgsSchema(SingleValuedQuery):
    """Where to read from, and how much."""

    cursor = CursorField(
        metadata={
            "maxLength": CURSOR_MAX,
            "description": "The `cursor` of the previous answer. Without it: every list and "
            "task the user has, page by page (follow `cursor` while `has_more`); with it: "
            "what changed since. Example: `MS5kLjEyLjIuNDMuMTc5NjY0MDAwMC4zZjJhOWMxYjdkNGU`.",
        },
    )
    limit = fields.Integer(
        load_default=500,
        validate=validate.Range(min=1, max=LIMIT_MAX),
        metadata={"description": "Items per answer (1-1000). Example: `100`."},
    )


def _item(kind: str, deleted: bool, data: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "type": {"type": "string", "enum": [kind], "description": "What changed."},
        "id": {"type": "integer", "format": "int64", "description": f"The {kind}'s id."},
        "deleted": {
            "type": "boolean",
            "enum": [deleted],
            "description": "It was deleted: remove it." if deleted else "It exists: upsert it.",
        },
    }
    required = ["type", "id", "deleted"]
    if data is not None:
        properties["etag"] = {"type": "string", "description": f"The {kind}'s ETag."}
        properties["data"] = {
            "$ref": f"#/components/schemas/{data}",
            "description": f"The {kind} as GET of it answers.",
        }
        required += ["etag", "data"]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# The change items, one schema each, so that a generated client narrows on type and deleted.
ITEM_SCHEMAS = {
    "ListChange": _item("list", False, "TaskList"),
    "ListDeletion": _item("list", True, None),
    "TaskChange": _item("task", False, "Task"),
    "TaskDeletion": _item("task", True, None),
}
PAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "changes": {
            "type": "array",
            "items": {"oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in ITEM_SCHEMAS]},
            "description": "Oldest first; an item may come again (apply each idempotently).",
        },
        "cursor": {
            "type": "string",
            "description": "Send it back as `cursor`: for the next page while `has_more`, "
            "else for the next poll.",
        },
        "has_more": {"type": "boolean", "description": "More is ready now: ask again at once."},
    },
    "required": ["changes", "cursor", "has_more"],
    "additionalProperties": False,
}


def document(spec: Any) -> None:
    """The feed's schemas, as components the operation refers to."""
    for name, schema in ITEM_SCHEMAS.items():
        spec.components.schema(name, schema)
    spec.components.schema("ChangesPage", PAGE_SCHEMA)
