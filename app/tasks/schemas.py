"""A task's one definition (see app/representation.py), and the bodies and query strings
of its routes.

``TASK`` lists a task's fields in the order the API writes them: the response, create and
update schemas, the SQL columns a task is read with and the serialiser all come from it.
Adding a field is one entry there, plus its column.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import ColumnElement, case

from .. import errors
from ..fields import (
    Id,
    SingleValuedQuery,
    StrictBoolean,
    TrimmedString,
    UTCTimestamp,
    assigned_id,
    moment,
    owner,
    storable_text,
)
from ..models import (
    DEFAULT_PRIORITY,
    DESCRIPTION_MAX,
    POSITION_MAX,
    PRIORITIES,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
)
from ..representation import READ_ONLY, REQUIRED, ChosenByService, Field, Representation


class Priority(fields.String):
    """``"low" | "medium" | "high"``, stored as its rank (0, 1, 2) so that it sorts."""

    default_error_messages = {"invalid": f"Must be one of: {', '.join(PRIORITIES)}."}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"enum": list(PRIORITIES), **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and value in PRIORITIES:
            return PRIORITIES.index(value)
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else PRIORITIES[value]

    @staticmethod
    def sql(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return case(dict(enumerate(PRIORITIES)), value=column)


def tag_key(tag: str) -> str:
    """What makes two tags the same: their case-folded text."""
    return tag.casefold()


class Tags(fields.List):
    """At most 20 tags, each trimmed and 1-50 characters, unique ignoring case, in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            TrimmedString(TAG_MAX),
            validate=validate.Length(max=TAGS_MAX),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        tags = super()._deserialize(value, attr, data, **kwargs)
        seen: set[str] = set()
        for tag in tags:
            if tag_key(tag) in seen:
                raise ma.ValidationError(f"Tags must be unique ignoring case; {tag!r} is repeated.")
            seen.add(tag_key(tag))
        return tags


def _title(**kwargs: Any) -> fields.Field:
    return TrimmedString(
        TITLE_MAX,
        metadata={
            "description": "1-200 characters once surrounding white space is trimmed (as "
            "JavaScript's trim() does); stored and returned trimmed. No NUL characters.",
            "example": "Buy milk",
        },
        **kwargs,
    )


def _description(**kwargs: Any) -> fields.Field:
    return fields.String(
        allow_none=True,
        validate=[validate.Length(max=DESCRIPTION_MAX), storable_text],
        metadata={
            "description": "Free text, at most 1000 characters, or null.",
            "example": "Two litres, semi-skimmed",
        },
        **kwargs,
    )


def _completed(**kwargs: Any) -> fields.Field:
    return StrictBoolean(
        metadata={"description": "JSON true or false.", "example": False}, **kwargs
    )


def _priority(**kwargs: Any) -> fields.Field:
    return Priority(
        metadata={"description": "How important the task is.", "example": "high"}, **kwargs
    )


def _due_date(**kwargs: Any) -> fields.Field:
    return UTCTimestamp(
        allow_none=True,
        metadata={
            "description": "When the task is due, or null. Sent as ISO 8601 with an offset "
            "(`Z` or `+02:00`); returned in UTC.",
            "example": "2026-12-24T17:00:00.000000Z",
        },
        **kwargs,
    )


def _tags(**kwargs: Any) -> fields.Field:
    return Tags(
        metadata={
            "description": "At most 20 labels, each 1-50 characters once trimmed, unique "
            "ignoring case; kept in the order sent.",
            "example": ["home", "errands"],
        },
        **kwargs,
    )


def _list_id(**kwargs: Any) -> fields.Field:
    return Id(
        strict=True,
        metadata={
            "description": "The list the task is in. Set on create (a subtask: its parent's "
            "list); changed by the task's move route.",
            "example": 7,
        },
        **kwargs,
    )


def _parent_id(**kwargs: Any) -> fields.Field:
    return Id(
        strict=True,
        allow_none=True,
        metadata={
            "description": "The task this one is a subtask of (in the same list), or null at "
            "the top level; at most 4 levels. Set on create; changed by the move route.",
            "example": None,
        },
        **kwargs,
    )


def _position(**kwargs: Any) -> fields.Field:
    return fields.String(
        metadata={
            "description": "The task's place among its siblings (same list, same parent): "
            "sort by it, byte by byte. Opaque, at most 64 characters; changed by the move "
            "route.",
            "example": "a0",
            "maxLength": POSITION_MAX,
        },
        **kwargs,
    )


def _completed_at(**kwargs: Any) -> fields.Field:
    return UTCTimestamp(
        allow_none=True,
        metadata={
            "description": "When the task was completed; null while it is not.",
            "example": None,
        },
        **kwargs,
    )


TASK = Representation(
    "Task",
    (
        Field("id", assigned_id(42)),
        Field("user_id", owner),
        Field("title", _title, REQUIRED),
        Field("description", _description, None),
        Field("completed", _completed, False),
        Field("priority", _priority, DEFAULT_PRIORITY),
        Field("due_date", _due_date, None),
        Field("tags", _tags, list),
        Field("list_id", _list_id, ChosenByService("the user's default list"), updatable=False),
        Field("parent_id", _parent_id, None, updatable=False),
        Field("position", _position, READ_ONLY, updatable=False),
        Field("completed_at", _completed_at),
        Field("created_at", moment("UTC, ISO 8601.", "2026-11-26T17:38:00.123456Z")),
        Field(
            "updated_at",
            moment("UTC, ISO 8601; moves on every change.", "2026-11-26T17:38:00.123456Z"),
        ),
    ),
    elsewhere=errors.USE_MOVE,
)
FIELD_NAMES = TASK.names
TaskSchema = TASK.schema
TaskCreateSchema = TASK.create_schema
TaskUpdateSchema = TASK.update_schema
task_json = TASK.json


class TaskToggleSchema(ma.Schema):
    """Optional body of the toggle route: set ``completed`` explicitly instead of flipping it."""

    completed = _completed()


class TaskMoveSchema(ma.Schema):
    """Where to put the task (and its subtree): every field optional."""

    list_id = Id(
        strict=True,
        metadata={
            "description": "The destination list. Default: the parent's list when `parent_id` "
            "is given, else the task's list.",
            "example": 7,
        },
    )
    parent_id = Id(
        strict=True,
        allow_none=True,
        metadata={
            "description": "The new parent, or null for the top level. Default: the task's "
            "parent when it stays in its list, the top level when it changes list.",
            "example": 42,
        },
    )
    after_id = Id(
        strict=True,
        allow_none=True,
        metadata={
            "description": "The sibling (at the destination) to place the task right after; "
            "null or absent: first among its siblings.",
            "example": 43,
        },
    )


NO_PARENT = "none"
SORTS = ("created", "updated", "title", "due_date", "priority", "position")
ASCENDING_BY_DEFAULT = ("position",)  # every other sort is newest, or greatest, first


class ParentFilter(fields.Field):
    """A task's id, or ``none`` (the top level)."""

    default_error_messages = {"invalid": "Must be a task's id or none."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if value == NO_PARENT:
            return NO_PARENT
        try:
            return Id().deserialize(value)
        except ma.ValidationError:
            raise self.make_error("invalid") from None


class TaskQueryArgsSchema(SingleValuedQuery):
    """Filter, sort and page the list."""

    status = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "pending", "completed"]),
        metadata={"description": "Which tasks to list."},
    )
    sort = fields.String(
        load_default="created",
        validate=validate.OneOf(SORTS),
        metadata={
            "description": "Sort key; ties are broken by id. Tasks without a due date come "
            "last in both orders; `priority` descending is high, medium, low; `position` is "
            "the manual order (with `list_id`: the list's siblings in order)."
        },
    )
    order = fields.String(
        validate=validate.OneOf(["desc", "asc"]),
        metadata={
            "description": "Sort direction. Default: `desc`, except `asc` for `sort=position`."
        },
    )
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": "1-based page number; past the last page the list is empty."},
    )
    page_size = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "Tasks per page (1-500)."},
    )
    q = fields.String(
        validate=[validate.Length(min=1, max=200), storable_text],
        metadata={
            "description": "Tasks whose title or description contains this text, ignoring "
            "case; `%`, `_` and `\\` are plain characters. Example: `milk`.",
        },
    )
    priority = fields.List(
        Priority(),
        metadata={
            "description": "Repeatable: tasks with any of these priorities. Example: "
            "`priority=high&priority=medium`.",
        },
    )
    tag = fields.List(
        TrimmedString(TAG_MAX),
        metadata={
            "description": "Repeatable: tasks having every one of these tags, ignoring case. "
            "Example: `tag=errands`.",
        },
    )
    due_before = UTCTimestamp(
        metadata={
            "description": "Tasks due strictly before this moment (ISO 8601 with an offset). "
            "Example: `2026-12-31T00:00:00Z`.",
        }
    )
    due_after = UTCTimestamp(
        metadata={
            "description": "Tasks due at or after this moment (ISO 8601 with an offset). "
            "Example: `2026-12-01T00:00:00+01:00`.",
        }
    )
    overdue = fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        metadata={
            "description": "`true`: not completed and due before now; `false`: all the others. "
            "Example: `true`.",
        },
    )
    list_id = Id(
        metadata={
            "description": "Only the tasks of this list (subtasks included); an id that is "
            "not one of the user's lists matches nothing. Example: `7`.",
        }
    )
    parent_id = ParentFilter(
        metadata={
            "description": "A task's id: its direct subtasks; `none`: top-level tasks only. "
            "Example: `none`.",
            "oneOf": [
                {"type": "integer", "format": "int64", "minimum": 1},
                {"type": "string", "enum": [NO_PARENT]},
            ],
        }
    )
    updated_since = UTCTimestamp(
        metadata={
            "description": "Tasks updated at or after this moment (ISO 8601 with an offset), "
            "for a frontend that polls for changes. Example: `2026-11-30T09:00:00Z`.",
        }
    )


class ClearCompletedArgsSchema(SingleValuedQuery):
    """``DELETE /tasks?status=completed``: that exact filter and nothing else."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["completed"]),
        metadata={"description": "Must be `completed`: only completed tasks can be cleared."},
    )
