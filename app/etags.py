"""ETags and conditional requests, for every resource.

A resource's strong ETag is ``"<id>.<version>.<representation>"``: the row's id (so that
an ETag of one task never matches another), its version, bumped by every change, and a
digest of the resource's field names, so that adding a field to the API changes every
ETag once. ``If-None-Match`` (reads) compares weakly and answers 304;
``If-Match`` (writes) compares strongly, and becomes the versions a conditional write puts
in its own WHERE clause, so that the check and the write are one atomic step.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from marshmallow import fields
from sqlalchemy import ColumnElement, bindparam

ANY_VERSION = None  # If-Match: * (or no If-Match at all): any existing version


def at_versions(version: ColumnElement[int]) -> ColumnElement[bool]:
    """A conditional write's own WHERE clause: the row is at one of the versions its
    If-Match accepts (``versions_param``), so that the check and the write are one step.
    When it matches nothing but the row exists, the answer is a 412 (``errors.Refused``)."""
    return version.in_(bindparam("versions", expanding=True))


def versions_param(versions: Sequence[int] | None) -> dict[str, Any]:
    return {} if versions is ANY_VERSION else {"versions": list(versions)}


ETAG_HEADER = {
    "description": "The strong ETag of what the response describes.",
    "schema": {"type": "string"},
    "example": '"42.3.6c1b2f0e"',
}
NOT_MODIFIED = {
    "description": "Not modified: the current ETag is in If-None-Match. No body.",
    "headers": {"ETag": ETAG_HEADER},
}


class Versions:
    """The ETags of one kind of resource, made from its versions."""

    def __init__(self, field_names: Sequence[str]) -> None:
        self.representation = format(zlib.crc32(",".join(field_names).encode()), "x")

    def etag(self, row_id: int, version: int) -> str:
        return f'"{row_id}.{version}.{self.representation}"'

    def if_match(self, row_id: int) -> Sequence[int] | None:
        """The versions of row ``row_id`` the request's If-Match accepts: ANY_VERSION
        without one (or with ``*``), else those of its strong ETags that are this row's
        (anything else matches nothing, so a malformed header is a 412, never ignored)."""
        if "If-Match" not in request.headers:
            return ANY_VERSION
        etags = request.if_match
        if etags.star_tag:
            return ANY_VERSION
        versions = []
        for tag in etags.as_set():  # strong tags only: a weak one never matches
            parts = (tag or "").split(".")
            if len(parts) == 3 and parts[0] == str(row_id) and parts[2] == self.representation:
                if parts[1].isdigit():
                    versions.append(int(parts[1]))
        return versions


def respond(
    body: bytes | str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    etag: str,
    revalidate: bool = False,
) -> Response:
    """An encoded JSON body with its ETag. A read (``revalidate``) answers 304 instead when
    its If-None-Match already has that ETag (weak comparison, as RFC 9110 asks)."""
    if revalidate and request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag})
    return current_app.response_class(
        body, status=status, headers={**(headers or {}), "ETag": etag}, mimetype="application/json"
    )


# The optional headers, documented on the operations that honour them (webargs parses them
# for the document; the values are read with werkzeug's request.if_match/if_none_match).
class IfNoneMatchSchema(ma.Schema):
    """A read's optional ``If-None-Match`` header."""

    if_none_match = fields.String(
        data_key="If-None-Match",
        metadata={
            "description": "ETags the client holds (comma-separated, or `*`): if the current "
            'one is among them the answer is 304 with no body. Example: `"42.3.6c1b2f0e"`.',
        },
    )


class IfMatchSchema(ma.Schema):
    """A write's optional ``If-Match`` header."""

    if_match = fields.String(
        data_key="If-Match",
        metadata={
            "description": "Change it only if its current ETag is one of these "
            "(comma-separated, or `*` for any): otherwise 412 and nothing changes. "
            'Example: `"42.3.6c1b2f0e"`.',
        },
    )


def not_modified_component(spec: Any) -> None:
    spec.components.response("NotModified", NOT_MODIFIED)
