"""A task's one definition, and the marshmallow schemas built from it.

``TASK_FIELDS`` lists a task's fields in the order the API writes them, each with its
marshmallow field (type, rules, documentation) and how a create treats it. From that
list come the response schema, the create and update bodies, the SQL columns a task
is read with (``task_columns``: the same names, each formatted as the API writes it)
and the serialiser (``task_json``). Adding a field is one entry here, plus its column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import ColumnElement, Table, case

from ..models import (
    DEFAULT_PRIORITY,
    DESCRIPTION_MAX,
    IDEMPOTENCY_KEY_MAX,
    PRIORITIES,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    utc_text,
)


def storable_text(value: str) -> None:
    """Reject text the databases cannot store (NUL, lone UTF-16 surrogates)."""
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError("Must be valid Unicode text.") from None


# White space as JavaScript's String.prototype.trim() removes it (what ECMAScript regular
# expressions call white space): a frontend that trims agrees with the service on a title.
WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SURROUNDING_WHITESPACE = re.compile(f"^[{WHITESPACE}]+|[{WHITESPACE}]+$")


class TrimmedString(fields.String):
    """Text stored without its surrounding white space: 1 to ``max_length`` characters
    XX
        white space), since the raw string's length is not the rule."""

    default_error_messages = {
        "blank": "Must not be blank.",
        "too_long": "Must be at most {max} characters once trimmed.",
    }

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        self.max_length = max_length
        pattern = rf"^\s*[^\s\u0000](?:[^\u0000]{{0,{max_length - 2}}}[^\s\u0000])?\s*$"
        metadata = {"pattern": pattern, **kwargs.pop("metadata", {})}
        super().__init__(validate=[self._length, storable_text], metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _SURROUNDING_WHITESPACE.sub("", super()._deserialize(value, attr, data, **kwargs))

    def _length(self, value: str) -> None:
        if not value:
            raise self.make_error("blank")
        if len(value) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)


class UTCTimestamp(fields.AwareDateTime):
    """Written ``2026-11-26T17:38:00.123456Z`` (UTC, microseconds, ``Z``); read as ISO 8601
    with an explicit offset (``Z`` or ``+02:00``), kept in UTC. Documented as date-time."""

    default_error_messages = {"range": "Must be a date-time that exists in UTC (years 1-9999)."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("range") from None

    @staticmethod
    def sql(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return utc_text(column)


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


class StrictBoolean(fields.Boolean):
    """Only JSON ``true``/``false``: not ``"true"``, ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


def _id(**kwargs: Any) -> fields.Field:
    return fields.Integer(
        metadata={"description": "Assigned by the service.", "example": 42, "format": "int64"},
        **kwargs,
    )


def _user_id(**kwargs: Any) -> fields.Field:
    return fields.String(
        metadata={
            "description": "The owner: the token's subject.",
            "example": "k3J9xQ2mN8pL4vR7sT1wY6zA0bC5dE2f",
        },
        **kwargs,
    )


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


def _completed_at(**kwargs: Any) -> fields.Field:
    return UTCTimestamp(
        allow_none=True,
        metadata={
            "description": "When the task was completed; null while it is not.",
            "example": None,
        },
        **kwargs,
    )


def _created_at(**kwargs: Any) -> fields.Field:
    return UTCTimestamp(
        metadata={"description": "UTC, ISO 8601.", "example": "2026-11-26T17:38:00.123456Z"},
        **kwargs,
    )


def _updated_at(**kwargs: Any) -> fields.Field:
    return UTCTimestamp(
        metadata={
            "description": "UTC, ISO 8601; moves on every change.",
            "example": "2026-11-26T17:38:00.123456Z",
        },
        **kwargs,
    )


READ_ONLY = object()  # the client cannot set it
REQUIRED = object()  # a create must send it


@dataclass(frozen=True)
class TaskField:
    name: str
    make: Callable[..., fields.Field]  # the marshmallow field: type, rules, documentation
    # On create: READ_ONLY, REQUIRED, or the value when left out (a callable makes it).
    create: Any = READ_ONLY


TASK_FIELDS: Sequence[TaskField] = (
    TaskField("id", _id),
    TaskField("user_id", _user_id),
    TaskField("title", _title, REQUIRED),
    TaskField("description", _description, None),
    TaskField("completed", _completed, False),
    TaskField("priority", _priority, DEFAULT_PRIORITY),
    TaskField("due_date", _due_date, None),
    TaskField("tags", _tags, list),
    TaskField("completed_at", _completed_at),
    TaskField("created_at", _created_at),
    TaskField("updated_at", _updated_at),
)
FIELD_NAMES = tuple(field.name for field in TASK_FIELDS)
WRITABLE = tuple(field for field in TASK_FIELDS if field.create is not READ_ONLY)
DEFAULTS = {f.name: f.create for f in WRITABLE if f.create is not REQUIRED}

# A task as the API returns it: every field is always sent.
TaskSchema = ma.Schema.from_dict(
    {f.name: f.make(required=True, dump_only=f.create is READ_ONLY) for f in TASK_FIELDS},
    name="TaskSchema",
)


def _create_field(task_field: TaskField) -> fields.Field:
    """The create body's field: required, or optional with its default in the description
    (not as a JSON Schema default, which typed clients read as "always present")."""
    if task_field.create is REQUIRED:
        return task_field.make(required=True)
    field = task_field.make()
    default = task_field.create() if callable(task_field.create) else task_field.create
    shown = json.dumps(field.serialize("value", {"value": default}))
    field.metadata = {
        **field.metadata,
        "description": f"{field.metadata['description']} Default: {shown}.",
    }
    return field


class _WithDefaults(ma.Schema):
    @ma.post_load
    def _defaults(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        missing = {name: value() if callable(value) else value for name, value in DEFAULTS.items()}
        return {**{k: v for k, v in missing.items() if k not in data}, **data}


# The body that creates a task: read-only fields are unknown fields, so a 422.
TaskCreateSchema = _WithDefaults.from_dict(
    {f.name: _create_field(f) for f in WRITABLE}, name="TaskCreateSchema"
)


class _AtLeastOneField(ma.Schema):
    @ma.validates_schema
    def _at_least_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            names = ", ".join(f.name for f in WRITABLE)
            raise ma.ValidationError(f"Give at least one of {names}.")


# The fields to change: each optional, at least one; null clears a nullable field.
TaskUpdateSchema = _AtLeastOneField.from_dict(
    {f.name: f.make() for f in WRITABLE}, name="TaskUpdateSchema"
)


class TaskToggleSchema(ma.Schema):
    """Optional body of the toggle route: set ``completed`` explicitly instead of flipping it."""

    completed = _completed()


def task_columns(table: Table) -> tuple[ColumnElement[Any], ...]:
    """The task's fields as SQL, labelled with their names, in ``FIELD_NAMES`` order,
    each formatted as the API writes it."""
    columns = []
    for name, field in TaskSchema().fields.items():
        column = table.c[name]
        sql = getattr(field, "sql", None)
        columns.append((sql(column) if sql else column).label(name))
    return tuple(columns)


def task_json(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``task_columns`` (and possibly more columns after them) as the API's JSON."""
    # Why not TaskSchema().dump: marshmallow's per-field work was a large share of a
    # page's time (bench/README.md, "What we keep and why"); the columns are formatted.
    return dict(zip(FIELD_NAMES, row, strict=False))  # extra trailing columns are dropped


class SingleValuedQuery(ma.Schema):
    """Query parameters that are not lists may be given once."""

    @ma.pre_load
    def _one_value_each(self, data: Any, **kwargs: Any) -> Any:
        # webargs hands over a proxy of the query MultiDict and would silently take the
        # first of repeated values; a second value is never ignored unchecked.
        multi = getattr(data, "data", None)
        if multi is not None and hasattr(multi, "getlist"):
            errors = {
                name: ["Give this parameter only once."]
                for name, field in self.fields.items()
                if not isinstance(field, fields.List) and len(multi.getlist(name)) > 1
            }
            if errors:
                raise ma.ValidationError(errors)
        return data


class TaskQueryArgsSchema(SingleValuedQuery):
    """Filter, sort and page the list."""

    status = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "pending", "completed"]),
        metadata={"description": "Which tasks to list."},
    )
    sort = fields.String(
        load_default="created",
        validate=validate.OneOf(["created", "updated", "title", "due_date", "priority"]),
        metadata={
            "description": "Sort key; ties are broken by id. Tasks without a due date come "
            "last in both orders; `priority` descending is high, medium, low."
        },
    )
    order = fields.String(
        load_default="desc",
        validate=validate.OneOf(["desc", "asc"]),
        metadata={"description": "Sort direction."},
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


class IdempotencyKeySchema(ma.Schema):
    """The create's optional ``Idempotency-Key`` header."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[
            validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX),
            validate.Regexp(r"^[ -~]+$", error="Must be printable ASCII characters."),
        ],
        metadata={
            "description": "1-255 printable ASCII characters chosen by the client, e.g. a "
            "UUID: the same key with the same body within 24 hours answers the first "
            "response again instead of creating another task. "
            "Example: `5f0c6a4e-1d2b-4c8e-9f3a-7b6d5e4c3b2a`.",
        },
    )
