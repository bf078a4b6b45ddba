"""SQL for the lists routes, with SQLAlchemy Core. Every statement is scoped to one owner.

Reads run on an autocommit connection; writes in the user's write transaction
(app/owners.py). A list's ``open_count`` is kept by the database (triggers on tasks), which
also bumps the list's version when it changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, true, update

from .. import errors, positions
from ..errors import Refused
from ..etags import ANY_VERSION, at_versions, versions_param
from ..models import LISTS_MAX, Task, TaskList
from ..owners import Write
from .schemas import DEFAULT_TITLE, LIST

lists = TaskList.__table__
tasks = Task.__table__
# A list's JSON fields, then its version (the ETag).
LIST_COLUMNS = (*LIST.columns(lists), lists.c.version)
DEFAULT = "default"  # the path alias of the user's default list

OWNER = bindparam("owner", type_=lists.c.user_id.type)
LIST_ID = bindparam("list_id", type_=lists.c.id.type)
NOW = bindparam("now", type_=lists.c.updated_at.type)
SEQ = bindparam("seq", type_=lists.c.seq.type)  # the write's: every row it changes gets it
OWNED = (lists.c.user_id == OWNER, lists.c.id == LIST_ID)
IS_DEFAULT = (lists.c.user_id == OWNER, lists.c.is_default == true())

ALL_LISTS = (
    select(*LIST_COLUMNS).where(lists.c.user_id == OWNER).order_by(lists.c.position, lists.c.id)
)
GET_LIST = select(*LIST_COLUMNS).where(*OWNED)
GET_DEFAULT = select(*LIST_COLUMNS).where(*IS_DEFAULT)
EXISTS = select(lists.c.id).where(*OWNED)
POSITION = select(lists.c.position).where(*OWNED)
COUNT = select(func.count()).select_from(lists).where(lists.c.user_id == OWNER)
INSERT = insert(lists).returning(*LIST_COLUMNS)
DELETE_TASKS = delete(tasks).where(tasks.c.user_id == OWNER, tasks.c.list_id == LIST_ID)


def all_lists(conn: Connection, user_id: str) -> Sequence[Row[Any]]:
    """The user's lists in their order (position, then id)."""
    return conn.execute(ALL_LISTS, {"owner": user_id}).all()


def get_list(conn: Connection, user_id: str, list_id: int | str) -> Row[Any] | None:
    """One list, by id or as ``DEFAULT``; None when the user has no such list."""
    if list_id == DEFAULT:
        return conn.execute(GET_DEFAULT, {"owner": user_id}).one_or_none()
    return conn.execute(GET_LIST, {"owner": user_id, "list_id": list_id}).one_or_none()


def owns(w: Write, list_id: int) -> bool:
    return w.conn.execute(EXISTS, {"owner": w.user_id, "list_id": list_id}).first() is not None


def default_list(w: Write) -> Row[Any]:
    """The user's default list, made (last in their order) if they have none yet."""
    found = w.conn.execute(GET_DEFAULT, {"owner": w.user_id}).one_or_none()
    if found is not None:
        return found
    return _insert(w, {"title": DEFAULT_TITLE, "color": None, "is_default": True})


def resolve(w: Write, list_id: int | str) -> int | None:
    """A path's list id (``DEFAULT`` made if need be) as the user's list id, or None."""
    if list_id == DEFAULT:
        return int(default_list(w).id)
    return int(list_id) if owns(w, int(list_id)) else None


def _insert(w: Write, values: Mapping[str, Any]) -> Row[Any]:
    position = positions.last(w, lists, (lists.c.user_id == w.user_id,))
    row = {
        **values,
        "user_id": w.user_id,
        "position": position,
        "created_at": w.now,
        "updated_at": w.now,
        "seq": w.seq,
    }
    return w.conn.execute(INSERT, row).one()


def create_list(w: Write, data: Mapping[str, Any]) -> Row[Any]:
    """A new list, last in the user's order; 409 past the limit (the default list, made
    first if need be, counts)."""
    default_list(w)
    if w.conn.execute(COUNT, {"owner": w.user_id}).scalar_one() >= LISTS_MAX:
        raise Refused(409, errors.TOO_MANY_LISTS.format(limit=LISTS_MAX))
    return _insert(w, {**data, "is_default": False})


def _conditional(w: Write, list_id: int, versions: Sequence[int] | None) -> dict[str, Any]:
    params = {"owner": w.user_id, "list_id": list_id, "now": w.now, "seq": w.seq}
    return {**params, **versions_param(versions)}


def _where(versions: Sequence[int] | None) -> tuple[Any, ...]:
    return OWNED if versions is ANY_VERSION else (*OWNED, at_versions(lists.c.version))


def _stale_or_missing(w: Write, list_id: int) -> None:
    """A conditional write matched nothing: 412 if the list exists, else None (a 404)."""
    if owns(w, list_id):
        raise Refused(412, errors.LIST_CHANGED)


def update_list(
    w: Write, list_id: int, changes: Mapping[str, Any], versions: Sequence[int] | None
) -> Row[Any] | None:
    stmt = (
        update(lists)
        .where(*_where(versions))
        .values(**changes, updated_at=NOW, version=lists.c.version + 1, seq=SEQ)
        .returning(*LIST_COLUMNS)
    )
    row = w.conn.execute(stmt, _conditional(w, list_id, versions)).one_or_none()
    if row is None:
        _stale_or_missing(w, list_id)
    return row


def delete_list(w: Write, list_id: int, versions: Sequence[int] | None) -> bool:
    """Delete the list and its tasks; False when there is no such list. The default list
    stays (409)."""
    stmt = select(lists.c.is_default).where(*_where(versions))
    found = w.conn.execute(stmt, _conditional(w, list_id, versions)).one_or_none()
    if found is None:
        _stale_or_missing(w, list_id)
        return False
    if found.is_default:
        raise Refused(409, errors.DEFAULT_LIST_STAYS)
    params = {"owner": w.user_id, "list_id": list_id}
    w.conn.execute(DELETE_TASKS, params)
    w.conn.execute(delete(lists).where(*OWNED), params)
    return True


def move_list(
    w: Write, list_id: int, after_id: int | None, versions: Sequence[int] | None
) -> Row[Any] | None:
    """Place the list right after list ``after_id`` (None: first)."""
    if (
        w.conn.execute(
            select(lists.c.id).where(*_where(versions)), _conditional(w, list_id, versions)
        ).first()
        is None
    ):
        _stale_or_missing(w, list_id)
        return None
    after_key = None
    if after_id is not None:
        if after_id == list_id:
            raise Refused(422, errors.AFTER_ITSELF_LIST, "after_id")
        after_key = w.conn.execute(POSITION, {"owner": w.user_id, "list_id": after_id}).scalar()
        if after_key is None:
            raise Refused(422, errors.NO_SUCH_LIST, "after_id")
    key = positions.after(w, lists, (lists.c.user_id == w.user_id,), list_id, after_key)
    stmt = (
        update(lists)
        .where(*OWNED)
        .values(position=key, updated_at=NOW, version=lists.c.version + 1, seq=SEQ)
        .returning(*LIST_COLUMNS)
    )
    params = {"owner": w.user_id, "list_id": list_id, "now": w.now, "seq": w.seq}
    return w.conn.execute(stmt, params).one()
