"""A list's one definition (see app/representation.py), and the bodies of its routes."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields

from .. import errors
from ..fields import Id, TrimmedString, assigned_id, moment, owner
from ..models import LIST_TITLE_MAX, POSITION_MAX
from ..representation import READ_ONLY, REQUIRED, Field, Representation

DEFAULT_TITLE = "Tasks"
EXAMPLE_MOMENT = "2026-12-07T09:00:00.000000Z"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class Color(fields.String):
    """``#rrggbb``, stored in lower case."""

    default_error_messages = {"invalid_color": "Must be a colour as #rrggbb (hex digits) or null."}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": f"^{_COLOR.pattern}$", **kwargs.pop("metadata", {})}
        super().__init__(allow_none=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _COLOR.fullmatch(text):
            raise self.make_error("invalid_color")
        return text.lower()


def _title(**kwargs: Any) -> fields.Field:
    return TrimmedString(
        LIST_TITLE_MAX,
        metadata={
            "description": "1-100 characters once surrounding white space is trimmed; stored "
            "and returned trimmed.",
            "example": "Groceries",
        },
        **kwargs,
    )


def _color(**kwargs: Any) -> fields.Field:
    return Color(
        metadata={"description": "`#rrggbb`, or null for none.", "example": "#3b82f6"}, **kwargs
    )


def _is_default(**kwargs: Any) -> fields.Field:
    return fields.Boolean(
        metadata={
            "description": "True for the user's default list (exactly one; it cannot be "
            "deleted; `/lists/default` names it).",
            "example": False,
        },
        **kwargs,
    )


def _position(**kwargs: Any) -> fields.Field:
    return fields.String(
        metadata={
            "description": "The list's place among the user's lists: sort by it, byte by "
            "byte. Opaque, at most 64 characters; changed by the list's move route.",
            "example": "a1",
            "maxLength": POSITION_MAX,
        },
        **kwargs,
    )


def _open_count(**kwargs: Any) -> fields.Field:
    return fields.Integer(
        metadata={
            "description": "The list's tasks that are not completed, subtasks included.",
            "example": 3,
        },
        **kwargs,
    )


LIST = Representation(
    "TaskList",
    (
        Field("id", assigned_id(7)),
        Field("user_id", owner),
        Field("title", _title, REQUIRED),
        Field("color", _color, None),
        Field("is_default", _is_default),
        Field("position", _position, READ_ONLY, updatable=False),
        Field("open_count", _open_count),
        Field("created_at", moment("UTC, ISO 8601.", EXAMPLE_MOMENT)),
        Field(
            "updated_at",
            moment(
                "UTC, ISO 8601; moves when the title, colour or position changes.", EXAMPLE_MOMENT
            ),
        ),
    ),
    elsewhere=errors.USE_LIST_MOVE,
)


class ListMoveSchema(ma.Schema):
    """Where to put the list: right after another of the user's lists, or first."""

    after_id = Id(
        strict=True,
        allow_none=True,
        metadata={
            "description": "The list to place it right after; null (or absent): first.",
            "example": 7,
        },
    )


# A list as the API sends it, for the documentation of every answer that carries one.
LIST_EXAMPLE = {
    "id": 7,
    "user_id": "k3J9xQ2mN8pL4vR7sT1wY6zA0bC5dE2f",
    "title": "Groceries",
    "color": "#3b82f6",
    "is_default": False,
    "position": "a1",
    "open_count": 3,
    "created_at": "2026-12-07T09:00:00.000000Z",
    "updated_at": "2026-12-07T09:00:00.000000Z",
}
