"""Process-level tests: the real gunicorn (gunicorn.conf.py, wsgi:app) in a subprocess, with
the worker model that ships (gunicorn.conf.py's defaults: two sync workers, each serving one
request at a time).

- Database faults: gunicorn against a throwaway PostgreSQL (initdb + pg_ctl in a temp
  folder, on a free port: never the machine's main server), under a steady load of
  writes; PostgreSQL is stopped (503 + Retry-After, fast, no hung worker) and started
  again (recovery without restarting gunicorn), and every write answered 201 is in the
  database.
- Graceful shutdown: SIGTERM to the master under load; a request the app has started on
  (even mid-body) is answered in full, and gunicorn exits 0 within its graceful timeout.
  (A connection arriving while an instance shuts down is nginx's to retry on another
  instance: tests/test_stack.py's rolling restart.)
- Scale-out: two gunicorn instances on two ports, one database and one Redis: a user's
  rate limit is shared by both, and tasks written through one are read through the other.

Every loop is bounded in count and in time; everything listens on loopback only.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ALICE, TEST_SECRET, migrate, require
from flask import Flask
from sqlalchemy import create_engine, text
from support import (
    GRACEFUL_TIMEOUT,
    REDIS_HOST,
    REDIS_PORT,
    SHIPPED_WORKERS,
    Gunicorn,
    assert_error,
    free_port,
    is_error_shape,
    redis_answers,
)

from app.auth import create_token
from app.models import db

pytestmark = pytest.mark.slow


def auth(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(TEST_SECRET, user_id)}"}


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tasks-proc-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- database faults ------------------------------------------------------------------


def _pg_bindir() -> str | None:
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(bindir, "initdb"), os.X_OK) and os.access(
            os.path.join(bindir, "pg_ctl"), os.X_OK
        ):
            return bindir
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in a temp folder, on a free loopback port."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.as_root = os.geteuid() == 0  # initdb and postgres refuse to run as root
        # Under /tmp (traversable by the postgres user), not under a private pytest folder.
        self.tmp = tempfile.mkdtemp(prefix="tasks-fault-pg-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        if self.as_root:
            shutil.chown(self.tmp, "postgres", "postgres")
        self.data = os.path.join(self.tmp, "data")
        self.server_log = os.path.join(self.tmp, "postgres.log")
        self.ctl_log = os.path.join(self.tmp, "pg_ctl.out")
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/tasks_fault"

    def _run(self, *args: str, timeout: float) -> None:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # Output to a file, not a pipe: the postmaster pg_ctl leaves behind must not hold
        # our pipe open.
        with open(self.ctl_log, "ab") as out:
            result = subprocess.run(
                cmd,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in (self.ctl_log, self.server_log):
            try:
                parts.append(Path(path).read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(parts)

    def initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 "
            "-c max_connections=50 -c shared_buffers=16MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.server_log,
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
            timeout=40,
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop", timeout=40)

    def create_database(self) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE DATABASE tasks_fault"))
        finally:
            engine.dispose()

    def destroy(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self.stop("immediate")
            except Exception:  # noqa: BLE001 - last resort: the postmaster we started
                try:
                    pid = int(Path(self.data, "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Outcome:
    sent: float  # time.monotonic() when sent
    elapsed: float
    status: int | None = None
    task_id: int | None = None
    retry_after: str | None = None
    body: Any = None
    error: str | None = None


@dataclass
class WriteLoad:
    """Threads POSTing tasks in a loop, every outcome recorded. One per sync worker: every
    worker is kept busy, and no request waits for a worker behind another client's, so each
    one's time is the service's answer time (a hung worker shows as its client's request
    timing out)."""

    url: str
    user_id: str
    threads: int = SHIPPED_WORKERS
    pause: float = 0.01
    max_seconds: float = 40
    max_requests_per_thread: int = 3000
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def _run(self, index: int) -> None:
        headers = auth(self.user_id)
        deadline = time.monotonic() + self.max_seconds
        with requests.Session() as session:
            for n in range(self.max_requests_per_thread):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                try:
                    r = session.post(
                        f"{self.url}/api/{self.user_id}/tasks",
                        json={"title": f"load {index}-{n}"},
                        headers=headers,
                        timeout=5,
                    )
                    body = json_or_none(r)
                    outcome = Outcome(
                        sent,
                        time.monotonic() - sent,
                        r.status_code,
                        body.get("id") if r.status_code == 201 and isinstance(body, dict) else None,
                        r.headers.get("Retry-After"),
                        body if r.status_code != 201 else None,
                    )
                except requests.RequestException as exc:
                    outcome = Outcome(sent, time.monotonic() - sent, error=repr(exc))
                with self._lock:
                    self.outcomes.append(outcome)
                time.sleep(self.pause)

    def start(self) -> WriteLoad:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)


def _describe(outcomes: list[Outcome], t0: float, limit: int = 10) -> str:
    return "; ".join(
        f"+{o.sent - t0:.2f}s status={o.status} in {o.elapsed:.3f}s "
        f"retry-after={o.retry_after} error={o.error} body={str(o.body)[:120]}"
        for o in outcomes[:limit]
    )


def test_database_outage_answers_503_fast_and_recovers_without_restart(workdir: Path) -> None:
    bindir = _pg_bindir()
    require(bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            require(False, "running as root needs a `postgres` OS user for initdb and pg_ctl")
        require(shutil.which("runuser") is not None, "runuser is not installed (needed as root)")

    pg = ThrowawayPostgres(bindir)
    server: Gunicorn | None = None
    load: WriteLoad | None = None
    try:
        pg.initdb()
        pg.start()
        pg.create_database()
        migrate(pg.url)
        server = Gunicorn(pg.url, workdir, name="fault").start()

        def readyz() -> tuple[int, str | None, Any, float]:
            started = time.monotonic()
            r = requests.get(server.base + "/readyz", timeout=5)
            return (
                r.status_code,
                r.headers.get("Retry-After"),
                json_or_none(r),
                (time.monotonic() - started),
            )

        assert readyz()[0] == 200

        load = WriteLoad(server.base, ALICE).start()
        t0 = time.monotonic()
        time.sleep(2)

        t_stop_begin = time.monotonic()
        pg.stop("fast")
        t_stop_done = time.monotonic()
        time.sleep(1)
        ready_down = readyz()
        time.sleep(3)

        t_start_begin = time.monotonic()
        pg.start()
        t_start_done = time.monotonic()

        # Recovery: a write sent after PostgreSQL is back is answered 201, within 10 s.
        recovered_at: float | None = None
        deadline = t_start_done + 10
        while time.monotonic() < deadline and recovered_at is None:
            time.sleep(0.1)
            back = [o for o in load.snapshot() if o.sent >= t_start_done and o.status == 201]
            if back:
                recovered_at = min(o.sent + o.elapsed for o in back)
        # Then a steady second of successful writes.
        time.sleep(1.5)
        t_load_end = time.monotonic()
        load.stop()
        outcomes = sorted(load.snapshot(), key=lambda o: o.sent)
        ready_up = readyz()

        # -- what every request got --
        failed = [o for o in outcomes if o.error is not None or o.status not in (201, 503)]
        assert not failed, (
            f"requests got something other than 201 or 503 (connection errors, timeouts, 500s): "
            f"{_describe(failed, t0)}\ngunicorn log:\n{server.log_tail()}"
        )
        before = [o for o in outcomes if o.sent + o.elapsed < t_stop_begin]
        # Sent once PostgreSQL was down, answered before it was started again.
        outage = [
            o for o in outcomes if t_stop_done <= o.sent and o.sent + o.elapsed < t_start_begin
        ]
        unavailable = [o for o in outcomes if o.status == 503]
        assert before and all(o.status == 201 for o in before), _describe(
            [o for o in before if o.status != 201], t0
        )
        assert len(outage) >= 10, f"only {len(outage)} requests during the outage"
        not_503 = [o for o in outage if o.status != 503]
        assert not not_503, f"answered during the outage with: {_describe(not_503, t0)}"
        bad_shape = [
            o
            for o in unavailable
            if not is_error_shape(o.body, 503) or not (o.retry_after or "").isdigit()
        ]
        assert not bad_shape, (
            f"503s without the error shape or Retry-After: {_describe(bad_shape, t0)}"
        )
        slow = [o for o in unavailable if o.elapsed > 2.5]
        assert not slow, f"503s slower than 2.5 s (hung worker?): {_describe(slow, t0)}"

        # -- readiness follows the database --
        status, retry_after, body, took = ready_down
        assert status == 503 and is_error_shape(body, 503) and (retry_after or "").isdigit(), (
            ready_down
        )
        assert took <= 2.5, f"/readyz took {took:.2f} s during the outage"
        assert ready_up[0] == 200 and ready_up[2].get("status") == "ready", ready_up

        # -- recovery without a restart --
        assert server.process is not None and server.process.poll() is None, "gunicorn died"
        assert recovered_at is not None, (
            f"no 201 within 10 s of PostgreSQL being back: "
            f"{_describe([o for o in outcomes if o.sent >= t_start_done], t0)}\n{server.log_tail()}"
        )
        tail = [
            o for o in outcomes if recovered_at + 0.5 <= o.sent and o.sent + o.elapsed <= t_load_end
        ]
        assert tail and all(o.status == 201 for o in tail), _describe(
            [o for o in tail if o.status != 201], t0
        )

        # -- every write answered 201 is in the database, and nothing else --
        created = [o.task_id for o in outcomes if o.status == 201]
        assert all(isinstance(i, int) for i in created)
        engine = create_engine(pg.url)
        try:
            with engine.connect() as conn:
                stored = [
                    row[0]
                    for row in conn.execute(
                        text("SELECT id FROM tasks WHERE user_id = :u"), {"u": ALICE}
                    )
                ]
        finally:
            engine.dispose()
        lost = set(created) - set(stored)
        assert not lost, (
            f"{len(lost)} writes answered 201 are not in the database: {sorted(lost)[:20]}"
        )
        assert len(stored) == len(created), (
            f"{len(stored)} rows for {len(created)} answers 201 "
            f"(extra ids: {sorted(set(stored) - set(created))[:20]})"
        )

        max_503 = max((o.elapsed for o in unavailable), default=0.0)
        print(
            f"\nfault test: {len(outcomes)} writes, {len(created)} x 201, {len(unavailable)} x 503 "
            f"(max 503 latency {max_503:.3f} s), pg stop took {t_stop_done - t_stop_begin:.2f} s, "
            f"pg start took {t_start_done - t_start_begin:.2f} s, first 201 answered "
            f"{recovered_at - t_start_done:.3f} s after PostgreSQL was back, "
            f"/readyz during the outage {took:.3f} s"
        )
    finally:
        if load is not None:
            load.stop()
        if server is not None:
            server.stop()
        pg.destroy()


# --- graceful shutdown ----------------------------------------------------------------


@dataclass
class Attempt:
    sent: float  # seconds after SIGTERM (negative: before)
    done: float
    kind: str  # ok | refused | cut | status | connect-error
    detail: Any
    title: str
    request_id: str


def _raw_post(port: int, user_id: str, title: str, request_id: str) -> tuple[str, Any]:
    """One POST on a fresh connection (``Connection: close``), with http.client.

    ("refused", None) when connecting fails; ("ok", id) for a complete 2xx answer;
    ("cut", error) when the connection broke after it was established; ("status", ...) else.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        try:
            conn.connect()
        except ConnectionRefusedError:
            return "refused", None
        except OSError as exc:
            return "connect-error", repr(exc)
        headers = {
            **auth(user_id),
            "Content-Type": "application/json",
            "Connection": "close",
            "X-Request-ID": request_id,
        }
        try:
            conn.request(
                "POST", f"/api/{user_id}/tasks", body=json.dumps({"title": title}), headers=headers
            )
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return "cut", repr(exc)
        if 200 <= response.status < 300:
            try:
                return "ok", json.loads(data)["id"]
            except (ValueError, KeyError, TypeError):
                return "cut", f"incomplete body {data[:200]!r}"
        return "status", (response.status, data[:200])
    finally:
        conn.close()


@dataclass
class ShutdownRun:
    attempts: list[Attempt]
    slow_status: int | None
    slow_body: bytes
    returncode: int | None
    exit_after: float
    stored: dict[str, int]  # title -> id of this user's rows after the run
    logged_request_ids: set[str]
    log_tail: str


@pytest.fixture(scope="module")
def sigterm_run(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> ShutdownRun:
    """gunicorn under a load of writes gets SIGTERM while one request is mid-body.

    Six clients POST in a loop, each on a fresh connection. 1.5 s in, one more request
    sends its headers and half its body; SIGTERM goes to the master; a second later the
    rest of that body follows. The clients go on until connecting is refused three times
    in a row. Run once; the tests below judge different parts of it.
    """
    user_id = f"graceful-{uuid.uuid4()}"
    # LOG_LEVEL=info: the request log tells which requests reached the app.
    server = Gunicorn(
        database_url, tmp_path_factory.mktemp("graceful"), name="graceful", LOG_LEVEL="info"
    )
    server.start()
    raw: list[tuple[float, float, str, Any, str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        deadline = time.monotonic() + 30
        refused_in_a_row = 0
        for n in range(5000):
            if stop.is_set() or time.monotonic() > deadline or refused_in_a_row >= 3:
                return
            title, request_id = f"graceful {index}-{n}", uuid.uuid4().hex
            sent = time.monotonic()
            kind, detail = _raw_post(server.port, user_id, title, request_id)
            with lock:
                raw.append((sent, time.monotonic(), kind, detail, title, request_id))
            refused_in_a_row = refused_in_a_row + 1 if kind == "refused" else 0
            time.sleep(0.005)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(6)]
    slow: http.client.HTTPConnection | None = None
    slow_status: int | None = None
    slow_body = b""
    t_term = time.monotonic()
    returncode: int | None = None
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)

        body = json.dumps({"title": "in flight during SIGTERM"}).encode()
        slow = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
        slow.putrequest("POST", f"/api/{user_id}/tasks")
        for name, value in {
            **auth(user_id),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Connection": "close",
        }.items():
            slow.putheader(name, value)
        slow.endheaders(body[:10])
        time.sleep(0.3)  # a worker has it and waits for the rest of the body

        t_term = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(1)
        try:
            slow.send(body[10:])
            slow_response = slow.getresponse()
            slow_status, slow_body = slow_response.status, slow_response.read()
        except (OSError, http.client.HTTPException) as exc:
            slow_body = repr(exc).encode()

        assert server.process is not None
        try:
            returncode = server.process.wait(timeout=GRACEFUL_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            returncode = None
        exit_after = time.monotonic() - t_term
        for t in threads:
            t.join(timeout=15)
    finally:
        stop.set()
        if slow is not None:
            slow.close()
        server.stop()

    with app.app_context():
        rows = db.session.execute(
            text("SELECT title, id FROM tasks WHERE user_id = :u"), {"u": user_id}
        ).all()
        db.session.remove()
    logged = set()
    for line in server.log_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("request_id"):
            logged.add(entry["request_id"])
    attempts = [
        Attempt(sent - t_term, done - t_term, kind, detail, title, request_id)
        for sent, done, kind, detail, title, request_id in sorted(raw)
    ]
    return ShutdownRun(
        attempts,
        slow_status,
        slow_body,
        returncode,
        exit_after,
        {title: task_id for title, task_id in rows},
        logged,
        server.log_tail(40),
    )


def _totals(run: ShutdownRun) -> dict[str, int]:
    totals: dict[str, int] = {}
    for a in run.attempts:
        totals[a.kind] = totals.get(a.kind, 0) + 1
    return totals


def _show(attempts: list[Attempt], limit: int = 12) -> str:
    return "; ".join(
        f"sent {a.sent:+.3f}s, ended {a.done:+.3f}s after SIGTERM: {a.kind} {a.detail}"
        for a in attempts[:limit]
    )


def test_sigterm_finishes_in_flight_requests_and_exits_0(sigterm_run: ShutdownRun) -> None:
    run = sigterm_run
    totals = _totals(run)
    # The request mid-body at SIGTERM is finished, not dropped.
    assert run.slow_status == 201, (run.slow_status, run.slow_body, run.log_tail)
    assert json.loads(run.slow_body)["title"] == "in flight during SIGTERM"
    assert run.returncode == 0, f"gunicorn exited {run.returncode} after SIGTERM\n{run.log_tail}"
    assert run.exit_after < GRACEFUL_TIMEOUT, f"gunicorn took {run.exit_after:.1f} s to exit"

    assert totals.get("ok", 0) >= 20, totals
    refused = [a for a in run.attempts if a.kind == "refused"]
    assert refused, f"the listener was never closed: {totals}"
    assert all(a.sent >= 0 for a in refused), f"refused before SIGTERM: {_show(refused)}"
    odd = [a for a in run.attempts if a.kind in ("status", "connect-error")]
    assert not odd, _show(odd)

    # Every request the app started on (its request id was logged, or its row exists)
    # was answered in full.
    reached_app = [
        a for a in run.attempts if a.request_id in run.logged_request_ids or a.title in run.stored
    ]
    cut = [a for a in reached_app if a.kind != "ok"]
    assert not cut, f"requests cut while the app was serving them: {_show(cut)}\n{run.log_tail}"
    # Every write answered 2xx is in the database.
    lost = [a for a in run.attempts if a.kind == "ok" and run.stored.get(a.title) != a.detail]
    assert not lost, f"answered 2xx but not in the database: {_show(lost)}"
    print(f"\ngraceful shutdown: {totals}, exit 0 {run.exit_after:.2f} s after SIGTERM")


# --- scale-out ------------------------------------------------------------------------


def test_two_instances_share_rate_limits_and_data(
    app: Flask, database_url: str, workdir: Path
) -> None:
    require(redis_answers(), "Redis is not running on 127.0.0.1:6379")
    env = {
        "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        "RATELIMIT_ENABLED": "true",
        "RATE_LIMIT_PER_USER": "5 per minute",
        "RATE_LIMIT_PER_ADDRESS": "1000 per minute",
    }
    one = Gunicorn(database_url, workdir, name="instance1", **env)
    two = Gunicorn(database_url, workdir, name="instance2", **env)
    try:
        one.start()
        two.start()

        # One user's budget of 5 per minute is shared: 3 through one, 2 through two.
        limited = f"scale-{uuid.uuid4()}"
        headers = auth(limited)
        statuses = []
        for base in (one.base, one.base, one.base, two.base, two.base):
            r = requests.get(f"{base}/api/{limited}/tasks", headers=headers, timeout=5)
            statuses.append(r.status_code)
        assert statuses == [200] * 5, statuses
        for base in (one.base, two.base):
            r = requests.get(f"{base}/api/{limited}/tasks", headers=headers, timeout=5)
            assert_error(r, 429)
            assert (r.headers.get("Retry-After") or "").isdigit(), dict(r.headers)

        # What one instance writes, the other reads.
        writer = f"scale-{uuid.uuid4()}"
        created = []
        for n in range(2):  # 2 writes + 1 list + 2 reads: within this user's 5 per minute
            r = requests.post(
                f"{one.base}/api/{writer}/tasks",
                json={"title": f"via one {n}"},
                headers=auth(writer),
                timeout=5,
            )
            assert r.status_code == 201, r.text
            created.append(r.json())
        r = requests.get(
            f"{two.base}/api/{writer}/tasks",
            params={"sort": "created", "order": "asc"},
            headers=auth(writer),
            timeout=5,
        )
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()] == [t["id"] for t in created]
        for task in created:
            r = requests.get(
                f"{two.base}/api/{writer}/tasks/{task['id']}", headers=auth(writer), timeout=5
            )
            assert r.status_code == 200 and r.json() == task, r.text
    finally:
        one.stop()
        two.stop()
