"""SQL for the tasks routes. Every statement is scoped to one owner.

Each request uses one pooled connection, in autocommit mode: a single statement
(``UPDATE ... RETURNING``, ``DELETE``, ``INSERT ... RETURNING``) is atomic on its
own, so two requests on one task never lose a change, and no BEGIN/COMMIT/ROLLBACK
round trips are spent on reads and single-statement writes. The only multi-statement
write (a user's first task: add the user, then the task) runs in a real transaction.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import combinations
from threading import Lock
from typing import Any

import psycopg2
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
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.exc import DBAPIError, IntegrityError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ..auth import Identity
from ..models import Task, User, db, utcnow

tasks = Task.__table__
users = User.__table__



class utc_text(FunctionElement[str]):
    """A UTC timestamp column as the API writes it: ``2026-11-26T17:38:00.123456Z``.

    Formatted by the database, in C, so a page of tasks needs no datetime objects in
    Python (parsing, time-zone normalising and re-formatting 40 of them cost more
    than the rest of the serialisation).
    """

    type = String()
    name = "utc_text"
    inherit_cache = True


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores SQLite timestamps as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
    column = compiler.process(element.clauses, **kw)
    return f"replace({column}, ' ', 'T') || 'Z'"


# Rows, not ORM objects: the routes only read the values, so the identity map and
# object construction would be pure overhead. The labels are the API's field names,
# in TaskSchema's order: a row is a task once zipped with TASK_FIELDS.
TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.user_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.completed,
    utc_text(tasks.c.created_at).label("created_at"),
    utc_text(tasks.c.updated_at).label("updated_at"),
)
TASK_FIELDS = tuple(column.name for column in TASK_COLUMNS)

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
UPDATABLE = ("title", "description", "completed")


class Prepared:
    """A statement that runs as a server-side prepared statement on PostgreSQL.

    psycopg2 sends every statement as text, so PostgreSQL parses and plans it on each
    execution: for a page of tasks that was most of the database's CPU (pgbench: 2.5-4x
    the cost of EXECUTE). Here each connection PREPAREs the statement the first time
    it needs it, then sends ``EXECUTE name(values)`` on the pooled connection's driver
    cursor. The SQL is SQLAlchemy's own compilation of ``statement``; values are quoted
    by psycopg2 as usual; driver errors are raised as SQLAlchemy's, as for any statement.

    Elsewhere (SQLite, whose driver keeps its own statement cache; PostgreSQL with
    ``DB_PREPARED_STATEMENTS=false``, e.g. behind PgBouncer in transaction mode, which
    cannot keep a session's prepared statements; and inside explicit transactions)
    the statement runs as usual through SQLAlchemy.
    """

    _PARAM = re.compile(r"%\((\w+)\)s")
    _DIALECT = PGDialect_psycopg2(paramstyle="pyformat")

    def __init__(self, name: str, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self.name = name
        self.statement = statement
        compiled = statement.compile(dialect=self._DIALECT, column_keys=column_keys)
        order: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        body = self._PARAM.sub(number, compiled.string)
        if "%" in body:  # would need escaping one way and not the other; none does
            raise ValueError(f"{name}: a literal % in a prepared statement")
        self.prepare_sql = f"PREPARE {name} AS {body}"
        self.execute_sql = f"EXECUTE {name}({', '.join(f'%({key})s' for key in order)})"
        # Values the statement carries itself, rather than expecting from the caller.
        self.constants = {
            key: bind.effective_value
            for key, bind in compiled.binds.items()
            if key in order and not bind.required
        }

    def __call__(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The statement's result: SQLAlchemy's ``Result``, or on the prepared path a
        ``Fetched`` with the same ``all``/``one``/``one_or_none``/``scalar``/``rowcount``.
        Rows are tuples in ``TASK_COLUMNS`` order either way."""
        if not conn.get_execution_options().get(PREPARED_OPTION) or conn.in_transaction():
            return conn.execute(self.statement, params)
        values = {**self.constants, **params} if self.constants else params
        pooled = conn.connection
        prepared: set[str] = pooled.info.setdefault(PREPARED_OPTION, set())
        dbapi_connection = pooled.dbapi_connection
        cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            try:
                return self._run(cursor, prepared, values)
            except psycopg2.Error as exc:
                # The server no longer knows it (DISCARD ALL by a pooler, DEALLOCATE by
                # an operator): prepare it again, once. Autocommit: nothing rolled back.
                if exc.pgcode != INVALID_STATEMENT_NAME:
                    raise
                prepared.clear()
                return self._run(cursor, prepared, values)
        except psycopg2.Error as exc:
            # What SQLAlchemy does for its own statements: a lost connection is dropped
            # from the pool, with the pool's other connections of that era, and the
            # driver's error arrives as SQLAlchemy's (OperationalError -> 503, ...).
            lost = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
            if lost:
                conn.invalidate(exc)
                conn.engine.pool.dispose()  # the others are checked before reuse
            raise DBAPIError.instance(
                self.execute_sql,
                values,
                exc,
                psycopg2.Error,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        finally:
            with suppress(psycopg2.Error):
                cursor.close()

    def _run(self, cursor: Any, prepared: set[str], values: Mapping[str, Any]) -> Fetched:
        # Straight to the driver's cursor: SQLAlchemy's result set-up for driver SQL
        # (column metadata from the cursor description, per execution) cost ~100 us a
        # request, more than the EXECUTE's own client-side work.
        if self.name not in prepared:
            cursor.execute(self.prepare_sql)
            prepared.add(self.name)
        cursor.execute(self.execute_sql, values)
        rows = cursor.fetchall() if cursor.description is not None else []
        return Fetched(rows, cursor.rowcount)


class Fetched:
    """Rows read off the driver's cursor, with the parts of SQLAlchemy's ``Result``
    this module uses."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def all(self) -> list[tuple[Any, ...]]:
        return self.rows

    def one_or_none(self) -> tuple[Any, ...] | None:
        if len(self.rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.rows[0] if self.rows else None

    def one(self) -> tuple[Any, ...]:
        if not self.rows:
            raise NoResultFound("No row was found when one was required")
        return self.one_or_none()  # type: ignore[return-value]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


INVALID_STATEMENT_NAME = "26000"
# Engine execution option set by the factory: use server-side prepared statements.
PREPARED_OPTION = "tasks_prepared_statements"


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


def _update(fields: Sequence[str]) -> Any:
    values = {field: bindparam(field, type_=tasks.c[field].type) for field in fields}
    return update(tasks).where(*OWNED).values(**values, updated_at=NOW).returning(*TASK_COLUMNS)


NOW = bindparam("now", type_=tasks.c.updated_at.type)
SET_COMPLETED = bindparam("completed", type_=tasks.c.completed.type)
TOTAL_STATEMENTS = {
    status: Prepared(f"tasks_total_{status}", select(_total(status))) for status in TOTALS
}
PAGE_STATEMENTS = {
    (status, sort, order): Prepared(f"tasks_page_{status}_{sort}_{order}", _page(status, sort, order))
    for status in TOTALS
    for sort in SORT_COLUMNS
    for order in ("asc", "desc")
}
GET_STATEMENT = Prepared("tasks_get", select(*TASK_COLUMNS).where(*OWNED))
DELETE_STATEMENT = Prepared("tasks_delete", delete(tasks).where(*OWNED))
FLIP_STATEMENT = Prepared(
    "tasks_flip",
    update(tasks)
    .where(*OWNED)
    .values(completed=not_(tasks.c.completed), updated_at=NOW)
    .returning(*TASK_COLUMNS),
)
SET_STATEMENT = Prepared(
    "tasks_set_completed",
    update(tasks)
    .where(*OWNED)
    .values(
        completed=SET_COMPLETED,
        # Setting the value it already has changes nothing, not even updated_at.
        updated_at=case((tasks.c.completed == SET_COMPLETED, tasks.c.updated_at), else_=NOW),
    )
    .returning(*TASK_COLUMNS),
)
# One statement per set of fields an update may change (1 to 3 of them).
UPDATE_STATEMENTS = {
    fields: Prepared(f"tasks_update_{'_'.join(fields)}", _update(fields))
    for n in range(1, len(UPDATABLE) + 1)
    for fields in combinations(UPDATABLE, n)
}
INSERT_COLUMNS = ("user_id", "title", "description", "completed", "created_at", "updated_at")
INSERT_STATEMENT = Prepared(
    "tasks_insert", insert(tasks).returning(*TASK_COLUMNS), column_keys=INSERT_COLUMNS
)


def count_tasks(conn: Connection, user_id: str, status: str) -> int:
    return TOTAL_STATEMENTS[status](conn, {"owner": user_id}).scalar() or 0


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
    rows = PAGE_STATEMENTS[status, sort, order](
        conn, {"owner": user_id, "limit": limit, "offset": offset}
    ).all()
    if not rows:
        return count_tasks(conn, user_id, status), []
    return rows[0][-1], rows  # the total is the last column


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return GET_STATEMENT(conn, {"owner": user_id, "task_id": task_id}).one_or_none()


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
                return INSERT_STATEMENT(conn, params).one()
        except IntegrityError:  # the users row went away since: add it back below
            known_users.discard(identity.user_id)
    # The owner's row is added the first time they create a task: both or neither, so a
    # real transaction (an autocommit connection's begin() would not be one).
    with transaction() as conn:
        _insert_user_if_missing(conn, identity, now)
        row = INSERT_STATEMENT(conn, params).one()
    known_users.add(identity.user_id)
    return row


def update_task(
    conn: Connection, user_id: str, task_id: int, changes: Mapping[str, Any]
) -> Row[Any] | None:
    statement = UPDATE_STATEMENTS[tuple(field for field in UPDATABLE if field in changes)]
    params = {**changes, "owner": user_id, "task_id": task_id, "now": utcnow()}
    return statement(conn, params).one_or_none()


def toggle_task(
    conn: Connection, user_id: str, task_id: int, completed: bool | None
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; a no-op set keeps ``updated_at``."""
    params = {"owner": user_id, "task_id": task_id, "now": utcnow()}
    if completed is None:
        return FLIP_STATEMENT(conn, params).one_or_none()
    return SET_STATEMENT(conn, {**params, "completed": completed}).one_or_none()


def delete_task(conn: Connection, user_id: str, task_id: int) -> bool:
    return bool(DELETE_STATEMENT(conn, {"owner": user_id, "task_id": task_id}).rowcount)
