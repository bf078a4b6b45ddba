"""Safe retries of a create: the ``Idempotency-Key`` header, for every resource.

The key (one key space per user, for every kind of create) is claimed by inserting its
row; the primary key (user_id, key) decides between concurrent duplicates. The claim, the
new resource and the response kept for replays are one transaction, so a duplicate sees
either nothing or all of it. Expired keys (24 hours) are removed by the creates
themselves, a bounded batch at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import abort
from marshmallow import fields, validate
from sqlalchemy import bindparam, delete, select, text, tuple_, update

from . import errors
from .auth import Identity
from .database import connection
from .etags import ETAG_HEADER, respond
from .models import IDEMPOTENCY_KEY_MAX, IdempotencyKey
from .owners import Write, write

idempotency_keys = IdempotencyKey.__table__
TTL = timedelta(hours=24)
EXPIRED_BATCH = 100  # expired keys removed per keyed create: a bounded cost


class IdempotencyKeySchema(ma.Schema):
    """A create's optional ``Idempotency-Key`` header."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[
            validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX),
            validate.Regexp(r"^[ -~]+$", error="Must be printable ASCII characters."),
        ],
        metadata={
            "description": "1-255 printable ASCII characters chosen by the client, e.g. a "
            "UUID: the same key with the same body within 24 hours answers the first "
            "response again instead of creating another. "
            "Example: `5f0c6a4e-1d2b-4c8e-9f3a-7b6d5e4c3b2a`.",
        },
    )


def request_hash(kind: str, data: Mapping[str, Any]) -> str:
    """What identifies a create for its key: what it creates and the validated fields
    (defaults included), so that equivalent bodies are the same request."""
    canonical = json.dumps({kind: data}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    """What a create made, as its first response says it."""

    resource_id: int
    body: str
    etag: str


@dataclass(frozen=True)
class Outcome:
    """What a create with an Idempotency-Key came to."""

    created: Created | None = None  # the response to send (this request's, or the first's)
    replayed: bool = False  # the first response, answered again
    conflict: str | None = None  # "body" (another body, same key) or "running"


MOMENT = idempotency_keys.c.created_at.type
# Claim the key: a new row, or an expired one taken over; nothing if it is in use.
CLAIM_KEY = text(
    'INSERT INTO idempotency_keys (user_id, "key", request_hash, created_at) '
    "VALUES (:owner, :idempotency_key, :hash, :now) "
    'ON CONFLICT (user_id, "key") DO UPDATE SET request_hash = excluded.request_hash, '
    "created_at = excluded.created_at, resource_id = NULL, response = NULL, etag = NULL "
    'WHERE idempotency_keys.created_at < :expired RETURNING "key"'
).bindparams(bindparam("now", type_=MOMENT), bindparam("expired", type_=MOMENT))
KEY = (
    idempotency_keys.c.user_id == bindparam("owner"),
    idempotency_keys.c.key == bindparam("idempotency_key"),
)
KEEP_RESPONSE = (
    update(idempotency_keys)
    .where(*KEY)
    .values(
        resource_id=bindparam("kept_id"),
        response=bindparam("kept_body"),
        etag=bindparam("kept_etag"),
    )
)
KEPT = select(
    idempotency_keys.c.request_hash,
    idempotency_keys.c.resource_id,
    idempotency_keys.c.response,
    idempotency_keys.c.etag,
).where(*KEY)
EXPIRED = (
    select(idempotency_keys.c.user_id, idempotency_keys.c.key)
    .where(idempotency_keys.c.created_at < bindparam("expired", type_=MOMENT))
    .order_by(idempotency_keys.c.created_at)
    .limit(EXPIRED_BATCH)
)
REMOVE_EXPIRED = delete(idempotency_keys).where(
    tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(EXPIRED)
)


def create_once(
    identity: Identity, key: str, digest: str, create: Callable[[Write], Created]
) -> Outcome:
    """Run ``create`` (in the user's write transaction) unless ``key`` was used by this
    user in the last 24 hours: then the first response, or the conflict."""
    params = {"owner": identity.user_id, "idempotency_key": key}
    created = None
    with write(identity) as w:
        claim = {**params, "hash": digest, "now": w.now, "expired": w.now - TTL}
        if w.conn.execute(CLAIM_KEY, claim).first() is not None:
            created = create(w)
            kept = {"kept_id": created.resource_id, "kept_body": created.body}
            w.conn.execute(KEEP_RESPONSE, {**params, **kept, "kept_etag": created.etag})
    if created is not None:
        remove_expired(w.now)
        return Outcome(created=created)
    with connection() as conn:
        kept_row = conn.execute(KEPT, params).one_or_none()
    if kept_row is None or kept_row.response is None:
        return Outcome(conflict="running")
    if kept_row.request_hash != digest:
        return Outcome(conflict="body")
    first = Created(kept_row.resource_id, kept_row.response, kept_row.etag)
    return Outcome(created=first, replayed=True)


def create(
    identity: Identity,
    key: str | None,
    kind: str,
    data: Mapping[str, Any],
    make: Callable[[Write], Created],
) -> tuple[Created, bool]:
    """A create of ``kind`` with the validated ``data``: ``make`` runs in the user's write
    transaction, and with a key only once. Returns what to answer and whether it is a
    replay; a key used with another body is a 422, one still running a 409."""
    if key is None:
        with write(identity) as w:
            return make(w), False
    outcome = create_once(identity, key, request_hash(kind, data), make)
    if outcome.conflict == "body":
        abort(
            422,
            message=errors.KEY_REUSED,
            errors={"headers": {"Idempotency-Key": ["Already used with another body."]}},
        )
    if outcome.conflict == "running":
        abort(409, message=errors.KEY_RUNNING, headers={"Retry-After": "1"})
    assert outcome.created is not None
    return outcome.created, outcome.replayed


def created_headers(what: str) -> dict[str, Any]:
    """The headers a create's 201 is documented with."""
    return {
        "Location": {"description": f"URL of the new {what}.", "schema": {"type": "string"}},
        "ETag": ETAG_HEADER,
        "Idempotent-Replayed": {
            "description": "`true` when this is the first response to the same "
            "Idempotency-Key and body, answered again.",
            "schema": {"type": "string", "enum": ["true"]},
            "example": "true",
        },
    }


def respond_created(created: Created, replayed: bool, location: str) -> Response:
    """The 201 of a create (or its replay): the body, ``Location`` and ETag it had."""
    headers = {"Location": location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return respond(created.body, 201, headers, etag=created.etag)


def remove_expired(now: datetime) -> None:
    """Delete a bounded batch of expired keys (oldest first, by their created_at index):
    run by every keyed create, so the table never needs an operator's cron job."""
    with connection() as conn:
        conn.execute(REMOVE_EXPIRED, {"expired": now - TTL})
