"""A task's one definition, and the marshmallow schemas built from it.

``TASK_FIELDS`` lists a task's fields in the order the API writes them, each with its
marshmallow field (type, rules, documentation) and how a create treats it. From that
list come the response schema, the create and update bodies, the SQL columns a task
is read with (``task_columns``: the same names, each formatted as the API writes it)
and the serialiser (``task_json``). Adding a field is one entry here, plus its column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import ColumnElement, Table

from ..models import DESCRIPTION_MAX, TITLE_MAX, utc_text


def storable_text(value: str) -> None:
    """Reject text the databases cannot store (NUL, lone UTF-16 surrogates)."""
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError("Must be valid Unicode text.") from None


class TrimmedString(fields.String):
    """A string stored without its surrounding white space."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class UTCTimestamp(fields.DateTime):
    """``2026-11-26T17:38:00.123456Z``: UTC, microseconds, ``Z``; documented as date-time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    @staticmethod
    def sql(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return utc_text(column)


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
        validate=[validate.Length(min=1, max=TITLE_MAX), storable_text],
        metadata={
            "description": "1-200 characters once surrounding white space is trimmed; "
            "stored and returned trimmed.",
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
    return StrictBoolean(metadata={"description": "JSON true or false.", "example": False}, **kwargs)


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


@dataclass(frozen=True)
class TaskField:
    name: str
    make: Callable[..., fields.Field]  # the marshmallow field: type, rules, documentation
    # How a create treats it: None for a field the client cannot set (read-only),
    # else the marshmallow options of the create body (required, load_default).
    create: dict[str, Any] | None = None


TASK_FIELDS: Sequence[TaskField] = (
    TaskField("id", _id),
    TaskField("user_id", _user_id),
    TaskField("title", _title, {"required": True}),
    TaskField("description", _description, {"load_default": None}),
    TaskField("completed", _completed, {"load_default": False}),
    TaskField("created_at", _created_at),
    TaskField("updated_at", _updated_at),
)
FIELD_NAMES = tuple(field.name for field in TASK_FIELDS)
WRITABLE = tuple(field for field in TASK_FIELDS if field.create is not None)

# A task as the API returns it: every field is always sent.
TaskSchema = ma.Schema.from_dict(
    {f.name: f.make(required=True, dump_only=f.create is None) for f in TASK_FIELDS},
    name="TaskSchema",
)
# The body that creates a task: read-only fields are unknown fields, so a 422.
TaskCreateSchema = ma.Schema.from_dict(
    {f.name: f.make(**(f.create or {})) for f in WRITABLE}, name="TaskCreateSchema"
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
    return dict(zip(FIELD_NAMES, row))


class TaskQueryArgsSchema(ma.Schema):
    """Filter, sort and page the list."""

    @ma.pre_load
    def _one_value_each(self, data: Any, **kwargs: Any) -> Any:
        # webargs hands over a proxy of the query MultiDict and would silently take the
        # first of repeated values; a second value is never ignored unchecked.
        multi = getattr(data, "data", None)
        if multi is not None and hasattr(multi, "getlist"):
            errors = {
                name: ["Give this parameter only once."]
                for name in self.fields
                if len(multi.getlist(name)) > 1
            }
            if errors:
                raise ma.ValidationError(errors)
        return data

    status = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "pending", "completed"]),
        metadata={"description": "Which tasks to list."},
    )
    sort = fields.String(
        load_default="created",
        validate=validate.OneOf(["created", "updated", "title"]),
        metadata={"description": "Sort key; ties are broken by id."},
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
