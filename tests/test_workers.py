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


def test_accepting_others_counts_siblings_that_take_connections() -> None:
    board = Board()
    me, up, stopping, booting = (board.reserve() for _ in range(4))
    pid = os.getpid()
    board.publish(me, pid, 0, accepting=True)  # type: ignore[arg-type]
    assert board.accepting_others(me) == 0  # type: ignore[arg-type]
    board.publish(up, pid, 3, accepting=True)  # type: ignore[arg-type]
    board.publish(stopping, pid, 3, accepting=False)  # type: ignore[arg-type]
    # ``booting`` is reserved by the master, not yet written by its worker.
    assert board.accepting_others(me) == 1  # type: ignore[arg-type]
    board.publish(booting, pid, 0, accepting=True)  # type: ignore[arg-type]
    assert board.accepting_others(me) == 2  # type: ignore[arg-type]


def _worker(workers: int = 2, max_requests: int = 1000):  # type: ignore[no-untyped-def]
    """A BalancedThreadWorker as the master builds it before forking, on a board of its own."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from app.workers import BalancedThreadWorker

    cfg = Config()
    cfg.set("workers", workers)
    cfg.set("max_requests", max_requests)
    cfg.set("max_requests_jitter", 0)
    BalancedThreadWorker.board = Board()
    try:
        worker = BalancedThreadWorker(1, os.getpid(), [], None, 30, cfg, Logger(cfg))
    finally:
        board = BalancedThreadWorker.board
        BalancedThreadWorker.board = None
    worker.board = board
    worker._accepting = True
    worker._publish()
    return worker


def test_a_worker_due_for_a_restart_waits_for_a_restarting_sibling() -> None:
    worker = _worker(max_requests=1000)
    board = worker.board
    sibling = board.reserve()
    board.publish(sibling, os.getpid(), 4, accepting=False)  # stopping
    worker.nr = 999
    worker._before_restart()
    assert (worker.max_requests, worker._restarting) == (1050, False)  # postponed by 1/20
    # Once the sibling serves again, the restart goes ahead, and says so at once.
    board.publish(sibling, os.getpid(), 4, accepting=True)
    worker.nr = 1049
    worker._before_restart()
    assert worker._restarting
    assert board.values[worker.slot * Board.FIELDS + 3] == 0.0  # not accepting any more
    assert board.accepting_others(sibling) == 0


def test_postponing_stops_after_max_requests_in_all() -> None:
    worker = _worker(max_requests=100)
    board = worker.board
    booting = board.reserve()  # reserved by the master, its worker not serving yet
    assert booting is not None
    for _ in range(100):
        worker.nr = worker.max_requests - 1
        worker._before_restart()
        if worker._restarting:
            break
    assert worker._restarting
    assert worker.max_requests == 200  # 20 postponements of 5: a leak stays bounded


def test_a_single_worker_restarts_when_due() -> None:
    worker = _worker(workers=1, max_requests=100)
    worker.nr = 99
    worker._before_restart()
    assert worker._restarting and worker.max_requests == 100


def _exit_in_child(code: int, booted: bool, marker: str) -> int:
    """Fork; the child ends the way gunicorn ends a worker, calling the worker_exit hook
    in the ``finally`` of a SystemExit. The child's exit status."""
    import atexit
    from types import SimpleNamespace

    from app.workers import exit_worker_now

    pid = os.fork()
    if pid == 0:
        try:
            atexit.register(lambda: open(marker, "w").close())  # exit functions still run
            try:
                raise SystemExit(code)
            finally:
                exit_worker_now(SimpleNamespace(booted=booted, wsgi=None))
        except SystemExit as exc:  # the hook returned: 100 + the status the usual exit has
            os._exit(100 + (exc.code if isinstance(exc.code, int) else 1))
        os._exit(99)  # not reached
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_worker_that_stopped_normally_exits_at_once_after_its_exit_functions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = str(tmp_path / "ran")
    assert _exit_in_child(0, booted=True, marker=marker) == 0
    assert os.path.exists(marker)


def test_a_worker_that_failed_keeps_its_exit_status(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _exit_in_child(3, booted=True, marker=str(tmp_path / "a")) == 103
    assert _exit_in_child(0, booted=False, marker=str(tmp_path / "b")) == 100


def test_a_refusing_listener_drops_new_connections_and_keeps_the_queued_ones() -> None:
    import socket

    from app.workers import refuse_new_connections

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        assert refuse_new_connections(listener)
        try:  # the SYN is dropped: no connection, and no reset either
            late = socket.create_connection(("127.0.0.1", port), timeout=0.3)
        except TimeoutError:
            late = None
        assert late is None
        accepted, _ = listener.accept()  # what was queued before is still served
        queued.sendall(b"ping")
        assert accepted.recv(4) == b"ping"
        accepted.close()
    finally:
        queued.close()
        listener.close()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    assert refused  # once closed: refused at once, which a client can retry


def test_only_a_master_that_owns_the_socket_marks_it_closing() -> None:
    from types import SimpleNamespace

    from app.workers import BalancedThreadWorker, watch_for_shutdown

    terms = []
    for reexec_pid, master_pid, systemd, closing in (
        (0, 0, False, True),  # the usual SIGTERM
        (4242, 0, False, False),  # USR2 started a new master that shares the socket
        (0, 4242, False, False),  # this is that new master; the old one still has it
        (0, 0, True, False),  # systemd owns the socket
    ):
        server = SimpleNamespace(
            reexec_pid=reexec_pid, master_pid=master_pid, systemd=systemd,
            handle_term=lambda: terms.append(1),
        )
        BalancedThreadWorker.board = Board()
        try:
            watch_for_shutdown(server)
            assert not BalancedThreadWorker.board.closing
            server.handle_term()
            assert BalancedThreadWorker.board.closing is closing
        finally:
            BalancedThreadWorker.board = None
    assert len(terms) == 4  # gunicorn's own handler always runs after
