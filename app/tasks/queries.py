"""SQL for the tasks routes. Every statement is scoped to one owner.

Each write is a single statement (``UPDATE ... RETURNING``, ``DELETE``), so two
requests on one task never lose a change: the database serialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, case, delete, func, insert, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

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

SORT_COLUMNS = {"created": tasks.c.created_at, "updated": tasks.c.updated_at, "title": tasks.c.title}
STATUS_FILTERS = {"pending": False, "completed": True}


def _owned(user_id: str, task_id: int) -> tuple[Any, Any]:
    return tasks.c.user_id == user_id, tasks.c.id == task_id


def count_tasks(user_id: str, status: str) -> int:
    stmt = select(func.count()).select_from(tasks).where(tasks.c.user_id == user_id)
    if status in STATUS_FILTERS:
        stmt = stmt.where(tasks.c.completed == STATUS_FILTERS[status])
    return db.session.execute(stmt).scalar_one()


def list_tasks(
    user_id: str, *, status: str, sort: str, order: str, limit: int, offset: int
) -> Sequence[Row[Any]]:
    stmt = select(*TASK_COLUMNS).where(tasks.c.user_id == user_id)
    if status in STATUS_FILTERS:
        stmt = stmt.where(tasks.c.completed == STATUS_FILTERS[status])
    key = SORT_COLUMNS[sort]
    if order == "asc":
        stmt = stmt.order_by(key.asc(), tasks.c.id.asc())
    else:
        stmt = stmt.order_by(key.desc(), tasks.c.id.desc())
    return db.session.execute(stmt.limit(limit).offset(offset)).all()


def get_task(user_id: str, task_id: int) -> Row[Any] | None:
    stmt = select(*TASK_COLUMNS).where(*_owned(user_id, task_id))
    return db.session.execute(stmt).one_or_none()


def _insert_ignoring_duplicate(table: Any, values: Mapping[str, Any]) -> Any:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).values(**values).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    now = utcnow()
    # The owner's row is added the first time they create a task (two statements, one commit).
    db.session.execute(
        _insert_ignoring_duplicate(
            users,
            {"id": identity.user_id, "email": identity.email, "name": identity.name, "created_at": now},
        )
    )
    row = db.session.execute(
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
    ).one()
    db.session.commit()
    return row


def update_task(user_id: str, task_id: int, changes: Mapping[str, Any]) -> Row[Any] | None:
    stmt = (
        update(tasks)
        .where(*_owned(user_id, task_id))
        .values(**changes, updated_at=utcnow())
        .returning(*TASK_COLUMNS)
    )
    row = db.session.execute(stmt).one_or_none()
    db.session.commit()
    return row


def toggle_task(user_id: str, task_id: int, completed: bool | None) -> Row[Any] | None:
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
    row = db.session.execute(stmt).one_or_none()
    db.session.commit()
    return row


def delete_task(user_id: str, task_id: int) -> bool:
    result = db.session.execute(delete(tasks).where(*_owned(user_id, task_id)))
    db.session.commit()
    return bool(result.rowcount)
