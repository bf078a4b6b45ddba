"""SQL for the tasks routes, with SQLAlchemy Core. Every statement is scoped to one owner.

Each request uses one pooled connection in autocommit mode (app/database.py): a single
statement (``UPDATE ... RETURNING``, ``DELETE``, ``INSERT ... RETURNING``) is atomic on its
own, so two requests on one task never lose a change. Writes of more than one statement (a
create also adds its owner's row; a change of tags rewrites the task's tag keys) run in a
real transaction. Results are rows, not ORM objects: the routes only read their values.

Conditional writes (``If-Match``) put the expected versions in the write's own WHERE
clause: the check and the write are one atomic step.

A statement is built once per shape (which filters, which fields), with bound parameters
for every value, and kept (``functools.lru_cache``): SQLAlchemy then caches its compiled form
under a cache key it computes once, instead of building and keying a new statement on
every request.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    not_,
    null,
    or_,
    select,
    text,
    tuple_,
    update,
)

from ..auth import Identity
from ..database import connection, transaction
from ..etags import ANY_VERSION
from ..models import IdempotencyKey, Task, TaskTag, User, utcnow
from .schemas import tag_key, task_columns

tasks = Task.__table__
users = User.__table__
task_tags = TaskTag.__table__
idempotency_keys = IdempotencyKey.__table__
# A task's JSON fields, then its version (the ETag).
TASK_COLUMNS = (*task_columns(tasks), tasks.c.version)

# OFFSET is a signed 64-bit integer in SQL; pages beyond it are empty without asking.
MAX_OFFSET = 2**62
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
IDEMPOTENCY_TTL = timedelta(hours=24)
EXPIRED_KEYS_BATCH = 100  # expired keys removed per keyed create: a bounded cost
STATEMENT_SHAPES = 512  # statements kept per builder; the shapes are few in practice

OWNER = bindparam("owner", type_=tasks.c.user_id.type)
TASK_ID = bindparam("task_id", type_=tasks.c.id.type)
NOW = bindparam("now", type_=tasks.c.updated_at.type)
VERSIONS = bindparam("versions", expanding=True)


# --------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class ListShape:
    """What a list statement looks like: its status, order and which filters it has."""

    status: str = "all"
    sort: str = "created"
    order: str = "desc"
    q: bool = False
    priority: bool = False
    tags: int = 0
    due_before: bool = False
    due_after: bool = False
    overdue: bool | None = None
    updated_since: bool = False

    @property
    def filtered(self) -> bool:
        """Filters beyond status: the total must be counted."""
        return any(
            (self.q, self.priority, self.tags, self.due_before, self.due_after,
             self.overdue is not None, self.updated_since)
        )  # fmt: skip


LIKE_ESCAPE = "/"


def _like(text_: str) -> str:
    """A LIKE pattern for "contains ``text_``": its %, _ (and the escape character) are
    plain characters; so is \\, which LIKE ... ESCAPE '/' does not treat specially."""
    escaped = text_.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def list_parameters(
    user_id: str, args: Mapping[str, Any], now: datetime
) -> tuple[ListShape, dict[str, Any]]:
    """The list's shape and the values of its bound parameters, from the query arguments."""
    tags = sorted({tag_key(tag) for tag in args.get("tag") or ()})
    shape = ListShape(
        status=args.get("status", "all"),
        sort=args.get("sort", "created"),
        order=args.get("order", "desc"),
        q="q" in args,
        priority=bool(args.get("priority")),
        tags=len(tags),
        due_before="due_before" in args,
        due_after="due_after" in args,
        overdue=args.get("overdue"),
        updated_since="updated_since" in args,
    )
    params: dict[str, Any] = {"owner": user_id, "now": now}
    if shape.q:
        params["q"] = _like(args["q"].lower())
    if shape.priority:
        params["priorities"] = list(args["priority"])
    params.update({f"tag_{i}": tag for i, tag in enumerate(tags)})
    for name in ("due_before", "due_after", "updated_since"):
        if name in args:
            params[name] = args[name]
    return shape, params


def _filters(shape: ListShape) -> list[Any]:
    moment = tasks.c.due_date.type
    where: list[Any] = [tasks.c.user_id == OWNER]
    if shape.status in STATUS_FILTERS:
        where.append(tasks.c.completed == STATUS_FILTERS[shape.status])
    if shape.q:
        pattern = bindparam("q", type_=tasks.c.title.type)
        where.append(
            or_(
                func.lower(tasks.c.title).like(pattern, escape=LIKE_ESCAPE),
                func.lower(tasks.c.description).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if shape.priority:
        where.append(tasks.c.priority.in_(bindparam("priorities", expanding=True)))
    for i in range(shape.tags):
        tagged = select(task_tags.c.task_id).where(
            task_tags.c.user_id == OWNER,
            task_tags.c.tag == bindparam(f"tag_{i}", type_=task_tags.c.tag.type),
        )
        where.append(tasks.c.id.in_(tagged))
    if shape.due_before:
        where.append(tasks.c.due_date < bindparam("due_before", type_=moment))
    if shape.due_after:
        where.append(tasks.c.due_date >= bindparam("due_after", type_=moment))
    if shape.overdue is not None:
        overdue = and_(tasks.c.completed == false(), tasks.c.due_date < NOW)
        where.append(
            overdue
            if shape.overdue
            else or_(tasks.c.completed, tasks.c.due_date.is_(None), tasks.c.due_date >= NOW)
        )
    if shape.updated_since:
        where.append(tasks.c.updated_at >= bindparam("updated_since", type_=moment))
    return where


def _total(shape: ListShape) -> Any:
    if shape.tags and shape == ListShape(sort=shape.sort, order=shape.order, tags=shape.tags):
        # Why: counted on task_tags alone (an index-only count of the tag's rows), where a
        # count through tasks read every task of the user (bench/README.md).
        keys = [bindparam(f"tag_{i}", type_=task_tags.c.tag.type) for i in range(shape.tags)]
        tagged = (
            select(task_tags.c.task_id)
            .where(task_tags.c.user_id == OWNER, task_tags.c.tag.in_(keys))
            .group_by(task_tags.c.task_id)
            .having(func.count() == shape.tags)  # every tag: task_tags has one row per tag
        )
        return select(func.count()).select_from(tagged.subquery()).scalar_subquery()
    if shape.filtered:
        counted = select(func.count()).select_from(tasks).where(*_filters(shape))
        return counted.scalar_subquery()
    return select(TOTALS[shape.status]).where(users.c.id == OWNER).scalar_subquery()


def nulls_last(ordering: Any, column: Any) -> Any:
    """Tasks without the key last, in both orders. Only for a nullable key: PostgreSQL
    does not know that NULLS LAST changes nothing for a NOT NULL column, and would sort
    every task of the user instead of reading the index in order."""
    return ordering.nulls_last() if column.nullable else ordering


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def page_statement(shape: ListShape) -> Select[Any]:
    """The list's tasks in order, a page of them (``limit``, ``offset``), each row with
    the total (an uncorrelated subquery, evaluated once)."""
    stmt = select(*TASK_COLUMNS, _total(shape).label("total")).where(*_filters(shape))
    key = SORT_COLUMNS[shape.sort]
    if shape.order == "asc":
        stmt = stmt.order_by(nulls_last(key.asc(), key), tasks.c.id.asc())
    else:
        stmt = stmt.order_by(nulls_last(key.desc(), key), tasks.c.id.desc())
    return stmt.limit(bindparam("limit", type_=Integer())).offset(
        bindparam("offset", type_=Integer())
    )


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def count_statement(shape: ListShape) -> Select[Any]:
    return select(_total(shape))


def list_page(
    conn: Connection, user_id: str, args: Mapping[str, Any], *, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    """One page and the total, in one statement (a second one only for an empty page)."""
    shape, params = list_parameters(user_id, args, utcnow())
    if offset <= MAX_OFFSET:
        rows = conn.execute(
            page_statement(shape), {**params, "limit": limit, "offset": offset}
        ).all()
        if rows:
            return rows[0].total, rows
    return count_tasks(conn, shape, params), []


def count_tasks(conn: Connection, shape: ListShape, params: Mapping[str, Any]) -> int:
    return conn.execute(count_statement(shape), params).scalar() or 0


CLEAR_COMPLETED = delete(tasks).where(tasks.c.user_id == OWNER, tasks.c.completed)


def clear_completed(conn: Connection, user_id: str) -> int:
    return conn.execute(CLEAR_COMPLETED, {"owner": user_id}).rowcount


# --------------------------------------------------------------------------- one task

OWNED = (tasks.c.user_id == OWNER, tasks.c.id == TASK_ID)
GET_TASK = select(*TASK_COLUMNS).where(*OWNED)
EXISTS = select(tasks.c.id).where(*OWNED)


class PreconditionFailed(Exception):
    """The task exists, but not at any of the versions the request's If-Match named."""


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return conn.execute(GET_TASK, {"owner": user_id, "task_id": task_id}).one_or_none()


def _matching(conditional: bool) -> tuple[Any, ...]:
    return (*OWNED, tasks.c.version.in_(VERSIONS)) if conditional else OWNED


def _params(user_id: str, task_id: int, versions: Sequence[int] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"owner": user_id, "task_id": task_id, "now": utcnow()}
    if versions is not ANY_VERSION:
        params["versions"] = list(versions)
    return params


def _missing_or_stale(conn: Connection, params: Mapping[str, Any]) -> None:
    """A conditional write matched nothing: 412 if the task exists, else None (a 404)."""
    if conn.execute(EXISTS, params).first() is not None:
        raise PreconditionFailed


DELETE_TAGS = delete(task_tags).where(task_tags.c.user_id == OWNER, task_tags.c.task_id == TASK_ID)


def _write_tags(conn: Connection, user_id: str, task_id: int, tags: Sequence[str]) -> None:
    conn.execute(DELETE_TAGS, {"owner": user_id, "task_id": task_id})
    if tags:
        keys = [{"user_id": user_id, "task_id": task_id, "tag": tag_key(tag)} for tag in tags]
        conn.execute(insert(task_tags), keys)


def _value(name: str) -> Any:
    return bindparam(name, type_=tasks.c[name].type)


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def update_statement(fields: tuple[str, ...], completed: bool | None, conditional: bool) -> Any:
    values: dict[str, Any] = {name: _value(name) for name in fields}
    values.update(updated_at=NOW, version=tasks.c.version + 1)
    if completed is not None:
        # Set when the task becomes completed, kept while it stays so, cleared when reopened.
        values["completed_at"] = (
            case((tasks.c.completed, tasks.c.completed_at), else_=NOW) if completed else null()
        )
    return update(tasks).where(*_matching(conditional)).values(**values).returning(*TASK_COLUMNS)


def update_task(
    user_id: str,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Apply ``changes`` if the task is at one of ``versions``; None if there is no task.

    Raises PreconditionFailed when it exists at another version."""
    stmt = update_statement(
        tuple(sorted(changes)), changes.get("completed"), versions is not ANY_VERSION
    )
    params = {**_params(user_id, task_id, versions), **changes}
    opened = transaction() if "tags" in changes else connection()
    with opened as conn:
        row = conn.execute(stmt, params).one_or_none()
        if row is None:
            _missing_or_stale(conn, params)
        elif "tags" in changes:
            _write_tags(conn, user_id, task_id, changes["tags"])
        return row


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def toggle_statement(completed: bool | None, conditional: bool) -> Any:
    if completed is None:
        values = {
            "completed": not_(tasks.c.completed),
            "completed_at": case((tasks.c.completed, null()), else_=NOW),
            "updated_at": NOW,
            "version": tasks.c.version + 1,
        }
    else:
        unchanged = tasks.c.completed == completed
        values = {
            "completed": completed,
            "completed_at": case(
                (unchanged, tasks.c.completed_at), else_=NOW if completed else null()
            ),
            "updated_at": case((unchanged, tasks.c.updated_at), else_=NOW),
            "version": case((unchanged, tasks.c.version), else_=tasks.c.version + 1),
        }
    return update(tasks).where(*_matching(conditional)).values(**values).returning(*TASK_COLUMNS)


def toggle_task(
    user_id: str,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; setting the value it already has
    changes nothing (not updated_at, not the version)."""
    params = _params(user_id, task_id, versions)
    with connection() as conn:
        row = conn.execute(toggle_statement(completed, "versions" in params), params).one_or_none()
        if row is None:
            _missing_or_stale(conn, params)
        return row


DELETE_TASK = {
    conditional: delete(tasks).where(*_matching(conditional)) for conditional in (False, True)
}


def delete_task(user_id: str, task_id: int, versions: Sequence[int] | None = ANY_VERSION) -> bool:
    params = _params(user_id, task_id, versions)
    with connection() as conn:
        deleted = conn.execute(DELETE_TASK["versions" in params], params).rowcount
        if not deleted:
            _missing_or_stale(conn, params)
        return bool(deleted)


# --------------------------------------------------------------------------- create

# Textual, the same on both databases, and so compiled once: SQLAlchemy's PostgreSQL
# insert() with ON CONFLICT is not cached, it would be compiled again for every create.
ADD_OWNER = text(
    "INSERT INTO users (id, email, name, created_at) VALUES (:id, :email, :name, :now) "
    "ON CONFLICT (id) DO NOTHING"
).bindparams(bindparam("now", type_=users.c.created_at.type))


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def insert_statement(fields: tuple[str, ...]) -> Any:
    values = {name: _value(name) for name in fields}
    return insert(tasks).values(**values).returning(*TASK_COLUMNS)


def _add_owner(conn: Connection, identity: Identity, now: datetime) -> None:
    """The owner's row, the first time: the task (and a key's row) refer to it."""
    owner = {"id": identity.user_id, "email": identity.email, "name": identity.name, "now": now}
    conn.execute(ADD_OWNER, owner)


def _insert_task(
    conn: Connection, identity: Identity, data: Mapping[str, Any], now: datetime
) -> Row[Any]:
    """The task and its tag keys, inside the caller's transaction (after ``_add_owner``)."""
    values = {
        **data,
        "user_id": identity.user_id,
        "completed_at": now if data.get("completed") else None,
        "created_at": now,
        "updated_at": now,
    }
    row = conn.execute(insert_statement(tuple(sorted(values))), values).one()
    if data.get("tags"):
        _write_tags(conn, identity.user_id, row.id, data["tags"])
    return row


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    now = utcnow()
    with transaction() as conn:
        _add_owner(conn, identity, now)
        return _insert_task(conn, identity, data, now)


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


MOMENT = idempotency_keys.c.created_at.type
# Claim the key: a new row, or an expired one taken over; nothing if it is in use.
CLAIM_KEY = text(
    'INSERT INTO idempotency_keys (user_id, "key", request_hash, created_at) '
    "VALUES (:owner, :idempotency_key, :hash, :now) "
    'ON CONFLICT (user_id, "key") DO UPDATE SET request_hash = excluded.request_hash, '
    "created_at = excluded.created_at, task_id = NULL, response = NULL "
    'WHERE idempotency_keys.created_at < :expired RETURNING "key"'
).bindparams(bindparam("now", type_=MOMENT), bindparam("expired", type_=MOMENT))
KEY = (idempotency_keys.c.user_id == OWNER, idempotency_keys.c.key == bindparam("idempotency_key"))
KEEP_RESPONSE = (
    update(idempotency_keys)
    .where(*KEY)
    .values(task_id=bindparam("kept_task_id"), response=bindparam("kept_response"))
)
KEPT = select(
    idempotency_keys.c.request_hash, idempotency_keys.c.task_id, idempotency_keys.c.response
).where(*KEY)


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
    params = {"owner": identity.user_id, "idempotency_key": key}
    with transaction() as conn:
        _add_owner(conn, identity, now)
        claim = {**params, "hash": digest, "now": now, "expired": now - IDEMPOTENCY_TTL}
        created = None
        if conn.execute(CLAIM_KEY, claim).first() is not None:
            row = _insert_task(conn, identity, data, now)
            body = encode(row)
            conn.execute(KEEP_RESPONSE, {**params, "kept_task_id": row.id, "kept_response": body})
            created = Outcome(task_id=row.id, body=body, row=row)
    if created is not None:
        remove_expired_keys(now)
        return created
    with connection() as conn:
        kept = conn.execute(KEPT, params).one_or_none()
    if kept is None or kept.response is None:
        return Outcome(conflict="running")
    if kept.request_hash != digest:
        return Outcome(conflict="body")
    return Outcome(task_id=kept.task_id, body=kept.response)


EXPIRED_KEYS = (
    select(idempotency_keys.c.user_id, idempotency_keys.c.key)
    .where(idempotency_keys.c.created_at < bindparam("expired", type_=MOMENT))
    .order_by(idempotency_keys.c.created_at)
    .limit(EXPIRED_KEYS_BATCH)
)
REMOVE_EXPIRED_KEYS = delete(idempotency_keys).where(
    tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(EXPIRED_KEYS)
)


def remove_expired_keys(now: datetime) -> None:
    """Delete a bounded batch of expired keys (oldest first, by their created_at index):
    run by every keyed create, so the table never needs an operator's cron job."""
    with connection() as conn:
        conn.execute(REMOVE_EXPIRED_KEYS, {"expired": now - IDEMPOTENCY_TTL})
