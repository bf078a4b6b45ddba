"""gunicorn pieces: a threaded worker that shares connections evenly with its siblings
and stops listening at once on SIGTERM, and a logger that skips the access log (the
app writes its own request log).

BalancedThreadWorker
--------------------

Stock gthread workers share one listening socket, and whichever wakes first takes a
new connection. A kept-alive connection then stays with that worker for as long as
the client keeps using it, and nothing ever moves it. Two things follow under load
from clients that reuse connections (a proxy's upstream pool, or wrk):

- after a worker is recycled (``max_requests``), its clients reconnect to the
  workers still running, and the fresh worker gets none of them: all the connections
  end up on one worker while the other sits idle;
- a burst of new connections splits unevenly (24/8 was common).

Measured with 32 connections on 2 workers: the same route served ~1,700 req/s when
the connections were split evenly and ~870 req/s when one worker held them all
(bench/README.md, "Third round"). This worker balances them:

- every worker publishes its number of open connections in a small table of shared
  memory, which the master creates before the first fork (``Board``);
- a worker that has more connections than the least loaded of its siblings lets a
  new connection wait for a sibling (it stops listening for RELISTEN_AFTER seconds);
  after ACCEPT_GRACE it takes the connection anyway, so a stuck or busy sibling
  never leaves a client waiting for long;
- a worker that holds more than SHED_MARGIN connections over the least loaded
  answers the next few requests with ``Connection: close``, half the difference.
  The client reconnects (HTTP/1.1 allows a server to close after any response) and
  the new connection goes to the less loaded worker.

The same table makes restarts rolling. Workers that share the load evenly reach
``max_requests`` at about the same moment (the jitter is 10 %), and stock gunicorn then
restarts them together: for the ~0.1-0.3 s until the master has forked their
successors, no worker accepts connections at all, and every client waits (p99 of
~300 ms at 32 connections). Here a worker due for a restart while a sibling is
restarting (stopping, or forked but not yet serving) postpones it by a twentieth of
``max_requests``, again if need be, but by no more than ``max_requests`` in all, so
that recycling still bounds a leak.

A worker that finds no free slot in the table (more than Board.SLOTS workers) takes
connections and restarts as stock gthread does.

Draining on SIGTERM
-------------------

Stock gthread, on SIGTERM, stops polling its listening socket but keeps it open
until its in-flight requests finish. Meanwhile the kernel keeps completing new
connections into the socket's queue, and they are reset when the worker exits: a
request the client already sent is lost, and a load balancer cannot safely retry it.

This worker, once stopping, accepts what the kernel had already queued (those are
served like any other request) and closes its listening socket at once, so later
connection attempts are refused, which any client or load balancer can retry.

QuietAccessLogger
-----------------
gunicorn builds an access-log entry for every request (a dict of all request and
response headers and the WSGI environ) whenever a ``logconfig_dict`` is set, even with
``accesslog`` off and no handler on ``gunicorn.access``. gunicorn.conf.py sets one (to
write gunicorn's own messages as JSON), and building those entries cost ~10 % of a
worker's time under load (py-spy, bench/README.md). The app's JSON request log already
has one line per request, so this logger does nothing for access.
"""

from __future__ import annotations

import atexit
import logging
import ctypes
import mmap
import multiprocessing
import os
import selectors
import socket
import struct
import sys
import time
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker

# A worker holding more than this many connections over its least loaded sibling
# closes some of them (after their next response) so that they reconnect elsewhere.
SHED_MARGIN = 2
# How often a worker compares its load with its siblings' (seconds).
BALANCE_INTERVAL = 0.01
# A worker that is not the least loaded looks at its listening socket again after
# RELISTEN_AFTER; a connection still waiting after ACCEPT_GRACE is taken anyway.
RELISTEN_AFTER = 0.002
ACCEPT_GRACE = 0.05


class QuietAccessLogger(Logger):
    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


class Board:
    """Open connections per worker, in memory shared by one master's workers.

    Each slot holds four doubles: the worker's pid (0: free, -1: reserved by the
    master for a worker about to be forked), its open connections, when it last wrote
    (``time.monotonic``, one clock for every process) and whether it accepts new
    connections. Only the master reserves slots (it is single-threaded) and only a
    slot's worker writes it afterwards, so no lock is needed; a reader may see a value
    one write old, which only delays a balancing decision.
    """

    SLOTS = 64
    FIELDS = 4
    STALE = 10.0  # a slot not written for this long belongs to a dead or stuck worker

    def __init__(self) -> None:
        # The slots, then one flag: the master is shutting down (see watch_for_shutdown).
        self._memory = mmap.mmap(-1, (self.SLOTS * self.FIELDS + 1) * 8)  # shared, anonymous
        self.values = memoryview(self._memory).cast("d")
        # Taken (briefly, with a timeout) by a worker deciding whether to restart, so that
        # two workers cannot both see the other serving and both stop.
        self.restart_lock = multiprocessing.get_context("fork").Lock()

    def reserve(self) -> int | None:
        """A free slot, marked reserved; called in the master before a fork."""
        now = time.monotonic()
        values = self.values
        for slot in range(self.SLOTS):
            base = slot * self.FIELDS
            pid = int(values[base])
            if pid != 0 and now - values[base + 2] < self.STALE and _alive(pid):
                continue
            values[base] = -1.0
            values[base + 1] = 0.0
            values[base + 2] = now
            values[base + 3] = 0.0
            return slot
        return None

    def publish(self, slot: int, pid: int, connections: int, accepting: bool) -> None:
        base = slot * self.FIELDS
        values = self.values
        values[base + 1] = connections
        values[base + 2] = time.monotonic()
        values[base + 3] = 1.0 if accepting else 0.0
        values[base] = pid

    def release(self, slot: int) -> None:
        base = slot * self.FIELDS
        self.values[base + 3] = 0.0
        self.values[base] = 0.0

    def _accepting_siblings(self, slot: int) -> list[int]:
        """Open connections of each sibling that is alive, recent and accepting."""
        now = time.monotonic()
        fields = self.FIELDS
        snapshot = self.values.tolist()[: self.SLOTS * fields]
        return [
            int(snapshot[base + 1])
            for base in range(0, len(snapshot), fields)
            if base != slot * fields
            and snapshot[base] > 0
            and snapshot[base + 3] == 1.0
            and now - snapshot[base + 2] < self.STALE
        ]

    def accepting_others(self, slot: int) -> int:
        """How many siblings accept connections now."""
        return len(self._accepting_siblings(slot))

    def least_other(self, slot: int) -> int | None:
        """The fewest open connections of a sibling that accepts connections, or None."""
        return min(self._accepting_siblings(slot), default=None)

    @property
    def closing(self) -> bool:
        """The master is shutting down for good, and the listening socket is its own."""
        return self.values[self.SLOTS * self.FIELDS] == 1.0

    def mark_closing(self) -> None:
        self.values[self.SLOTS * self.FIELDS] = 1.0


def _alive(pid: int) -> bool:
    if pid < 0:
        return True  # reserved: its worker is being forked
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BalancedThreadWorker(ThreadWorker):
    board: Board | None = None  # created by the master, inherited by every worker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # in the master, before the fork
        if BalancedThreadWorker.board is None:
            BalancedThreadWorker.board = Board()
        self.slot = BalancedThreadWorker.board.reserve()
        self._listening = False
        self._relisten_at = 0.0
        self._deferred_since: float | None = None
        self._next_balance = 0.0
        self._shed = 0  # connections to close after their next response
        self._postponed = 0  # requests added to max_requests while a sibling restarted
        self._restarting = False  # decided to stop after the current request

    # ---------------------------------------------------------------- listening

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn's loop asks for listening on or off; listening also pauses while this
        # worker lets a sibling take a connection (accept below).
        self._accepting = enabled
        self._update_listening()
        if enabled or self.alive:
            return
        # Stopping: accept what the kernel already queued, then stop listening for good.
        self._publish()
        closing = self.board is not None and self.board.closing
        for listener in self.sockets:
            if closing:
                refuse_new_connections(listener)
            while True:
                try:
                    client_sock, client_addr = listener.accept()
                except OSError:  # EAGAIN: queue empty (or the socket is already gone)
                    break
                self.nr_conns += 1
                client_sock.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))
            listener.close()

    def _update_listening(self) -> None:
        listen = self._accepting and self._relisten_at == 0.0
        if listen == self._listening:
            return
        for listener in self.sockets:
            if listen:
                listener.setblocking(False)
                self.poller.register(listener, selectors.EVENT_READ, self.accept)
            else:
                self.poller.unregister(listener)
        self._listening = listen

    def accept(self, listener: Any) -> None:
        if self.slot is not None and self.board is not None:
            least = self.board.least_other(self.slot)
            if least is not None and self.nr_conns > least:
                now = time.monotonic()
                if self._deferred_since is None or now - self._deferred_since > 4 * ACCEPT_GRACE:
                    self._deferred_since = now  # a new wait (an older one has ended)
                if now - self._deferred_since < ACCEPT_GRACE:
                    self._relisten_at = now + RELISTEN_AFTER
                    self._update_listening()
                    return
        self._deferred_since = None
        super().accept(listener)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self._relisten_at:
            remaining = self._relisten_at - time.monotonic()
            if remaining <= 0:
                self._relisten_at = 0.0
                self._update_listening()
            else:
                timeout = min(timeout, remaining)
        super().wait_for_and_dispatch_events(timeout)

    # ---------------------------------------------------------------- balancing

    def _publish(self) -> None:
        if self.slot is not None and self.board is not None:
            accepting = self.alive and self._accepting and not self._restarting
            self.board.publish(self.slot, os.getpid(), self.nr_conns, accepting)

    def notify(self) -> None:
        # Called by gunicorn's loop on every pass (the worker's heartbeat).
        super().notify()
        if self.slot is None or self.board is None:
            return
        self._publish()
        now = time.monotonic()
        if now < self._next_balance:
            return
        self._next_balance = now + BALANCE_INTERVAL
        least = self.board.least_other(self.slot)
        excess = self.nr_conns - least if least is not None and self.alive else 0
        self._shed = excess // 2 if excess > SHED_MARGIN else 0

    def handle_request(self, req: Any, conn: Any) -> bool:
        if self.nr + 1 >= self.max_requests and not self._restarting:
            self._before_restart()  # gunicorn restarts the worker after this request
        if self._shed > 0:
            self._shed -= 1  # two threads may both take the last one: one extra close
            req.must_close = True  # "Connection: close"; the client reconnects elsewhere
        return super().handle_request(req, conn)

    def _before_restart(self) -> None:
        """Not while a sibling restarts: postpone by 1/20 of max_requests, at most
        max_requests in all. Otherwise tell the siblings at once that this worker no
        longer takes connections."""
        board = self.board
        if self.slot is None or board is None or not self.alive:
            return
        locked = board.restart_lock.acquire(timeout=0.05)  # a dead holder cannot block us
        try:
            step = max(self.cfg.max_requests // 20, 1)
            if (
                self._postponed + step <= self.cfg.max_requests
                and board.accepting_others(self.slot) < self.cfg.workers - 1
            ):
                self._postponed += step
                self.max_requests += step
                return
            self._restarting = True
            self._publish()
        finally:
            if locked:
                board.restart_lock.release()

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.slot is not None and self.board is not None:
                self.board.release(self.slot)


def exit_worker_now(worker: Any) -> None:
    """gunicorn's ``worker_exit`` hook: end a worker that stopped normally at once.

    A stopped worker otherwise exits through the interpreter's full shutdown, which
    for a process forked from the preloaded app took ~0.4 s here (freeing every
    object it inherited), and the master forks the successor only once the old
    worker has exited: a restart left one worker short for that long. The exit
    functions still run (log handlers flushed, the last request metrics written) and
    the database connections are closed; a worker ending with an error (a failed
    boot, say) exits the usual way, with its status.
    """
    exc = sys.exc_info()[1]
    if not (isinstance(exc, SystemExit) and exc.code in (0, None) and worker.booted):
        return
    try:
        from flask import Flask

        from .models import db

        app = getattr(worker, "wsgi", None)
        if isinstance(app, Flask) and "sqlalchemy" in app.extensions:
            with app.app_context():
                db.engine.dispose()
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)


# Classic BPF, one instruction: BPF_RET | BPF_K with k = 0, "keep 0 bytes": drop the packet.
_DROP_EVERYTHING = struct.pack("HBBI", 0x06, 0, 0, 0)
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # Linux


def refuse_new_connections(listener: socket.socket) -> bool:
    """Make the kernel drop new connection attempts on a listening socket (Linux).

    When the server shuts down, the last worker accepts what is queued and closes the
    socket; a connection that completes in between, even a few milliseconds (a worker's
    main thread waiting for the GIL), is reset by the close, its request lost. With this
    filter on the socket first, a new SYN is dropped instead: the client sends it again
    a second later and is then refused, which it can retry elsewhere. Connections already
    queued are not affected, and are drained and served. False where the kernel refuses.
    """
    program = ctypes.create_string_buffer(_DROP_EVERYTHING)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def watch_for_shutdown(server: Any) -> None:
    """gunicorn's ``when_ready`` hook (the master): on SIGTERM, before stopping, tell the
    workers the listening socket is closing for good, so that the last of them refuses
    new connections before its final drain (``refuse_new_connections``).

    Only when this master alone owns the socket: not while a new master started by USR2
    shares it, nor when systemd passed it in (it keeps the queue for the next start).
    A restart of single workers (max_requests, HUP, TTOU) leaves the socket alone."""
    handle_term = server.handle_term

    def handle_term_then_stop() -> None:
        board = BalancedThreadWorker.board
        exclusive = server.reexec_pid == 0 and server.master_pid == 0 and not server.systemd
        if board is not None and exclusive:
            board.mark_closing()
        handle_term()

    server.handle_term = handle_term_then_stop
