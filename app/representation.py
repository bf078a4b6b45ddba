"""A resource's one definition, and what is built from it.

A resource lists its fields in the order the API writes them, each with its marshmallow
field (type, rules, documentation) and how a create treats it. From that list come the
response schema, the create and update bodies, the SQL columns a row is read with (the
same names, each formatted as the API writes it) and the serialiser. Adding a field is
one entry in the list, plus its column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import marshmallow as ma
from flask import Response, current_app
from marshmallow import fields
from sqlalchemy import ColumnElement, Table

from .etags import Versions, respond

READ_ONLY = object()  # the client cannot set it
REQUIRED = object()  # a create must send it


@dataclass(frozen=True)
class ChosenByService:
    """A create that leaves the field out gets what the service chooses (``description``)."""

    description: str


@dataclass(frozen=True)
class Field:
    name: str
    make: Callable[..., fields.Field]  # the marshmallow field: type, rules, documentation
    # On create: READ_ONLY, REQUIRED, ChosenByService(...), or the value when left out
    # (a callable makes it).
    create: Any = READ_ONLY
    # False: a PUT may not send it (it changes through another route, named by the
    # representation's ``elsewhere`` message).
    updatable: bool = True


class _Create(ma.Schema):
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    @ma.post_load
    def _defaults(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        missing = {k: v() if callable(v) else v for k, v in self.DEFAULTS.items() if k not in data}
        return {**missing, **data}


class _Update(ma.Schema):
    ELSEWHERE: ClassVar[dict[str, str]] = {}  # fields a PUT may not send -> why not
    NAMES: ClassVar[str] = ""

    @ma.pre_load
    def _not_here(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            refused = {name: [why] for name, why in self.ELSEWHERE.items() if name in data}
            if refused:
                raise ma.ValidationError(refused)
        return data

    @ma.validates_schema
    def _at_least_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError(f"Give at least one of {self.NAMES}.")


class Representation:
    """One resource's fields, and the schemas, SQL columns and serialiser made from them."""

    def __init__(self, name: str, definition: Sequence[Field], *, elsewhere: str = "") -> None:
        self.fields = tuple(definition)
        self.names = tuple(field.name for field in self.fields)
        self.versions = Versions(self.names)  # its ETags
        # As the API returns it: every field is always sent.
        self.schema = ma.Schema.from_dict(
            {f.name: f.make(required=True, dump_only=f.create is READ_ONLY) for f in self.fields},
            name=f"{name}Schema",
        )
        writable = [f for f in self.fields if f.create is not READ_ONLY]
        # The create body: read-only fields are unknown fields, so a 422.
        self.create_schema = _Create.from_dict(
            {f.name: _create_field(f) for f in writable}, name=f"{name}CreateSchema"
        )
        self.create_schema.DEFAULTS = {
            f.name: f.create
            for f in writable
            if f.create is not REQUIRED and not isinstance(f.create, ChosenByService)
        }
        # The fields to change: each optional, at least one; null clears a nullable field.
        updatable = [f for f in writable if f.updatable]
        self.update_schema = _Update.from_dict(
            {f.name: f.make() for f in updatable}, name=f"{name}UpdateSchema"
        )
        self.update_schema.ELSEWHERE = {f.name: elsewhere for f in self.fields if not f.updatable}
        self.update_schema.NAMES = ", ".join(f.name for f in updatable)

    def columns(self, table: Table) -> tuple[ColumnElement[Any], ...]:
        """The fields as SQL, labelled with their names, in order, each formatted as the
        API writes it."""
        columns = []
        for name, field in self.schema().fields.items():
            column = table.c[name]
            sql = getattr(field, "sql", None)
            columns.append((sql(column) if sql else column).label(name))
        return tuple(columns)

    def json(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row of ``columns`` (and possibly more columns after them) as the API's JSON."""
        # Why not the schema's dump: marshmallow's per-field work was a large share of a
        # page's time (bench/README.md, "What we keep and why"); the columns are formatted.
        return dict(zip(self.names, row, strict=False))  # extra trailing columns are dropped

    def encoded(self, row: Any) -> str:
        """A row of ``columns`` (with ``version`` after them) as the API's JSON text."""
        return current_app.json.dumps(self.json(row))

    def etag(self, row: Any) -> str:
        return self.versions.etag(row.id, row.version)

    def answer(
        self,
        row: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        revalidate: bool = False,
    ) -> Response:
        """The row as a response with its ETag (a read: ``revalidate``, 304 when it matches)."""
        return respond(
            self.encoded(row), status, headers, etag=self.etag(row), revalidate=revalidate
        )


def _create_field(field: Field) -> fields.Field:
    """The create body's field: required, or optional with its default in the description
    (not as a JSON Schema default, which typed clients read as "always present")."""
    if field.create is REQUIRED:
        return field.make(required=True)
    made = field.make()
    if isinstance(field.create, ChosenByService):
        shown = field.create.description
    else:
        default = field.create() if callable(field.create) else field.create
        shown = json.dumps(made.serialize("value", {"value": default}))
    made.metadata = {
        **made.metadata,
        "description": f"{made.metadata['description']} Default: {shown}.",
    }
    return made
