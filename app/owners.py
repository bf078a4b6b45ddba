"""A user's writes, one after another.

Every write of a user runs in a transaction that starts by bumping ``users.seq`` (adding
the user's row the first time, with the token's email and name). The row lock that
update takes is held until the transaction ends, so a user's writes never interleave:
positions are chosen among siblings nobody else is moving, the tree rules see a tree
nobody else is changing, and two tabs of one user cannot lose each other's changes.
Other users are not slowed down: each has a row of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, text

from .auth import Identity
from .database import transaction
from .models import User, utcnow

users = User.__table__

# Textual, the same on both databases, and so compiled once: SQLAlchemy's PostgreSQL
# insert() with ON CONFLICT is not cached, it would be compiled again for every write.
CLAIM_OWNER = text(
    "INSERT INTO users (id, email, name, created_at, seq) VALUES (:id, :email, :name, :now, 1) "
    "ON CONFLICT (id) DO UPDATE SET seq = users.seq + 1 RETURNING seq"
).bindparams(bindparam("now", type_=users.c.created_at.type))


@dataclass(frozen=True)
class Write:
    """An open write transaction of one user."""

    conn: Connection
    user_id: str
    seq: int  # the user's write counter, as this write made it
    now: datetime  # this write's moment: every row it changes gets it


@contextmanager
def write(identity: Identity) -> Iterator[Write]:
    """A transaction holding the user's row lock; committed when the block ends."""
    now = utcnow()
    owner = {"id": identity.user_id, "email": identity.email, "name": identity.name, "now": now}
    with transaction() as conn:
        seq = conn.execute(CLAIM_OWNER, owner).scalar_one()
        yield Write(conn, identity.user_id, seq, now)
