"""A user's writes, one after another.

Every write of a user bumps ``users.seq`` in its transaction (adding the user's row the
first time, with the token's email and name) and stamps the rows it changes with the new
value. The row lock that update takes is held until the transaction ends, so a user's
writes never interleave and commit in the order of their counters: positions are chosen
among siblings nobody else is moving, the tree's rules see a tree nobody else is
changing, two tabs of one user cannot lose each other's changes, and the changes feed
misses nothing (docs/sync.md). Other users are not slowed down: each has a row of their
own.

Two shapes:

- ``write(identity)``: a transaction that bumps the counter first, then runs what the
  write needs (reads, checks, several statements), all under the lock.
- ``write_one(identity, statement)``: a write that is one statement (an update, a toggle,
  a delete; the tree's rules are triggers inside it). On PostgreSQL the bump is part of
  that statement, a data-modifying common table expression, run on its own in
  autocommit: one round trip, and the lock is held only while the statement runs. The
  statement reads nothing before it takes the lock that its outcome depends on: the row
  it changes is re-read under that row's lock, and the triggers' statements see every
  write committed before them. SQLite has no data-modifying CTEs (and one writer at a
  time): there, the bump, then the statement, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Executable, Row, bindparam, select, text

from .auth import Identity
from .database import connection, transaction
from .models import User, utcnow

users = User.__table__

# Textual, the same on both databases, and so compiled once: SQLAlchemy's PostgreSQL
# insert() with ON CONFLICT is not cached, it would be compiled again for every write.
# In a one-statement write that read first (``seen``: the counter it read), the claim is
# made only if the counter is still there: a write that loses does not bump the counter,
# and so does not make the user's other writes lose in turn.
CLAIM_SQL = (
    "INSERT INTO users (id, email, name, created_at, seq) "
    "VALUES (:owner, :email, :name, :now, 1) "
    "ON CONFLICT (id) DO UPDATE SET seq = users.seq + 1 "
    "WHERE :seen IS NULL OR users.seq = :seen RETURNING seq"
)
NOW = bindparam("now", type_=users.c.created_at.type)
SEEN = bindparam("seen", type_=BigInteger())
CLAIM = text(CLAIM_SQL).bindparams(NOW, SEEN)
# The claim as part of a one-statement write (PostgreSQL), and the write's seq from it
# (NULL when a guarded claim was not made)...
CLAIM_CTE = CLAIM.columns(seq=BigInteger()).cte("owner")
CLAIMED = select(CLAIM_CTE.c.seq).scalar_subquery()
# ... or bound, after the claim (SQLite; and every statement of a write()).
SEQ = bindparam("seq", type_=BigInteger())


@dataclass(frozen=True)
class Write:
    """An open write transaction of one user."""

    conn: Connection
    user_id: str
    seq: int  # the user's write counter, as this write made it
    now: datetime  # this write's moment: every row it changes gets it


def _owner(identity: Identity, now: datetime) -> dict[str, Any]:
    user = {"owner": identity.user_id, "email": identity.email, "name": identity.name}
    return {**user, "now": now, "seen": None}


@contextmanager
def write(identity: Identity) -> Iterator[Write]:
    """A transaction holding the user's row lock; committed when the block ends."""
    now = utcnow()
    with transaction() as conn:
        seq = conn.execute(CLAIM, _owner(identity, now)).scalar_one()
        yield Write(conn, identity.user_id, seq, now)


def write_one(
    identity: Identity, statement: Callable[[bool], Executable], params: Mapping[str, Any]
) -> Sequence[Row[Any]]:
    """Run the write ``statement(claimed)`` with ``params`` (and ``owner``, ``now``); its
    rows. ``statement(True)`` holds the claim (``claiming``) and stamps rows with its seq;
    ``statement(False)`` stamps them with the bound one (``seq``)."""
    with connection() as conn:
        # Why one statement: no BEGIN/COMMIT round trips, the lock held the least time
        # (bench/README.md, "What we keep and why").
        if conn.dialect.name == "postgresql":
            values = {**_owner(identity, utcnow()), **params}
            return conn.execute(statement(True), values).all()
    with write(identity) as w:
        values = {**params, "owner": w.user_id, "now": w.now, "seq": w.seq}
        return w.conn.execute(statement(False), values).all()


def seq(claimed: bool) -> Any:
    """The write's seq, in ``statement(claimed)`` of ``write_one``."""
    return CLAIMED if claimed else SEQ


def unchanged(claimed: bool) -> Any:
    """In ``statement(claimed)`` of ``write_one``: true when no other write of the user
    landed since its counter was read as ``seen``. A write that read first (without the
    lock) and guards itself with this acts only on what it read."""
    return seq(claimed) == SEEN + 1


def claiming(statement: Any, claimed: bool) -> Any:
    """``statement`` of ``write_one``, with the claim in it when ``claimed``."""
    return statement.add_cte(CLAIM_CTE) if claimed else statement
