"""SQL for the tasks routes, with SQLAlchemy Core. Every statement is scoped to one owner.

Reads use one pooled connection in autocommit mode (app/database.py): a page of the list
is one statement. Every write holds the user's row lock (app/owners.py): an update, a
toggle and a delete are one statement each (the tree's rules are the database's triggers,
app/tasks/tree.py); a create or a move reads first, in a transaction that takes the lock
before it reads, so that the tree and the sibling set it sees (app/positions.py) are the
ones it writes to. Results are rows, not ORM objects: the routes only read their values.

Conditional writes (``If-Match``) put the expected versions in the write's own WHERE
clause: the check and the write are one atomic step.

A statement is built once per shape (which filters, which fields), with bound parameters
for every value, and kept (``functools.lru_cache``): SQLAlchemy then caches its compiled form
under a cache key it computes once, instead of building and keying a new statement on
every request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    update,
)

from .. import deletions, errors, positions
from ..auth import Identity
from ..database import connection
from ..errors import Refused
from ..etags import ANY_VERSION, at_versions, versions_param
from ..lists import queries as lists
from ..models import Task, TaskList, TaskTag, User, utcnow
from ..owners import SEQ, Write, claiming, seq, unchanged, write, write_one
from . import tree
from .schemas import ASCENDING_BY_DEFAULT, NO_PARENT, TASK, tag_key

tasks = Task.__table__
users = User.__table__
task_tags = TaskTag.__table__
# A task's JSON fields, then its version (the ETag).
TASK_COLUMNS = (*TASK.columns(tasks), tasks.c.version)

# OFFSET is a signed 64-bit integer in SQL; pages beyond it are empty without asking.
MAX_OFFSET = 2**62
SORT_COLUMNS = {
    "created": tasks.c.created_at,
    "updated": tasks.c.updated_at,
    "title": tasks.c.title,
    "due_date": tasks.c.due_date,
    "priority": tasks.c.priority,
    "position": tasks.c.position,
}
STATUS_FILTERS = {"pending": False, "completed": True}
# The number of the user's tasks with a status, from the counters the database keeps
# on the users row (triggers of migration 0002): one row read whatever the user's size.
TOTALS = {
    "all": users.c.task_count,
    "completed": users.c.completed_count,
    "pending": users.c.task_count - users.c.completed_count,
}
STATEMENT_SHAPES = 512  # statements kept per builder; the shapes are few in practice

OWNER = bindparam("owner", type_=tasks.c.user_id.type)
TASK_ID = bindparam("task_id", type_=tasks.c.id.type)
NOW = bindparam("now", type_=tasks.c.updated_at.type)


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
    list_id: bool = False
    parent: str | None = None  # NO_PARENT (the top level) or "id" (one task's subtasks)

    @property
    def filtered(self) -> bool:
        """Filters beyond status: the total must be counted."""
        return any(
            (self.q, self.priority, self.tags, self.due_before, self.due_after,
             self.overdue is not None, self.updated_since, self.list_id, self.parent)
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
    sort = args.get("sort", "created")
    parent = args.get("parent_id")
    shape = ListShape(
        status=args.get("status", "all"),
        sort=sort,
        order=args.get("order") or ("asc" if sort in ASCENDING_BY_DEFAULT else "desc"),
        q="q" in args,
        priority=bool(args.get("priority")),
        tags=len(tags),
        due_before="due_before" in args,
        due_after="due_after" in args,
        overdue=args.get("overdue"),
        updated_since="updated_since" in args,
        list_id="list_id" in args,
        parent=None if parent is None else NO_PARENT if parent == NO_PARENT else "id",
    )
    params: dict[str, Any] = {"owner": user_id, "now": now}
    if shape.q:
        params["q"] = _like(args["q"].lower())
    if shape.priority:
        params["priorities"] = list(args["priority"])
    params.update({f"tag_{i}": tag for i, tag in enumerate(tags)})
    for name in ("due_before", "due_after", "updated_since", "list_id"):
        if name in args:
            params[name] = args[name]
    if shape.parent == "id":
        params["parent_id"] = parent
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
    if shape.list_id:
        where.append(tasks.c.list_id == bindparam("list_id", type_=tasks.c.list_id.type))
    if shape.parent == NO_PARENT:
        where.append(tasks.c.parent_id.is_(None))
    elif shape.parent:
        where.append(tasks.c.parent_id == bindparam("parent_id", type_=tasks.c.parent_id.type))
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


COMPLETED = (tasks.c.user_id == OWNER, tasks.c.completed)
COUNT_COMPLETED = select(func.count()).select_from(tasks).where(*COMPLETED)
CLEAR_COMPLETED = delete(tasks).where(*COMPLETED)


def clear_completed(identity: Identity) -> int:
    """Delete the user's completed tasks (their subtasks are completed too: the tree rule);
    how many. Counted first: a subtask deleted by its parent's cascade is not in the
    statement's own count."""
    with write(identity) as w:
        count = w.conn.execute(COUNT_COMPLETED, {"owner": w.user_id}).scalar_one()
        w.conn.execute(CLEAR_COMPLETED, {"owner": w.user_id})
    deletions.forget_old(w.now)
    return int(count)


# --------------------------------------------------------------------------- one task

OWNED = (tasks.c.user_id == OWNER, tasks.c.id == TASK_ID)
GET_TASK = select(*TASK_COLUMNS).where(*OWNED)
EXISTS = select(tasks.c.id).where(*OWNED)
# Where a task is, for a move: its list, parent and completion.
PLACE = select(tasks.c.id, tasks.c.list_id, tasks.c.parent_id, tasks.c.completed, tasks.c.position)


def get_task(conn: Connection, user_id: str, task_id: int) -> Row[Any] | None:
    return conn.execute(GET_TASK, {"owner": user_id, "task_id": task_id}).one_or_none()


def _matching(conditional: bool, claimed: bool) -> tuple[Any, ...]:
    # The claim named in the condition runs before the task's row is locked: the order in
    # which every write takes its locks (else, left to run last, two writes deadlock).
    first = seq(claimed).is_not(None)
    return (*OWNED, at_versions(tasks.c.version), first) if conditional else (*OWNED, first)


def _params(w: Write, task_id: int, versions: Sequence[int] | None) -> dict[str, Any]:
    return {
        "owner": w.user_id,
        "task_id": task_id,
        "now": w.now,
        "seq": w.seq,
        **versions_param(versions),
    }


def _missing_or_stale(conn: Connection, user_id: str, task_id: int) -> None:
    """A conditional write matched nothing: 412 if the task exists, else None (a 404)."""
    if conn.execute(EXISTS, {"owner": user_id, "task_id": task_id}).first() is not None:
        raise Refused(412, errors.TASK_CHANGED)


def _one(identity: Identity, task_id: int, rows: Sequence[Row[Any]]) -> Row[Any] | None:
    """The task a one-statement write changed; None (a 404) or 412 if it changed none."""
    if rows:
        return rows[0]
    with connection() as conn:
        _missing_or_stale(conn, identity.user_id, task_id)
    return None


def _target(task_id: int, versions: Sequence[int] | None) -> dict[str, Any]:
    return {"task_id": task_id, **versions_param(versions)}


DELETE_TAGS = delete(task_tags).where(task_tags.c.user_id == OWNER, task_tags.c.task_id == TASK_ID)


def _write_tags(conn: Connection, user_id: str, task_id: int, tags: Sequence[str]) -> None:
    conn.execute(DELETE_TAGS, {"owner": user_id, "task_id": task_id})
    if tags:
        keys = [{"user_id": user_id, "task_id": task_id, "tag": tag_key(tag)} for tag in tags]
        conn.execute(insert(task_tags), keys)


def _value(name: str) -> Any:
    return bindparam(name, type_=tasks.c[name].type)


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def update_statement(
    fields: tuple[str, ...], completed: bool | None, conditional: bool, claimed: bool
) -> Any:
    values: dict[str, Any] = {name: _value(name) for name in fields}
    values.update(updated_at=NOW, version=tasks.c.version + 1, seq=seq(claimed))
    if completed is not None:
        # Set when the task becomes completed, kept while it stays so, cleared when reopened.
        values["completed_at"] = (
            case((tasks.c.completed, tasks.c.completed_at), else_=NOW) if completed else null()
        )
    stmt = update(tasks).where(*_matching(conditional, claimed)).values(**values)
    return claiming(stmt.returning(*TASK_COLUMNS), claimed)


def update_task(
    identity: Identity,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Apply ``changes`` if the task is at one of ``versions``; None if there is no task.

    A 412 (Refused) when it exists at another version. The tree follows a change of
    completion (app/tasks/tree.py)."""
    shape = (tuple(sorted(changes)), changes.get("completed"), versions is not ANY_VERSION)
    if "tags" not in changes:
        rows = write_one(
            identity,
            lambda claimed: update_statement(*shape, claimed),
            {**_target(task_id, versions), **changes},
        )
        return _one(identity, task_id, rows)
    with write(identity) as w:
        params = {**_params(w, task_id, versions), **changes}
        row = w.conn.execute(update_statement(*shape, False), params).one_or_none()
        if row is None:
            _missing_or_stale(w.conn, w.user_id, task_id)
            return None
        _write_tags(w.conn, w.user_id, task_id, changes["tags"])
        return row


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def toggle_statement(completed: bool | None, conditional: bool, claimed: bool) -> Any:
    if completed is None:
        values = {
            "completed": not_(tasks.c.completed),
            "completed_at": case((tasks.c.completed, null()), else_=NOW),
            "updated_at": NOW,
            "version": tasks.c.version + 1,
            "seq": seq(claimed),
        }
    else:
        same = tasks.c.completed == completed
        values = {
            "completed": completed,
            "completed_at": case((same, tasks.c.completed_at), else_=NOW if completed else null()),
            "updated_at": case((same, tasks.c.updated_at), else_=NOW),
            "version": case((same, tasks.c.version), else_=tasks.c.version + 1),
            "seq": case((same, tasks.c.seq), else_=seq(claimed)),
        }
    stmt = update(tasks).where(*_matching(conditional, claimed)).values(**values)
    return claiming(stmt.returning(*TASK_COLUMNS), claimed)


def toggle_task(
    identity: Identity,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Flip ``completed`` in the database, or set it; setting the value it already has
    changes nothing (not updated_at, not the version). The tree follows."""
    conditional = versions is not ANY_VERSION
    rows = write_one(
        identity,
        lambda claimed: toggle_statement(completed, conditional, claimed),
        _target(task_id, versions),
    )
    return _one(identity, task_id, rows)


@functools.lru_cache(maxsize=4)
def delete_statement(conditional: bool, claimed: bool) -> Any:
    stmt = delete(tasks).where(*_matching(conditional, claimed))
    return claiming(stmt.returning(tasks.c.id), claimed)


def delete_task(
    identity: Identity, task_id: int, versions: Sequence[int] | None = ANY_VERSION
) -> bool:
    """Delete the task and its subtree (the parent foreign key's cascade); False when there
    is no such task."""
    conditional = versions is not ANY_VERSION
    rows = write_one(
        identity,
        lambda claimed: delete_statement(conditional, claimed),
        _target(task_id, versions),
    )
    if _one(identity, task_id, rows) is None:
        return False
    deletions.forget_old()
    return True


# --------------------------------------------------------------------------- create


def siblings(user_id: str, list_id: int, parent_id: int | None) -> tuple[Any, ...]:
    """The conditions naming one sibling set: a list's level under one parent (or none)."""
    under = tasks.c.parent_id.is_(None) if parent_id is None else tasks.c.parent_id == parent_id
    return (tasks.c.user_id == user_id, tasks.c.list_id == list_id, under)


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def insert_statement(fields: tuple[str, ...]) -> Any:
    values = {name: _value(name) for name in fields}
    return insert(tasks).values(**values).returning(*TASK_COLUMNS)


def _depth_refused(depth: int) -> Refused:
    return Refused(422, errors.TOO_DEEP.format(limit=tree.DEPTH_MAX, depth=depth), "parent_id")


def create_in(w: Write, data: Mapping[str, Any]) -> Row[Any]:
    """A new task (last among its siblings) and its tag keys, in the user's write
    transaction. (An open subtask under a completed task reopens it: app/tasks/tree.py.)"""
    parent_id = data.get("parent_id")
    above: Sequence[Row[Any]] = ()
    if parent_id is not None:
        above = tree.chain(w, parent_id)
        if not above:
            raise Refused(422, errors.NO_SUCH_TASK, "parent_id")
        list_id = above[0].list_id
        if data.get("list_id", list_id) != list_id:
            message = errors.PARENT_IN_OTHER_LIST.format(
                parent_list=list_id, list_id=data["list_id"]
            )
            raise Refused(422, message, "parent_id")
        if tree.too_deep(len(above) + 1):
            raise _depth_refused(len(above) + 1)
    elif "list_id" in data:
        list_id = data["list_id"]
        if not lists.owns(w, list_id):
            raise Refused(422, errors.NO_SUCH_LIST, "list_id")
    else:
        list_id = lists.default_list(w).id
    values = {
        **data,
        "user_id": w.user_id,
        "list_id": list_id,
        "parent_id": parent_id,
        "position": positions.last(w, tasks, siblings(w.user_id, list_id, parent_id)),
        "completed_at": w.now if data.get("completed") else None,
        "created_at": w.now,
        "updated_at": w.now,
        "seq": w.seq,
    }
    row = w.conn.execute(insert_statement(tuple(sorted(values))), values).one()
    if data.get("tags"):
        _write_tags(w.conn, w.user_id, row.id, data["tags"])
    return row


def create_task(identity: Identity, data: Mapping[str, Any]) -> Row[Any]:
    """A new task. The common one (last at the top of the default list, no tags) reads
    where it goes, then is one statement that writes only if nothing of the user changed
    in between; any other, and that one when something did, runs in the user's write
    transaction."""
    if data.get("parent_id") is None and "list_id" not in data and not data.get("tags"):
        row = _create_last(identity, data)
        if row is not None:
            return row
    with write(identity) as w:
        return create_in(w, data)


# Tries of the common create before the careful way: under the user's own concurrent
# writes (a second tab, a sync) a try can lose to one of them; the careful way waits for
# the lock and, holding it, makes the next writes of the user lose in turn. Why not
# always the careful way: it holds the lock over a round trip more (bench/README.md).
TRIES = 3
default_lists = TaskList.__table__
# Where a new task goes at the end of the default list's top level: the list, the last
# key there, and the user's write counter as it stands (no row: no default list yet).
LAST_IN_DEFAULT = (
    select(
        users.c.seq,
        default_lists.c.id.label("list_id"),
        select(func.max(tasks.c.position))
        .where(*siblings(OWNER, default_lists.c.id, None))
        .scalar_subquery()
        .label("greatest"),
    )
    .join_from(users, default_lists, default_lists.c.user_id == users.c.id)
    .where(users.c.id == OWNER, default_lists.c.is_default)
)


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def insert_unless_changed(fields: tuple[str, ...], claimed: bool) -> Any:
    """The new task from bound ``fields`` (``new_`` and the name: INSERT ... SELECT keeps
    the names themselves for its own use), with the write's moment and seq, if the user's
    counter is still at ``seen``."""
    new = {name: bindparam(f"new_{name}", type_=tasks.c[name].type) for name in fields}
    completed_at = case((new["completed"], NOW), else_=null()) if "completed" in new else null()
    made = (NOW, NOW, completed_at, seq(claimed))
    source = select(*new.values(), *made).where(unchanged(claimed))
    names = (*fields, "created_at", "updated_at", "completed_at", "seq")
    return claiming(insert(tasks).from_select(names, source).returning(*TASK_COLUMNS), claimed)


def _create_last(identity: Identity, data: Mapping[str, Any]) -> Row[Any] | None:
    """``create_task``'s common case; None when it must be made the careful way."""
    for _ in range(TRIES):
        with connection() as conn:
            place = conn.execute(LAST_IN_DEFAULT, {"owner": identity.user_id}).one_or_none()
        key = None if place is None else positions.between(place.greatest, None)
        if key is None:  # no default list yet, or keys to lay out again
            return None
        values = {**data, "user_id": identity.user_id, "list_id": place.list_id, "position": key}
        fields = tuple(sorted(values))
        rows = write_one(
            identity,
            lambda claimed, fields=fields: insert_unless_changed(fields, claimed),
            {**{f"new_{name}": value for name, value in values.items()}, "seen": place.seq},
        )
        if rows:
            return rows[0]
    return None


# --------------------------------------------------------------------------- move


def move_task(
    identity: Identity,
    task_id: int,
    body: Mapping[str, Any],
    versions: Sequence[int] | None = ANY_VERSION,
) -> Row[Any] | None:
    """Place the task and its subtree as ``body`` says (list_id, parent_id, after_id: see
    docs/api.md, "Move"); None when there is no such task. Every id in the body must be
    the user's (422 naming the field) before the tree's rules are checked."""
    with write(identity) as w:
        params = _params(w, task_id, versions)
        found = PLACE.where(*_matching(versions is not ANY_VERSION, False))
        task = w.conn.execute(found, params).one_or_none()
        if task is None:
            _missing_or_stale(w.conn, w.user_id, task_id)
            return None
        if "list_id" in body and not lists.owns(w, body["list_id"]):
            raise Refused(422, errors.NO_SUCH_LIST, "list_id")
        above = () if body.get("parent_id") is None else tree.chain(w, body["parent_id"])
        if body.get("parent_id") is not None and not above:
            raise Refused(422, errors.NO_SUCH_TASK, "parent_id")
        after = None
        if body.get("after_id") is not None:
            after = w.conn.execute(PLACE.where(*OWNED), {**params, "task_id": body["after_id"]})
            after = after.one_or_none()
            if after is None:
                raise Refused(422, errors.NO_SUCH_TASK, "after_id")
        list_id, parent_id = _destination(w, task, body, above)
        after_key = _after(task, list_id, parent_id, after)
        scope = siblings(w.user_id, list_id, parent_id)
        key = positions.after(w, tasks, scope, task_id, after_key)
        return w.conn.execute(
            MOVE, {**params, "list_id": list_id, "parent_id": parent_id, "position": key}
        ).one()


MOVE = (
    update(tasks)
    .where(*OWNED)
    .values(
        list_id=_value("list_id"),
        parent_id=_value("parent_id"),
        position=_value("position"),
        updated_at=NOW,
        version=tasks.c.version + 1,
        seq=SEQ,
    )
    .returning(*TASK_COLUMNS)
)


def _destination(
    w: Write, task: Row[Any], body: Mapping[str, Any], above: Sequence[Row[Any]]
) -> tuple[int, int | None]:
    """The list and parent a move sends the task to, its defaults filled in and the tree's
    rules checked (422 naming the field and the rule). ``above``: the new parent's chain."""
    if not above:
        list_id = body.get("list_id", task.list_id)
        if "parent_id" in body or list_id != task.list_id:
            return list_id, None  # the top level
        return list_id, task.parent_id  # stays under its parent
    parent_list = above[0].list_id
    list_id = body.get("list_id", parent_list)
    if parent_list != list_id:
        message = errors.PARENT_IN_OTHER_LIST.format(parent_list=parent_list, list_id=list_id)
        raise Refused(422, message, "parent_id")
    if any(ancestor.id == task.id for ancestor in above):
        raise Refused(422, errors.UNDER_ITSELF, "parent_id")
    depth = len(above) + tree.height(w, task.id)
    if tree.too_deep(depth):
        raise _depth_refused(depth)
    return list_id, above[0].id


def _after(
    task: Row[Any], list_id: int, parent_id: int | None, after: Row[Any] | None
) -> str | None:
    """The key of the sibling the task goes right after (None: first)."""
    if after is None:
        return None
    if after.id == task.id:
        raise Refused(422, errors.AFTER_ITSELF, "after_id")
    if (after.list_id, after.parent_id) != (list_id, parent_id):
        under = "the top level" if parent_id is None else f"task {parent_id}"
        raise Refused(422, errors.NOT_A_SIBLING.format(list_id=list_id, parent=under), "after_id")
    return str(after.position)
