"""Remembered deletions, for the changes feed: how long, and their removal.

Triggers on tasks and lists (migration 0005) write a row to ``deletions`` for every
deleted task and list. They are kept CHANGES_RETENTION_DAYS (30 by default), and a day
more before they go, so that a deletion whose transaction began before a cursor was made
(its deleted_at a little older than the cursor) is never removed while that cursor is
still accepted. The service's own deletes remove them, a bounded batch at a time, oldest
first: the first delete a worker serves, then one a minute at most (and the next one at
once while batches come back full, until the backlog is gone). The table never needs an
operator's cron job, and a delete almost never pays for it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, select, tuple_

from .database import connection
from .models import Deletion, utcnow

deletions = Deletion.__table__
BATCH = 100  # deletions forgotten at a time: a bounded cost
MARGIN = timedelta(days=1)
# Why not after every delete: planning the statement was a large share of a delete's
# time (bench/README.md, "What we keep and why").
EVERY_SECONDS = 60.0
CUTOFF = bindparam("cutoff", type_=deletions.c.deleted_at.type)
FORGOTTEN = (
    select(deletions.c.user_id, deletions.c.kind, deletions.c.id)
    .where(deletions.c.deleted_at < CUTOFF)
    .order_by(deletions.c.deleted_at)
    .limit(BATCH)
)
FORGET = delete(deletions).where(
    tuple_(deletions.c.user_id, deletions.c.kind, deletions.c.id).in_(FORGOTTEN)
)


def retention() -> timedelta:
    return timedelta(days=current_app.config["CHANGES_RETENTION_DAYS"])


def remembered_since(now: datetime) -> datetime:
    """Cursors made before this moment may have missed deletions no longer remembered."""
    return now - retention()


def forget_old(now: datetime | None = None) -> None:
    """Remove a bounded batch of deletions past their retention (and the margin), when
    this worker's turn has come (see above)."""
    turn = current_app.extensions.setdefault("deletions", {"due": 0.0})
    clock = time.monotonic()
    if clock < turn["due"]:
        return
    cutoff = (now or utcnow()) - retention() - MARGIN
    with connection() as conn:
        removed = conn.execute(FORGET, {"cutoff": cutoff}).rowcount
    turn["due"] = clock if removed >= BATCH else clock + EVERY_SECONDS
