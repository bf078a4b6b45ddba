"""The task tree: walks up and down it, for the checks a create or a move makes.

The tree's rules are the database's (triggers of migration 0006, part of the writing
statement, whoever writes): completing a task completes its open descendants; reopening a
task reopens its completed ancestors (so does an open task arriving under a completed
one); a task's subtree moves to another list with it; deleting a task deletes its
subtree (the parent foreign key's ON DELETE CASCADE). Every task a rule changes gets the
write's ``updated_at``, a new version (ETag) and the write's ``seq`` (the changes feed).

The walks here are recursive common table expressions, the same SQL on PostgreSQL and
SQLite, run inside the user's write transaction (app/owners.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, literal, select

from ..models import DEPTH_MAX, Task
from ..owners import Write

tasks = Task.__table__
OWNER = bindparam("owner", type_=tasks.c.user_id.type)
ROOT = bindparam("root", type_=tasks.c.id.type)


def _subtree() -> Any:
    """The root task and every task below it, with its level below the root (0, 1, ...)."""
    down = (
        select(tasks.c.id, literal(0, Integer()).label("level"))
        .where(tasks.c.user_id == OWNER, tasks.c.id == ROOT)
        .cte("subtree", recursive=True)
    )
    children = select(tasks.c.id, (down.c.level + 1).label("level")).where(
        tasks.c.user_id == OWNER, tasks.c.parent_id == down.c.id
    )
    return down.union_all(children)


def _ancestry() -> Any:
    """The root task and every task above it, with its level above the root (0, 1, ...)."""
    up = (
        select(tasks.c.id, tasks.c.parent_id, literal(0, Integer()).label("level"))
        .where(tasks.c.user_id == OWNER, tasks.c.id == ROOT)
        .cte("ancestry", recursive=True)
    )
    parents = select(tasks.c.id, tasks.c.parent_id, (up.c.level + 1).label("level")).where(
        tasks.c.user_id == OWNER, tasks.c.id == up.c.parent_id
    )
    return up.union_all(parents)


SUBTREE = _subtree()
ANCESTRY = _ancestry()
# The chain from a task up to the top: id, list, completed, level (0: the task itself).
CHAIN = (
    select(tasks.c.id, tasks.c.list_id, tasks.c.completed, ANCESTRY.c.level)
    .join(ANCESTRY, tasks.c.id == ANCESTRY.c.id)
    .where(tasks.c.user_id == OWNER)
    .order_by(ANCESTRY.c.level)
)
HEIGHT = select(func.max(SUBTREE.c.level))


def _params(w: Write, root: int) -> dict[str, Any]:
    return {"owner": w.user_id, "root": root}


def chain(w: Write, task_id: int) -> Sequence[Row[Any]]:
    """The task and its ancestors, from the task up (empty: no such task of the user)."""
    return w.conn.execute(CHAIN, _params(w, task_id)).all()


def height(w: Write, root: int) -> int:
    """How many levels the task's subtree has (1: no subtasks)."""
    return int(w.conn.execute(HEIGHT, _params(w, root)).scalar() or 0) + 1


def too_deep(depth: int) -> bool:
    return depth > DEPTH_MAX
