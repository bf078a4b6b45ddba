"""Manual order: position keys that sort byte by byte (fractional indexing).

A key between two others always exists, so placing a task or a list rewrites that one
row, not its siblings. Keys come from the ``fractional-indexing`` package (the algorithm
many editors use: base-62 digits, compared as plain bytes). They grow when many moves
land between the same two neighbours; when a key would pass POSITION_MAX characters, the
whole sibling set is laid out again with short keys, in the same transaction.

Callers hold the user's write lock (app/owners.py): nobody else changes the sibling set
while a key is chosen, so two keys are never equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fractional_indexing import generate_key_between, generate_n_keys_between
from sqlalchemy import Table, bindparam, func, select, update

from .models import POSITION_MAX
from .owners import Write


def between(before: str | None, after: str | None) -> str | None:
    """A key between two others (None: either end); None when it would be too long."""
    key = generate_key_between(before, after)
    return key if len(key) <= POSITION_MAX else None


def last(w: Write, table: Table, scope: Sequence[Any]) -> str:
    """The key of a new last row among ``scope`` (conditions naming one sibling set)."""
    greatest = w.conn.execute(select(func.max(table.c.position)).where(*scope)).scalar()
    key = between(greatest, None)
    if key is None:  # only after the last key itself grew long: lay them out again
        keys = _renumber(w, table, scope, moving=None, index=None)
        key = between(keys[-1] if keys else None, None)
    assert key is not None
    return key


def after(w: Write, table: Table, scope: Sequence[Any], moving: int, after_key: str | None) -> str:
    """The key for row ``moving`` placed right after the sibling whose key is ``after_key``
    (None: first) among ``scope``, renumbering the siblings when it would be too long."""
    siblings = select(table.c.position).where(*scope, table.c.id != moving)
    if after_key is None:
        following = w.conn.execute(siblings.order_by(table.c.position).limit(1)).scalar()
    else:
        later = siblings.where(table.c.position > bindparam("after_key", after_key))
        following = w.conn.execute(later.order_by(table.c.position).limit(1)).scalar()
    key = between(after_key, following)
    if key is not None:
        return key
    order = w.conn.execute(siblings.order_by(table.c.position, table.c.id)).scalars().all()
    index = 0 if after_key is None else order.index(after_key) + 1
    keys = _renumber(w, table, scope, moving=moving, index=index)
    return keys[index]


def _renumber(
    w: Write, table: Table, scope: Sequence[Any], moving: int | None, index: int | None
) -> list[str]:
    """Give the sibling set (without ``moving``) short keys in its current order, leaving
    a key free at ``index`` for ``moving``; every row whose key changes is a change (new
    version, ``updated_at`` and the write's ``seq``). Returns the keys in order, the free
    one included."""
    rows = w.conn.execute(
        select(table.c.id, table.c.position)
        .where(*scope, *(() if moving is None else (table.c.id != moving,)))
        .order_by(table.c.position, table.c.id)
    ).all()
    count = len(rows) + (0 if index is None else 1)
    keys = generate_n_keys_between(None, None, count)
    others = keys if index is None else keys[:index] + keys[index + 1 :]
    changed = [
        {"row_id": row.id, "new_position": key}
        for row, key in zip(rows, others, strict=True)
        if row.position != key
    ]
    if changed:
        w.conn.execute(
            update(table)
            .where(table.c.user_id == w.user_id, table.c.id == bindparam("row_id"))
            .values(
                position=bindparam("new_position"),
                version=table.c.version + 1,
                updated_at=bindparam("now", w.now, type_=table.c.updated_at.type),
                seq=bindparam("seq", w.seq, type_=table.c.seq.type),
            ),
            changed,
        )
    return keys
