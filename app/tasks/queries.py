"""SQL for the tasks routes. Every statement is scoped to one owner.

Each request uses one pooled connection, in autocommit mode: a single statement
(``UPDATE ... RETURNING``, ``DELETE``, ``INSERT ... RETURNING``) is atomic on its
own, so two requests on one task never lose a change, and no BEGIN/COMMIT/ROLLBACK
round trips are spent on reads and single-statement writes. The only multi-statement
write (a user's first task: add the user, then the task) runs in a real transaction.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from threading import Lock
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    String,
    bindparam,
    case,
    delete,
    insert,
    not_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..auth import Identity
from ..models import Task, User, db, utcnow

tasks = Task.__table__
users = User.__table__

# Rows, not ORM objects: the routes only read attributes, so the identity map
# and object construction would be pure overhead.
TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.user_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.completed,
    tasks.c.created_at,
    tasks.c.updated_at,
)

# OFFSET is a signed 64-bit integer in SQL; pages beyond it are empty without asking.
MAX_OFFSET = 2**62
TRANSACTION_LEVELS = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}
SORT_COLUMNS = {"created": tasks.c.created_at, "updated": tasks.c.updated_at, "title": tasks.c.title}
STATUS_FILTERS = {"pending": False, "completed": True}


@contextmanager
def connection() -> Iterator[Connection]:
    """One pooled connection for the request (the engine is in autocommit mode)."""
    with db.engine.connect() as conn:
        yield conn


@contextmanager
def transaction() -> Iterator[Connection]:
    """A real transaction: on an autocommit connection, begin() alone would not be one."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level=TRANSACTION_LEVELS[conn.dialect.name])
        with conn.begin():
            yield conn


class KnownUsers:
    """User ids this process has seen in ``users``, so creates skip the upsert.

    Bounded (least recently used are forgotten). A stale entry (a user deleted by an
    operator) is harmless: the insert then fails its foreign key and is retried with
    the upsert.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def __contains__(self, user_id: str) -> bool:
        with self._lock:
            if user_id in self._ids:
                self._ids.move_to_end(user_id)
                return True
            return False

    def add(self, user_id: str) -> None:
        with self._lock:
            self._ids[user_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()

    def discard(self, user_id: str) -> None:
        with self._lock:
            self._ids.pop(user_id, None)


known_users = KnownUsers()


# Statements are built once, with bind parameters, and reused: building a select and
# computing its cache key on every request cost more than running it.
OWNED = (
    tasks.c.user_id == bindparam("owner", type_=String()),
    tasks.c.id == bindparam("task_id", type_=tasks.c.id.type),
)
TOTALS = {
    "all": users.c.task_count,
    "completed": users.c.completed_count,
    "pending": users.c.task_count - users.c.completed_count,
}


def _total(status: str) -> Any:
    """The number of the user's tasks with ``status``, from the trigger-kept counters."""
    return select(TOTALS[status]).where(users.c.id == bindparam("owner")).scalar_subquery()


def _page(status: str, sort: str, order: str) -> Any:
    """The page with its total: a range scan of the (user_id[, completed], key, id) index,
    and an uncorrelated subquery on the users row, evaluated once."""
    stmt = select(*TASK_COLUMNS, _total(status).label("total")).where(
        tasks.c.user_id == bindparam("owner")
    )
    if status in STATUS_FILTERS:
        stmt = stmt.where(tasks.c.completed == STATUS_FILTERS[status])
    key = SORT_COLUMNS[sort]
    if order == "asc":
        stmt = stmt.order_by(key.asc(), tasks.c.id.asc())
    else:
        stmt = stmt.order_by(key.desc(), tasks.c.id.desc())
    return stmt.limit(bindparam("limit", type_=Integer())).offset(
        bindparam("offset", type_=Integer())
    )


TOTAL_STATEMENTS = {status: select(_total(status)) for status in TOTALS}
PAGE_STATEMENTS = {
    (status, sort, order): _page(status, sort, order)
    for status in TOTALS
    for sort in SORT_COLUMNS
    for order in ("asc", "desc")
}
GET_STATEMENT = select(*TASK_COLUMNS).where(*OWNED)
DELETE_STATEMENT = delete(tasks).where(*OWNED)
NOW = bindparam("now", type_=tasks.c.updated_at.type)
FLIP_STATEMENT = (
    update(tasks)
    .where(*OWNED)
    .values(completed=not_(tasks.c.completed), updated_at=NOW)
    .returning(*TASK_COLUMNS)
)
SET_COMPLETED = bindparam("completed", type_=tasks.c.completed.type)
SET_STATEMENT = (
    update(tasks)
    .where(*OWNED)
    .values(
        completed=SET_COMPLETED,
        # Setting the value it already has changes nothing, not even updated_at.
        updated_at=case((tasks.c.completed == SET_COMPLETED, tasks.c.updated_at), else_=NOW),
    )
    .returning(*TASK_COLUMNS)
)
# Values come from the parameters (user_id, title, description, completed, created_at,
# updated_at): the same keys every time, so the compiled form is cached too.
INSERT_STATEMENT = insert(tasks).returning(*TASK_COLUMNS)


def total_statement(user_id: str, status: str) -> Any:
    """For bench/scale.py's EXPLAIN: the statement with its parameters bound."""
    return TOTAL_STATEMENTS[status].params(owner=user_id)


def page_statement(
    user_id: str, *, status: str, sort: str, order: str, limit: int, offset: int
) -> Any:
    """For bench/scale.py's EXPLAIN: the statement with its parameters bound."""
    return PAGE_STATEMENTS[status, sort, order].params(owner=user_id, limit=limit, offset=offset)


def count_tasks(conn: Connection, user_id: str, status: str) -> int:
    return conn.execute(TOTAL_STATEMENTS[status], {"owner": user_id}).scalar() or 0


def list_page(
    conn: Connection,
    user_id: str,
    *,
    status: str,
    sort: str,
    order: str,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """One page and the total, in one statement (a second one only for an empty page)."""
    if offset > MAX_OFFSET:
        return count_tasks(conn, user_id, status), []
    rows = conn.execute(
        PAGE_STATEMENTS[status, sort, order],
        {"owner": user_id, "limit": limit, "offset": offset},
    ).all()
    if not rows:
        return count_tasks(conn, user_id, status), []
    return rows[0].total, rows


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return conn.execute(GET_STATEMENT, {"owner": user_id, "task_id": task_id}).one_or_none()


def _insert_user_if_missing(conn: Connection, identity: Identity, now: Any) -> None:
    values = {"id": identity.user_id, "email": identity.email, "name": identity.name}
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert_(users).values(**values, created_at=now).on_conflict_do_nothing())


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    now = utcnow()
    params = {
        "user_id": identity.user_id,
        "title": data["title"],
        "description": data.get("description"),
        "completed": data.get("completed", False),
        "created_at": now,
        "updated_at": now,
    }
    if identity.user_id in known_users:
        try:
            with connection() as conn:
                return conn.execute(INSERT_STATEMENT, params).one()
        except IntegrityError:  # the users row went away since: add it back below
            known_users.discard(identity.user_id)
    # The owner's row is added the first time they create a task: both or neither, so a
    # real transaction (an autocommit connection's begin() would not be one).
    with transaction() as conn:
        _insert_user_if_missing(conn, identity, now)
        row = conn.execute(INSERT_STATEMENT, params).one()
    known_users.add(identity.user_id)
    return row


def update_task(
    conn: Connection, user_id: str, task_id: int, changes: Mapping[str, Any]
) -> Row[Any] | None:
    # The set of fields varies (1 to 3), so this one statement is built per request.
    stmt = (
        update(tasks)
        .where(*OWNED)
        .values(**changes, updated_at=utcnow())
        .returning(*TASK_COLUMNS)
    )
    return conn.execute(stmt, {"owner": user_id, "task_id": task_id}).one_or_none()


def toggle_task(
    conn: Connection, user_id: str, task_id: int, completed: bool | None
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; a no-op set keeps ``updated_at``."""
    params = {"owner": user_id, "task_id": task_id, "now": utcnow()}
    if completed is None:
        return conn.execute(FLIP_STATEMENT, params).one_or_none()
    return conn.execute(SET_STATEMENT, {**params, "completed": completed}).one_or_none()


def delete_task(conn: Connection, user_id: str, task_id: int) -> bool:
    return bool(conn.execute(DELETE_STATEMENT, {"owner": user_id, "task_id": task_id}).rowcount)
