"""SQL for the tasks routes, with SQLAlchemy Core. Every statement is scoped to one owner.

Statements are built from each request's parameters; SQLAlchemy caches their compiled
form, so building one costs little. Each request uses one pooled connection in
autocommit mode: a single statement (``UPDATE ... RETURNING``, ``DELETE``,
``INSERT ... RETURNING``) is atomic on its own, so two requests on one task never lose
a change, and reads and single-statement writes spend no BEGIN/COMMIT round trips.
Writes of more than one statement (a create also adds its owner's row; a change of
tags rewrites the task's tag keys) run in a real transaction. Results are rows, not ORM
objects: the routes only read their values.

Conditional writes (``If-Match``) put the expected versions in the write's own WHERE
clause: the check and the write are one atomic step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..auth import Identity
from ..models import IdempotencyKey, Task, TaskTag, User, db, utcnow
from .schemas import tag_key, task_columns

tasks = Task.__table__
users = User.__table__
task_tags = TaskTag.__table__
idempotency_keys = IdempotencyKey.__table__
# A task's JSON fields, then its version (the ETag).
TASK_COLUMNS = (*task_columns(tasks), tasks.c.version)

# OFFSET is a signed 64-bit integer in SQL; pages beyond it are empty without asking.
MAX_OFFSET = 2**62
TRANSACTION_LEVELS = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}
SORT_COLUMNS = {
    "created": tasks.c.created_at,
    "updated": tasks.c.updated_at,
    "title": tasks.c.title,
    "due_date": tasks.c.due_date,
    "priority": tasks.c.priority,
}
STATUS_FILTERS = {"pending": False, "completed": True}
# The number of the user's tasks with a status, from the counters the database keeps
# on the users row (triggers of migration 0002): one row read whatever the user's size.
TOTALS = {
    "all": users.c.task_count,
    "completed": users.c.completed_count,
    "pending": users.c.task_count - users.c.completed_count,
}
# Filters beyond status; with any of them the total is counted.
FILTERS = ("q", "priority", "tag", "due_before", "due_after", "overdue", "updated_since")
IDEMPOTENCY_TTL = timedelta(hours=24)
EXPIRED_KEYS_BATCH = 100  # expired keys removed per keyed create: a bounded cost


@contextmanager
def connection() -> Iterator[Connection]:
    """One pooled connection for the request (the engine is in autocommit mode)."""
    with db.engine.connect() as conn:
        yield conn


@contextmanager
def transaction() -> Iterator[Connection]:
    """A real transaction: on an autocommit connection, begin() alone would not be one."""
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level=TRANSACTION_LEVELS[conn.dialect.name])
        with conn.begin():
            yield conn


def _owned(user_id: str, task_id: int) -> tuple[Any, ...]:
    return tasks.c.user_id == user_id, tasks.c.id == task_id


# --------------------------------------------------------------------------- the list


def _filters(user_id: str, args: Mapping[str, Any], now: datetime) -> list[Any]:
    where: list[Any] = [tasks.c.user_id == user_id]
    if args.get("status", "all") in STATUS_FILTERS:
        where.append(tasks.c.completed == STATUS_FILTERS[args["status"]])
    if "q" in args:
        # autoescape: %, _ and the escape character are plain characters.
        needle = args["q"].lower()
        where.append(
            or_(
                func.lower(tasks.c.title).contains(needle, autoescape=True),
                func.lower(tasks.c.description).contains(needle, autoescape=True),
            )
        )
    if args.get("priority"):
        where.append(tasks.c.priority.in_(args["priority"]))
    for key in {tag_key(tag) for tag in args.get("tag") or ()}:
        tagged = select(task_tags.c.task_id).where(
            task_tags.c.user_id == user_id, task_tags.c.tag == key
        )
        where.append(tasks.c.id.in_(tagged))
    if "due_before" in args:
        where.append(tasks.c.due_date < args["due_before"])
    if "due_after" in args:
        where.append(tasks.c.due_date >= args["due_after"])
    if "overdue" in args:
        overdue = and_(tasks.c.completed == false(), tasks.c.due_date < now)
        where.append(
            overdue
            if args["overdue"]
            else or_(tasks.c.completed, tasks.c.due_date.is_(None), tasks.c.due_date >= now)
        )
    if "updated_since" in args:
        where.append(tasks.c.updated_at >= args["updated_since"])
    return where


def _total(user_id: str, args: Mapping[str, Any], now: datetime) -> Any:
    if any(name in args for name in FILTERS):
        counted = select(func.count()).select_from(tasks).where(*_filters(user_id, args, now))
        return counted.scalar_subquery()
    status = args.get("status", "all")
    return select(TOTALS[status]).where(users.c.id == user_id).scalar_subquery()


def count_query(user_id: str, args: Mapping[str, Any], now: datetime) -> Select[Any]:
    return select(_total(user_id, args, now))


def count_tasks(conn: Connection, user_id: str, args: Mapping[str, Any], now: datetime) -> int:
    return conn.execute(count_query(user_id, args, now)).scalar() or 0


def page_query(user_id: str, args: Mapping[str, Any], now: datetime) -> Select[Any]:
    """The list's tasks in order, each row with the total (a subquery evaluated once)."""
    stmt = select(*TASK_COLUMNS, _total(user_id, args, now).label("total")).where(
        *_filters(user_id, args, now)
    )
    key = SORT_COLUMNS[args.get("sort", "created")]
    if args.get("order", "desc") == "asc":
        return stmt.order_by(nulls_last(key.asc(), key), tasks.c.id.asc())
    return stmt.order_by(nulls_last(key.desc(), key), tasks.c.id.desc())


def nulls_last(ordering: Any, column: Any) -> Any:
    """Tasks without the key last, in both orders. Only for a nullable key: PostgreSQL
    does not know that NULLS LAST changes nothing for a NOT NULL column, and would sort
    every task of the user instead of reading the index in order."""
    return ordering.nulls_last() if column.nullable else ordering


def list_page(
    conn: Connection, user_id: str, args: Mapping[str, Any], *, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    """One page and the total, in one statement (a second one only for an empty page)."""
    now = utcnow()
    if offset <= MAX_OFFSET:
        stmt = page_query(user_id, args, now).limit(limit).offset(offset)
        rows = conn.execute(stmt).all()
        if rows:
            return rows[0].total, rows
    return count_tasks(conn, user_id, args, now), []


def clear_completed(conn: Connection, user_id: str) -> int:
    stmt = delete(tasks).where(tasks.c.user_id == user_id, tasks.c.completed)
    return conn.execute(stmt).rowcount


# --------------------------------------------------------------------------- one task


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return conn.execute(select(*TASK_COLUMNS).where(*_owned(user_id, task_id))).one_or_none()


class PreconditionFailed(Exception):
    """The task exists, but not at any of the versions the request's If-Match named."""


ANY_VERSION = None  # If-Match: * (or no If-Match at all): any existing version


def _matching(user_id: str, task_id: int, versions: Sequence[int] | None) -> tuple[Any, ...]:
    owned = _owned(user_id, task_id)
    return owned if versions is ANY_VERSION else (*owned, tasks.c.version.in_(versions))


def _missing_or_stale(conn: Connection, user_id: str, task_id: int) -> None:
    """A conditional write matched nothing: 412 if the task exists, else None (a 404)."""
    if conn.execute(select(tasks.c.id).where(*_owned(user_id, task_id))).first() is not None:
        raise PreconditionFailed


def _write_tags(conn: Connection, user_id: str, task_id: int, tags: Sequence[str]) -> None:
    conn.execute(delete(task_tags).where(task_tags.c.user_id == user_id, task_tags.c.task_id == task_id))
    if tags:
        keys = [{"user_id": user_id, "task_id": task_id, "tag": tag_key(tag)} for tag in tags]
        conn.execute(insert(task_tags), keys)


def _completed_at(completed: bool, now: datetime) -> Any:
    """Set when the task becomes completed, kept while it stays so, cleared when reopened."""
    if not completed:
        return None
    return case((tasks.c.completed, tasks.c.completed_at), else_=now)


def update_task(
    user_id: str,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Apply ``changes`` if the task is at one of ``versions``; None if there is no task.

    Raises PreconditionFailed when it exists at another version."""
    now = utcnow()
    values: dict[str, Any] = {**changes, "updated_at": now, "version": tasks.c.version + 1}
    if "completed" in changes:
        values["completed_at"] = _completed_at(changes["completed"], now)
    stmt = (
        update(tasks)
        .where(*_matching(user_id, task_id, versions))
        .values(**values)
        .returning(*TASK_COLUMNS)
    )
    opened = transaction() if "tags" in changes else connection()
    with opened as conn:
        row = conn.execute(stmt).one_or_none()
        if row is None:
            _missing_or_stale(conn, user_id, task_id)
        elif "tags" in changes:
            _write_tags(conn, user_id, task_id, changes["tags"])
        return row


def toggle_task(
    user_id: str,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; setting the value it already has
    changes nothing (not updated_at, not the version)."""
    now = utcnow()
    if completed is None:
        values = {
            "completed": not_(tasks.c.completed),
            "completed_at": case((tasks.c.completed, None), else_=now),
            "updated_at": now,
            "version": tasks.c.version + 1,
        }
    else:
        unchanged = tasks.c.completed == completed
        values = {
            "completed": completed,
            "completed_at": case((unchanged, tasks.c.completed_at), else_=now if completed else None),
            "updated_at": case((unchanged, tasks.c.updated_at), else_=now),
            "version": case((unchanged, tasks.c.version), else_=tasks.c.version + 1),
        }
    stmt = (
        update(tasks)
        .where(*_matching(user_id, task_id, versions))
        .values(**values)
        .returning(*TASK_COLUMNS)
    )
    with connection() as conn:
        row = conn.execute(stmt).one_or_none()
        if row is None:
            _missing_or_stale(conn, user_id, task_id)
        return row


def delete_task(user_id: str, task_id: int, versions: Sequence[int] | None = ANY_VERSION) -> bool:
    with connection() as conn:
        deleted = conn.execute(delete(tasks).where(*_matching(user_id, task_id, versions))).rowcount
        if not deleted:
            _missing_or_stale(conn, user_id, task_id)
        return bool(deleted)


# --------------------------------------------------------------------------- create


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _insert_task(conn: Connection, identity: Identity, data: Mapping[str, Any], now: datetime) -> Row[Any]:
    """The owner's row the first time, the task, its tag keys: inside the caller's transaction."""
    dialect = conn.dialect.name
    conn.execute(
        _insert(dialect)(users)
        .values(id=identity.user_id, email=identity.email, name=identity.name, created_at=now)
        .on_conflict_do_nothing()
    )
    values = {
        **data,
        "user_id": identity.user_id,
        "completed_at": now if data.get("completed") else None,
        "created_at": now,
        "updated_at": now,
    }
    row = conn.execute(insert(tasks).values(**values).returning(*TASK_COLUMNS)).one()
    if data.get("tags"):
        _write_tags(conn, identity.user_id, row.id, data["tags"])
    return row


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    with transaction() as conn:
        return _insert_task(conn, identity, data, utcnow())


def request_hash(data: Mapping[str, Any]) -> str:
    """What identifies a create's body for its Idempotency-Key: the validated fields
    (defaults included), so that equivalent bodies are the same request."""
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What a create with an Idempotency-Key came to."""

    task_id: int | None = None
    body: str | None = None  # the first response's body, as sent
    row: Row[Any] | None = None  # set when this request created the task
    conflict: str | None = None  # "body" (another body, same key) or "running"


def create_task_once(
    identity: Identity,
    data: Mapping[str, Any],
    key: str,
    encode: Callable[[Row[Any]], str],
) -> Outcome:
    """Create the task unless ``key`` was used (by this user, in the last 24 hours).

    The key is claimed by inserting its row; the primary key (user_id, key) decides
    between concurrent duplicates. The claim, the task and the response kept for replays
    are one transaction, so a duplicate sees either nothing or all of it."""
    now = utcnow()
    digest = request_hash(data)
    pk = (idempotency_keys.c.user_id == identity.user_id, idempotency_keys.c.key == key)
    with transaction() as conn:
        claim = (
            _insert(conn.dialect.name)(idempotency_keys)
            .values(user_id=identity.user_id, key=key, request_hash=digest, created_at=now)
            .on_conflict_do_update(
                index_elements=[idempotency_keys.c.user_id, idempotency_keys.c.key],
                set_={"request_hash": digest, "created_at": now, "task_id": None, "response": None},
                # An expired key is free again.
                where=idempotency_keys.c.created_at < now - IDEMPOTENCY_TTL,
            )
            .returning(idempotency_keys.c.key)
        )
        # The owner's row first: the key's row refers to it.
        conn.execute(
            _insert(conn.dialect.name)(users)
            .values(id=identity.user_id, email=identity.email, name=identity.name, created_at=now)
            .on_conflict_do_nothing()
        )
        if conn.execute(claim).first() is not None:
            row = _insert_task(conn, identity, data, now)
            body = encode(row)
            conn.execute(update(idempotency_keys).where(*pk).values(task_id=row.id, response=body))
            created = Outcome(task_id=row.id, body=body, row=row)
        else:
            created = None
    if created is not None:
        remove_expired_keys(now)
        return created
    with connection() as conn:
        kept = conn.execute(
            select(idempotency_keys.c.request_hash, idempotency_keys.c.task_id, idempotency_keys.c.response)
            .where(*pk)
        ).one_or_none()
    if kept is None or kept.response is None:
        return Outcome(conflict="running")
    if kept.request_hash != digest:
        return Outcome(conflict="body")
    return Outcome(task_id=kept.task_id, body=kept.response)


def remove_expired_keys(now: datetime) -> None:
    """Delete a bounded batch of expired keys (oldest first, by their created_at index):
    run by every keyed create, so the table never needs an operator's cron job."""
    expired = (
        select(idempotency_keys.c.user_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < now - IDEMPOTENCY_TTL)
        .order_by(idempotency_keys.c.created_at)
        .limit(EXPIRED_KEYS_BATCH)
    )
    with connection() as conn:
        conn.execute(
            delete(idempotency_keys).where(
                tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(expired)
            )
        )
