"""The task tree: walks up and down it, and the rules that follow it.

Each rule is one set-based statement over a recursive common table expression (the same
SQL on PostgreSQL and SQLite), run inside the user's write transaction (app/owners.py),
never a loop of single-row writes in Python:

- completing a task completes its open descendants;
- reopening a task reopens its completed ancestors (so does an open task arriving under a
  completed one);
- a task's subtree moves to another list with it;
- deleting a task deletes its subtree.

Every task a rule changes gets a new ``updated_at``, version (ETag), the write's ``seq``
(the changes feed) and, where completion changes, ``completed_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    bindparam,
    delete,
    false,
    func,
    literal,
    null,
    select,
    true,
    update,
)

from ..models import DEPTH_MAX, Task
from ..owners import Write

tasks = Task.__table__
OWNER = bindparam("owner", type_=tasks.c.user_id.type)
ROOT = bindparam("root", type_=tasks.c.id.type)
NOW = bindparam("now", type_=tasks.c.updated_at.type)
SEQ = bindparam("seq", type_=tasks.c.seq.type)


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
BELOW = select(SUBTREE.c.id).where(SUBTREE.c.level > 0)
ABOVE = select(ANCESTRY.c.id).where(ANCESTRY.c.level > 0)

# The chain from a task up to the top: id, list, completed, level (0: the task itself).
CHAIN = (
    select(tasks.c.id, tasks.c.list_id, tasks.c.completed, ANCESTRY.c.level)
    .join(ANCESTRY, tasks.c.id == ANCESTRY.c.id)
    .where(tasks.c.user_id == OWNER)
    .order_by(ANCESTRY.c.level)
)
IS_BELOW = select(SUBTREE.c.id).where(SUBTREE.c.id == bindparam("candidate"))
HEIGHT = select(func.max(SUBTREE.c.level))

_CHANGED = {"updated_at": NOW, "version": tasks.c.version + 1, "seq": SEQ}
COMPLETE_BELOW = (
    update(tasks)
    .where(tasks.c.user_id == OWNER, tasks.c.id.in_(BELOW), tasks.c.completed == false())
    .values(completed=true(), completed_at=NOW, **_CHANGED)
)
REOPEN_ABOVE = (
    update(tasks)
    .where(tasks.c.user_id == OWNER, tasks.c.id.in_(ABOVE), tasks.c.completed == true())
    .values(completed=false(), completed_at=null(), **_CHANGED)
)
MOVE_BELOW = (
    update(tasks)
    .where(tasks.c.user_id == OWNER, tasks.c.id.in_(BELOW))
    .values(list_id=bindparam("list_id", type_=tasks.c.list_id.type), **_CHANGED)
)
DELETE_SUBTREE = delete(tasks).where(tasks.c.user_id == OWNER, tasks.c.id.in_(select(SUBTREE.c.id)))


def _params(w: Write, root: int) -> dict[str, Any]:
    return {"owner": w.user_id, "root": root, "now": w.now, "seq": w.seq}


def chain(w: Write, task_id: int) -> Sequence[Row[Any]]:
    """The task and its ancestors, from the task up (empty: no such task of the user)."""
    return w.conn.execute(CHAIN, _params(w, task_id)).all()


def is_below(w: Write, root: int, candidate: int) -> bool:
    """Whether ``candidate`` is ``root`` or one of its descendants."""
    params = {**_params(w, root), "candidate": candidate}
    return w.conn.execute(IS_BELOW, params).first() is not None


def height(w: Write, root: int) -> int:
    """How many levels the task's subtree has (1: no subtasks)."""
    return int(w.conn.execute(HEIGHT, _params(w, root)).scalar() or 0) + 1


def follow_completion(w: Write, task_id: int, completed: bool) -> None:
    """The tree rule after a task's completion was set: a completed task's open
    descendants are completed; an open task's completed ancestors are reopened. Changes
    nothing when the tree already agrees, so it is safe after any write."""
    w.conn.execute(COMPLETE_BELOW if completed else REOPEN_ABOVE, _params(w, task_id))


def move_below(w: Write, root: int, list_id: int) -> None:
    """Put every task below ``root`` in list ``list_id`` (where ``root`` went)."""
    w.conn.execute(MOVE_BELOW, {**_params(w, root), "list_id": list_id})


def delete_subtree(w: Write, root: int) -> None:
    """Delete the task and everything below it, in one statement."""
    w.conn.execute(DELETE_SUBTREE, _params(w, root))


def too_deep(depth: int) -> bool:
    return depth > DEPTH_MAX
