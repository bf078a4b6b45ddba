"""Marshmallow schemas for tasks: request validation and the documented responses."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ..models import DESCRIPTION_MAX, TITLE_MAX

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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
    """``2026-11-26T17:38:00.123456Z``: UTC, microseconds, ``Z``. Documented as date-time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)  # "iso" keeps the OpenAPI format date-time

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.strftime(TIMESTAMP_FORMAT)


class StrictBoolean(fields.Boolean):
    """Only JSON ``true``/``false``: not ``"true"``, ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


def _title(**kwargs: Any) -> TrimmedString:
    return TrimmedString(
        validate=[validate.Length(min=1, max=TITLE_MAX), storable_text],
        metadata={
            "description": "1-200 characters once surrounding white space is trimmed; "
            "stored and returned trimmed.",
            "example": "Buy milk",
        },
        **kwargs,
    )


def _description(**kwargs: Any) -> fields.String:
    return fields.String(
        allow_none=True,
        validate=[validate.Length(max=DESCRIPTION_MAX), storable_text],
        metadata={
            "description": "Free text, at most 1000 characters, or null.",
            "example": "Two litres, semi-skimmed",
        },
        **kwargs,
    )


def _completed(**kwargs: Any) -> StrictBoolean:
    return StrictBoolean(
        metadata={"description": "JSON true or false.", "example": False}, **kwargs
    )


class TaskSchema(ma.Schema):
    """A task as the API returns it, and the body that creates one."""

    id = fields.Integer(
        dump_only=True, metadata={"description": "Assigned by the service.", "example": 42}
    )
    user_id = fields.String(
        dump_only=True,
        metadata={
            "description": "The owner: the token's subject.",
            "example": "k3J9xQ2mN8pL4vR7sT1wY6zA0bC5dE2f",
        },
    )
    title = _title(required=True)
    description = _description(load_default=None)
    completed = _completed(load_default=False)
    created_at = UTCTimestamp(
        dump_only=True,
        metadata={"description": "UTC, ISO 8601.", "example": "2026-11-26T17:38:00.123456Z"},
    )
    updated_at = UTCTimestamp(
        dump_only=True,
        metadata={
            "description": "UTC, ISO 8601; moves on every change.",
            "example": "2026-11-26T17:38:00.123456Z",
        },
    )


class TaskUpdateSchema(ma.Schema):
    """Fields to change: each optional, at least one. ``null`` clears the description."""

    title = _title()
    description = _description()
    completed = _completed()

    @ma.validates_schema
    def _at_least_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Give at least one of title, description, completed.")


class TaskToggleSchema(ma.Schema):
    """Optional body of the toggle route: set ``completed`` explicitly instead of flipping it."""

    completed = _completed()


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

