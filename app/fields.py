"""marshmallow fields the resources share: text as the databases can store it, trimmed
text, UTC timestamps, strict booleans, and query strings whose parameters come once."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import ColumnElement

from .models import MAX_ID, utc_text


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
    """Text stored without its surrounding white space: 1 to ``max_length`` characters once
    trimmed. Documented by a pattern (any text whose trimmed length fits, surrounding
    white space allowed), since the raw string's length is not the rule."""

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


class StrictBoolean(fields.Boolean):
    """Only JSON ``true``/``false``: not ``"true"``, ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


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


class Id(fields.Integer):
    """An id of one of the user's resources: a positive 64-bit integer (a JSON number in a
    body; a query string's digits)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "int64", **kwargs.pop("metadata", {})}
        super().__init__(validate=validate.Range(min=1, max=MAX_ID), metadata=metadata, **kwargs)


# The fields every resource has, as makers for app/representation.py's Field.


def assigned_id(example: int) -> Callable[..., fields.Field]:
    def make(**kwargs: Any) -> fields.Field:
        metadata = {"description": "Assigned by the service.", "example": example}
        return fields.Integer(metadata={**metadata, "format": "int64"}, **kwargs)

    return make


def owner(**kwargs: Any) -> fields.Field:
    return fields.String(
        metadata={
            "description": "The owner: the token's subject.",
            "example": "k3J9xQ2mN8pL4vR7sT1wY6zA0bC5dE2f",
        },
        **kwargs,
    )


def moment(description: str, example: str) -> Callable[..., fields.Field]:
    def make(**kwargs: Any) -> fields.Field:
        return UTCTimestamp(metadata={"description": description, "example": example}, **kwargs)

    return make
