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

from sqlalchemy import Connection, Row, case, delete, func, insert, not_, select, update
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


def _owned(user_id: str, task_id: int) -> tuple[Any, Any]:
    return tasks.c.user_id == user_id, tasks.c.id == task_id


def _total(user_id: str, status: str) -> Any:
    """The number of the user's tasks with ``status``, from the trigger-kept counters."""
    if status == "completed":
        expr = users.c.completed_count
    elif status == "pending":
        expr = users.c.task_count - users.c.completed_count
    else:
        expr = users.c.task_count
    return select(expr).where(users.c.id == user_id).scalar_subquery()


def total_statement(user_id: str, status: str) -> Any:
    return select(_total(user_id, status))


def page_statement(
    user_id: str, *, status: str, sort: str, order: str, limit: int, offset: int
) -> Any:
    """The page with its total: a range scan of the (user_id[, completed], key, id) index,
    and an uncorrelated subquery on the users row, evaluated once."""
    stmt = select(*TASK_COLUMNS, _total(user_id, status).label("total")).where(
        tasks.c.user_id == user_id
    )
    if status in STATUS_FILTERS:
        stmt = stmt.where(tasks.c.completed == STATUS_FILTERS[status])
    key = SORT_COLUMNS[sort]
    if order == "asc":
        stmt = stmt.order_by(key.asc(), tasks.c.id.asc())
    else:
        stmt = stmt.order_by(key.desc(), tasks.c.id.desc())
    return stmt.limit(limit).offset(offset)


def count_tasks(conn: Connection, user_id: str, status: str) -> int:
    return conn.execute(total_statement(user_id, status)).scalar() or 0


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
    stmt = page_statement(
        user_id, status=status, sort=sort, order=order, limit=limit, offset=offset
    )
    rows = conn.execute(stmt).all()
    if not rows:
        return count_tasks(conn, user_id, status), []
    return rows[0].total, rows


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    stmt = select(*TASK_COLUMNS).where(*_owned(user_id, task_id))
    return conn.execute(stmt).one_or_none()


def _insert_user_if_missing(conn: Connection, identity: Identity, now: Any) -> None:
    values = {"id": identity.user_id, "email": identity.email, "name": identity.name}
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert_(users).values(**values, created_at=now).on_conflict_do_nothing())


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    now = utcnow()
    stmt = (
        insert(tasks)
        .values(
            user_id=identity.user_id,
            title=data["title"],
            description=data.get("description"),
            completed=data.get("completed", False),
            created_at=now,
            updated_at=now,
        )
        .returning(*TASK_COLUMNS)
    )
    if identity.user_id in known_users:
        try:
            with connection() as conn:
                return conn.execute(stmt).one()
        except IntegrityError:  # the users row went away since: add it back below
            known_users.discard(identity.user_id)
    # The owner's row is added the first time they create a task: both or neither, so a
    # real transaction (an autocommit connection's begin() would not be one).
    with transaction() as conn:
        _insert_user_if_missing(conn, identity, now)
        row = conn.execute(stmt).one()
    known_users.add(identity.user_id)
    return row


def update_task(
    conn: Connection, user_id: str, task_id: int, changes: Mapping[str, Any]
) -> Row[Any] | None:
    stmt = (
        update(tasks)
        .where(*_owned(user_id, task_id))
        .values(**changes, updated_at=utcnow())
        .returning(*TASK_COLUMNS)
    )
    return conn.execute(stmt).one_or_none()


def toggle_task(
    conn: Connection, user_id: str, task_id: int, completed: bool | None
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; a no-op set keeps ``updated_at``."""
    if completed is None:
        values = {"completed": not_(tasks.c.completed), "updated_at": utcnow()}
    else:
        values = {
            "completed": completed,
            "updated_at": case(
                (tasks.c.completed == completed, tasks.c.updated_at), else_=utcnow()
            ),
        }
    stmt = update(tasks).where(*_owned(user_id, task_id)).values(values).returning(*TASK_COLUMNS)
    return conn.execute(stmt).one_or_none()


def delete_task(conn: Connection, user_id: str, task_id: int) -> bool:
    return bool(conn.execute(delete(tasks).where(*_owned(user_id, task_id))).rowcount)
