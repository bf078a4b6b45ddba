"""SQL for the tasks routes, with SQLAlchemy Core. Every statement is scoped to one owner.

Statements are built from each request's parameters; SQLAlchemy caches their compiled
form, so building one costs little. Each request uses one pooled connection in
autocommit mode: a single statement (``UPDATE ... RETURNING``, ``DELETE``,
``INSERT ... RETURNING``) is atomic on its own, so two requests on one task never lose
a change, and reads and single-statement writes spend no BEGIN/COMMIT round trips.
Writes of more than one statement (a create also adds its owner's row) run in a real
transaction. Results are rows, not ORM objects: the routes only read their values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Row, Select, case, delete, insert, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..auth import Identity
from ..models import Task, User, db, utcnow
from .schemas import task_columns

tasks = Task.__table__
users = User.__table__
TASK_COLUMNS = task_columns(tasks)

# OFFSET is a signed 64-bit integer in SQL; pages beyond it are empty without asking.
MAX_OFFSET = 2**62
TRANSACTION_LEVELS = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}
SORT_COLUMNS = {"created": tasks.c.created_at, "updated": tasks.c.updated_at, "title": tasks.c.title}
STATUS_FILTERS = {"pending": False, "completed": True}
# The number of the user's tasks with a status, from the counters the database keeps
# on the users row (triggers of migration 0002): one row read whatever the user's size.
TOTALS = {
    "all": users.c.task_count,
    "completed": users.c.completed_count,
    "pending": users.c.task_count - users.c.completed_count,
}


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


def _total(user_id: str, status: str) -> Any:
    return select(TOTALS[status]).where(users.c.id == user_id).scalar_subquery()


def count_query(user_id: str, status: str) -> Select[Any]:
    return select(_total(user_id, status))


def count_tasks(conn: Connection, user_id: str, status: str) -> int:
    return conn.execute(count_query(user_id, status)).scalar() or 0


def page_query(user_id: str, *, status: str, sort: str, order: str) -> Select[Any]:
    """The list's tasks in order, each row with the total: a range scan of the
    (user_id[, completed], sort key, id) index, and an uncorrelated subquery on the
    users row, evaluated once."""
    stmt = select(*TASK_COLUMNS, _total(user_id, status).label("total")).where(
        tasks.c.user_id == user_id
    )
    if status in STATUS_FILTERS:
        stmt = stmt.where(tasks.c.completed == STATUS_FILTERS[status])
    key = SORT_COLUMNS[sort]
    if order == "asc":
        return stmt.order_by(key.asc(), tasks.c.id.asc())
    return stmt.order_by(key.desc(), tasks.c.id.desc())


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
    stmt = page_query(user_id, status=status, sort=sort, order=order)
    rows = conn.execute(stmt.limit(limit).offset(offset)).all()
    if not rows:
        return count_tasks(conn, user_id, status), []
    return rows[0].total, rows


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return conn.execute(select(*TASK_COLUMNS).where(*_owned(user_id, task_id))).one_or_none()


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    """Insert the task, and its owner's row the first time: both or neither."""
    now = utcnow()
    with transaction() as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(users)
            .values(id=identity.user_id, email=identity.email, name=identity.name, created_at=now)
            .on_conflict_do_nothing()
        )
        return conn.execute(
            insert(tasks)
            .values(**data, user_id=identity.user_id, created_at=now, updated_at=now)
            .returning(*TASK_COLUMNS)
        ).one()


def update_task(
    conn: Connection, user_id: str, task_id: int, changes: Mapping[str, Any]
) -> Row[Any] | None:
    stmt = update(tasks).where(*_owned(user_id, task_id)).values(**changes, updated_at=utcnow())
    return conn.execute(stmt.returning(*TASK_COLUMNS)).one_or_none()


def toggle_task(
    conn: Connection, user_id: str, task_id: int, completed: bool | None
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; a no-op set keeps ``updated_at``."""
    now = utcnow()
    if completed is None:
        values = {"completed": not_(tasks.c.completed), "updated_at": now}
    else:
        unchanged = tasks.c.completed == completed
        values = {
            "completed": completed,
            "updated_at": case((unchanged, tasks.c.updated_at), else_=now),
        }
    stmt = update(tasks).where(*_owned(user_id, task_id)).values(**values)
    return conn.execute(stmt.returning(*TASK_COLUMNS)).one_or_none()


def delete_task(conn: Connection, user_id: str, task_id: int) -> bool:
    return bool(conn.execute(delete(tasks).where(*_owned(user_id, task_id))).rowcount)

