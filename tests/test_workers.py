"""The connection table the gunicorn workers share (app/workers.py), without gunicorn."""

from __future__ import annotations

import os
import time

from app.workers import Board


def test_reserved_slots_are_not_given_twice_and_released_slots_are_reused() -> None:
    board = Board()
    first, second = board.reserve(), board.reserve()
    assert first is not None and second is not None and first != second
    board.publish(first, os.getpid(), 3, accepting=True)
    board.release(second)
    assert board.reserve() == second  # free again
    assert board.reserve() not in (first, second)


def test_a_dead_workers_slot_is_free_again() -> None:
    board = Board()
    slot = board.reserve()
    assert slot is not None
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    board.publish(slot, dead, 5, accepting=True)
    assert board.reserve() == slot


def test_a_stale_slot_is_free_again() -> None:
    board = Board()
    slot = board.reserve()
    assert slot is not None
    board.publish(slot, os.getpid(), 5, accepting=True)
    board.values[slot * Board.FIELDS + 2] = time.monotonic() - Board.STALE - 1
    assert board.reserve() == slot


def test_least_other_counts_only_live_accepting_siblings() -> None:
    board = Board()
    me, busy, idle, stopping = (board.reserve() for _ in range(4))
    assert None not in (me, busy, idle, stopping)
    pid = os.getpid()
    board.publish(me, pid, 0, accepting=True)  # type: ignore[arg-type]
    assert board.least_other(me) is None  # type: ignore[arg-type]
    board.publish(busy, pid, 9, accepting=True)  # type: ignore[arg-type]
    assert board.least_other(me) == 9  # type: ignore[arg-type]
    board.publish(idle, pid, 4, accepting=True)  # type: ignore[arg-type]
    assert board.least_other(me) == 4  # type: ignore[arg-type]
    board.publish(stopping, pid, 1, accepting=False)  # type: ignore[arg-type]
    assert board.least_other(me) == 4  # a stopping worker takes no new connections
    board.release(idle)  # type: ignore[arg-type]
    assert board.least_other(me) == 9  # type: ignore[arg-type]
    assert board.least_other(busy) == 0  # type: ignore[arg-type]


def test_workers_forked_after_the_board_share_it() -> None:
    board = Board()
    slot = board.reserve()
    assert slot is not None
    child = os.fork()
    if child == 0:
        board.publish(slot, os.getpid(), 7, accepting=True)
        os._exit(0)
    os.waitpid(child, 0)
    assert board.values[slot * Board.FIELDS + 1] == 7
