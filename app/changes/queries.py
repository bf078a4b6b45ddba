"""The reads behind the changes feed (docs/sync.md says why they miss nothing).

Every write of a user runs under the user's row lock and stamps what it changes with the
user's write counter (``seq``), so the user's writes commit in ``seq`` order. A page is
read in one snapshot: the counter as committed (the watermark), then the rows and
deletions stamped above the cursor and at most the watermark, each source through its
(user_id, seq, ...) index, merged in the feed's order (seq, kind, id). A page costs what
it returns, not what the user has. Kinds are numbers (app/changes/schemas.py), so the
order never depends on a database's collation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, select, tuple_

from .. import errors
from ..errors import Refused
from ..lists.queries import LIST_COLUMNS
from ..lists.schemas import LIST
from ..models import Deletion, Task, TaskList, User
from ..tasks.queries import TASK_COLUMNS
from ..tasks.schemas import TASK
from .schemas import END, KINDS, START, Cursor, owner_tag
from .schemas import LIST as LIST_KIND
from .schemas import TASK as TASK_KIND

users = User.__table__
lists = TaskList.__table__
tasks = Task.__table__
deletions = Deletion.__table__
SOURCES = {LIST_KIND: (lists, LIST_COLUMNS, LIST), TASK_KIND: (tasks, TASK_COLUMNS, TASK)}

OWNER = bindparam("owner", type_=users.c.id.type)
WATERMARK = bindparam("watermark", type_=users.c.seq.type)
AFTER_SEQ = bindparam("after_seq", type_=users.c.seq.type)
AFTER_ID = bindparam("after_id", type_=tasks.c.id.type)
AFTER_KIND = bindparam("after_kind", type_=Integer())
LIMIT = bindparam("limit", type_=Integer())
COUNTER = select(users.c.seq).where(users.c.id == OWNER)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    cursor: Cursor
    has_more: bool


def _item(kind: int, row: Any) -> dict[str, Any]:
    _, _, representation = SOURCES[kind]
    return {
        "type": KINDS[kind],
        "id": row.id,
        "deleted": False,
        "etag": representation.versions.etag(row.id, row.version),
        "data": representation.json(row),
    }


def _deleted(row: Any) -> dict[str, Any]:
    return {"type": KINDS[row.kind], "id": row.id, "deleted": True}


@functools.lru_cache(maxsize=16)
def changed_since(kind: int, relation: str) -> Any:
    """A kind's rows stamped after the cursor and at most the watermark, in the feed's
    order. ``relation``: how the kind compares with the cursor's ("after" the cursor's
    kind, the "same", or "before" it)."""
    table, columns, _ = SOURCES[kind]
    if relation == "after":  # this kind comes after the cursor's: its seq may equal it
        later = table.c.seq >= AFTER_SEQ
    elif relation == "same":
        later = tuple_(table.c.seq, table.c.id) > tuple_(AFTER_SEQ, AFTER_ID)
    else:
        later = table.c.seq > AFTER_SEQ
    return (
        select(*columns, table.c.seq)
        .where(table.c.user_id == OWNER, table.c.seq <= WATERMARK, later)
        .order_by(table.c.seq, table.c.id)
        .limit(LIMIT)
    )


DELETED_SINCE = (
    select(deletions.c.kind, deletions.c.id, deletions.c.seq)
    .where(
        deletions.c.user_id == OWNER,
        deletions.c.seq <= WATERMARK,
        tuple_(deletions.c.seq, deletions.c.kind, deletions.c.id)
        > tuple_(AFTER_SEQ, AFTER_KIND, AFTER_ID),
    )
    .order_by(deletions.c.seq, deletions.c.kind, deletions.c.id)
    .limit(LIMIT)
)


def _relation(kind: int, cursor_kind: int) -> str:
    return "after" if kind > cursor_kind else "same" if kind == cursor_kind else "before"


def _counter(conn: Connection, user_id: str, cursor: Cursor | None) -> int:
    """The user's write counter as committed; a cursor past it was not given by this feed
    to this user (a 422: following it would skip what comes)."""
    counter = conn.execute(COUNTER, {"owner": user_id}).scalar() or 0
    if cursor is not None and cursor.seq > counter:
        raise Refused(422, errors.BAD_CURSOR, "cursor", "query")
    return int(counter)


def changes(
    conn: Connection, user_id: str, cursor: Cursor, watermark: int, limit: int, now: int
) -> Page:
    """What changed since ``cursor``, up to ``watermark``: at most ``limit`` items, oldest
    first."""
    params = {
        "owner": user_id,
        "watermark": watermark,
        "after_seq": cursor.seq,
        "after_id": cursor.id,
        "after_kind": cursor.kind,
        "limit": limit + 1,
    }
    found: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for kind in SOURCES:
        stmt = changed_since(kind, _relation(kind, cursor.kind))
        found += [((row.seq, kind, row.id), _item(kind, row)) for row in conn.execute(stmt, params)]
    for row in conn.execute(DELETED_SINCE, params):
        found.append(((row.seq, row.kind, row.id), _deleted(row)))
    found.sort(key=lambda pair: pair[0])
    page, has_more = found[:limit], len(found) > limit
    # Nothing new: the same place, given again (so that it stays young).
    seq, kind, last = page[-1][0] if page else (cursor.seq, cursor.kind, cursor.id)
    after = cursor.moved(snapshot=False, seq=seq, kind=kind, id=last, issued=now)
    return Page([item for _, item in page], after, has_more)


@functools.lru_cache(maxsize=4)
def live_after(kind: int) -> Any:
    """A kind's live rows with ids above the cursor's, by id: the first read."""
    table, columns, _ = SOURCES[kind]
    return (
        select(*columns)
        .where(table.c.user_id == OWNER, table.c.id > AFTER_ID)
        .order_by(table.c.id)
        .limit(LIMIT)
    )


def snapshot(conn: Connection, user_id: str, cursor: Cursor, limit: int, now: int) -> Page:
    """A page of the first read: every live list, then every task, by id. It ends with a
    cursor of the changes since the user's write counter as it was when it began, so that
    nothing committed while the client pages through it is lost."""
    found: list[tuple[int, Any]] = []
    for kind in SOURCES:
        if kind < cursor.kind or len(found) > limit:
            continue
        after = cursor.id if kind == cursor.kind else 0
        params = {"owner": user_id, "after_id": after, "limit": limit + 1 - len(found)}
        found += [(kind, row) for row in conn.execute(live_after(kind), params)]
    page = found[:limit]
    items = [_item(kind, row) for kind, row in page]
    if len(found) > limit:
        kind, last = page[-1]
        after = cursor.moved(snapshot=True, seq=cursor.seq, kind=kind, id=last.id, issued=now)
        return Page(items, after, True)
    # Done: from here on, what was stamped after the watermark (all of it, every kind).
    done = cursor.moved(snapshot=False, seq=cursor.seq, kind=END, id=0, issued=now)
    return Page(items, done, False)


def read(conn: Connection, user_id: str, cursor: Cursor | None, limit: int, now: int) -> Page:
    """A page of the feed: the first read's (no cursor, or one of it), or changes."""
    counter = _counter(conn, user_id, cursor)
    if cursor is None:
        start = Cursor(True, counter, START, 0, now, owner_tag(user_id))
        return snapshot(conn, user_id, start, limit, now)
    if cursor.snapshot:
        return snapshot(conn, user_id, cursor, limit, now)
    return changes(conn, user_id, cursor, counter, limit, now)
