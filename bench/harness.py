"""Shared pieces of the benchmark scripts (run.py, scale.py, soak.py).

Everything here is bounded and cleans up after itself: servers run in their own process
groups and are terminated, and the throw-away database is dropped, from ``finally``
blocks that also run on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "bench.lua"
MIXED_LUA_SCRIPT = BENCH_DIR / "mixed.lua"
GUNICORN_CONF = REPO / "gunicorn.conf.py"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
LOOPBACK = "127.0.0.1"
WRK_THREADS = 2

# Settings a developer's environment (or a .env, which wsgi.py loads) might carry and that
# would make our tokens invalid or the run unlike production; empty means "unset" to the app.
NEUTRALISED_ENV = (
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_SECRET_ALGORITHMS",
    "BETTER_AUTH_URL",
    "BETTER_AUTH_JWKS_URL",
)

sys.path.insert(0, str(REPO))


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message is for the operator."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- interruption


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, handled like Ctrl-C so that every ``finally`` block runs."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Let cleanup finish even if Ctrl-C is pressed again meanwhile."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- tools


def venv_bin(name: str) -> str:
    """The tool from the interpreter's own environment (the project's .venv), else PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def ensure_wrk() -> str:
    """Return the path of wrk, installing the Debian package when running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        print(
            "wrk is not installed. Install the Debian package and run again:\n"
            "    sudo apt-get install -y wrk",
            file=sys.stderr,
        )
        raise SystemExit(2)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("wrk is not installed; running apt-get install -y wrk")
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=env, timeout=600).returncode != 0:
        log("apt-get install failed; refreshing the package lists and trying once more")
        subprocess.run(["apt-get", "update"], env=env, timeout=600)
        if subprocess.run(install, env=env, timeout=600).returncode != 0:
            raise BenchError("apt-get install -y wrk failed; install wrk and run again")
    path = shutil.which("wrk")
    if not path:
        raise BenchError("wrk is still not on PATH after apt-get install")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- database


@dataclass
class Database:
    """A fresh database on the given server, dropped by :meth:`drop`."""

    server_url: str
    name: str = field(default_factory=lambda: f"bench_{os.getpid()}")

    def _admin_dsn(self) -> str:
        parts = urlsplit(self.server_url)
        admin_db = parts.path.lstrip("/") or "postgres"
        return urlunsplit(parts._replace(path=f"/{admin_db}"))

    @property
    def url(self) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path=f"/{self.name}"))

    def _admin(self, sql: str) -> None:
        import psycopg2

        try:
            conn = psycopg2.connect(self._admin_dsn(), connect_timeout=5)
        except psycopg2.OperationalError as exc:
            # The server is not there: one line for the operator, exit status 2.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"cannot reach PostgreSQL at {self.server_url}: {reason}") from None
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name):
            raise BenchError(f"unsafe database name {self.name!r}")
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {self.name}")
        self.created = True

    def drop(self) -> None:
        if getattr(self, "created", False):
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            self.created = False
            log(f"dropped database {self.name}")

    def connect(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(self.url, connect_timeout=5)
        conn.autocommit = True
        return conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def mogrify(self, sql: str, params: Any) -> str:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                return cur.mogrify(sql, params).decode()
        finally:
            conn.close()

    def server_version(self) -> str:
        return str(self.execute("SHOW server_version")[0][0])


# Requests come as a browser frontend's do: from an allowed origin, with its Origin header.
BENCH_ORIGIN = "http://localhost:3000"
# The limiter stays on (its per-request cost is part of production) but cannot trip:
# wrk sends thousands of requests a second for one user from one address. Override with
# --env RATE_LIMIT_PER_USER=... or --env RATELIMIT_ENABLED=false.
BENCH_DEFAULT_ENV = {
    "RATE_LIMIT_PER_USER": "1000000 per second",
    "RATE_LIMIT_PER_ADDRESS": "1000000 per second",
    "CORS_ORIGINS": BENCH_ORIGIN,
}


def service_env(database_url: str, secret: str, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: "" for name in NEUTRALISED_ENV})
    env.update(BENCH_DEFAULT_ENV)
    env.update(
        {
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": secret,
            "HOST": LOOPBACK,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def new_secret() -> str:
    return secrets.token_urlsafe(36)  # 48 characters


def migrate(env: Mapping[str, str]) -> None:
    log("flask db upgrade")
    proc = subprocess.run(
        [venv_bin("flask"), "--app", "wsgi:app", "db", "upgrade"],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        raise BenchError(f"flask db upgrade failed:\n{proc.stdout}{proc.stderr}")


# --------------------------------------------------------------------------- gunicorn


def gunicorn_cli_args(args: argparse.Namespace) -> list[str]:
    """Command-line overrides: gunicorn gives them precedence over the config file."""
    extra: list[str] = []
    if args.worker_class:
        # gunicorn.conf.py sets worker_class = "gthread" and reads no variable for it.
        extra += ["-k", args.worker_class]
    if args.workers is not None:
        extra += ["-w", str(args.workers)]
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    if args.max_requests is not None:
        extra += ["--max-requests", str(args.max_requests)]
    return extra


def gunicorn_env(args: argparse.Namespace) -> dict[str, str]:
    """The variables gunicorn.conf.py reads (also passed as flags, which win)."""
    env: dict[str, str] = {}
    if args.workers is not None:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads is not None:
        env["GUNICORN_THREADS"] = str(args.threads)
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    for item in args.env or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BenchError(f"--env wants NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def add_gunicorn_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gunicorn (default: whatever gunicorn.conf.py says)")
    group.add_argument("--workers", type=int, help="worker count (WEB_CONCURRENCY and -w)")
    group.add_argument("--worker-class", help="worker class, e.g. sync or gthread (gunicorn -k)")
    group.add_argument(
        "--threads", type=int, help="threads per worker (GUNICORN_THREADS and --threads)"
    )
    group.add_argument(
        "--max-requests", type=int, help="gunicorn --max-requests (0 turns worker recycling off)"
    )
    group.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="extra environment for both servers (repeatable), e.g. DB_POOL_SIZE=8",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_SERVER_URL,
        help=f"PostgreSQL server for the throw-away database (default {DEFAULT_SERVER_URL})",
    )


SETTINGS_SHOWN = (
    "worker_class",
    "workers",
    "threads",
    "worker_connections",
    "keepalive",
    "timeout",
    "max_requests",
    "max_requests_jitter",
    "preload_app",
    "backlog",
)


def gunicorn_settings(env: Mapping[str, str], cli_args: Sequence[str]) -> dict[str, str]:
    """The settings gunicorn resolves from gunicorn.conf.py, the environment and the flags."""
    with tempfile.TemporaryDirectory(prefix="bench-config-") as scratch:
        proc = subprocess.run(
            [
                venv_bin("gunicorn"),
                "-c",
                str(GUNICORN_CONF),
                *cli_args,
                "--chdir",
                str(BENCH_DIR),
                "--print-config",
                "hello:app",
            ],
            cwd=REPO,
            env=server_env(env, Path(scratch)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    if proc.returncode != 0:
        raise BenchError(f"gunicorn --print-config failed:\n{proc.stdout}{proc.stderr}")
    settings = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in SETTINGS_SHOWN:
            settings[name.strip()] = value.strip()
    return settings


def describe_settings(settings: Mapping[str, str]) -> str:
    text = ", ".join(f"{key}={settings[key]}" for key in SETTINGS_SHOWN if key in settings)
    running_as = settings.get("worker_in_use")
    if running_as and running_as != settings.get("worker_class"):
        text += f" (gunicorn runs {running_as} workers)"
    return text


def note_worker_in_use(settings: dict[str, str], server: Server) -> None:
    running_as = server.worker_in_use()
    if running_as:
        settings["worker_in_use"] = running_as
        if running_as != settings.get("worker_class"):
            log(
                f"note: gunicorn runs {running_as} workers, not {settings.get('worker_class')} "
                "(a sync worker with threads > 1 becomes gthread; add --threads 1)"
            )


class Server:
    """A gunicorn process group started with the production config file."""

    def __init__(
        self,
        name: str,
        target: str,
        env: Mapping[str, str],
        cli_args: Sequence[str],
        chdir: Path | None = None,
        ready_path: str = "/",
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.ready_path = ready_path
        # Scratch space of this server: its log and, for prometheus_client's multiprocess
        # mode, its metrics folder, so nothing is left behind in /tmp.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.log_path = self.scratch / "server.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [venv_bin("gunicorn"), "-c", str(GUNICORN_CONF), *cli_args]
        if chdir is not None:
            command += ["--chdir", str(chdir)]
        command.append(target)
        self.env = {**server_env(env, self.scratch), "PORT": str(self.port), "HOST": LOOPBACK}
        log(f"starting {name}: {' '.join(command)} (port {self.port})")
        # Both streams go to a file, as a production log collector would take them.
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, self.log_path.stat().st_size - 20000))
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.proc.returncode} "
                    f"(log: {self.log_path}):\n{self.log_tail()}"
                )
            try:
                conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
                conn.request("GET", self.ready_path)
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def worker_in_use(self) -> str | None:
        """The worker class gunicorn actually runs, from its "Using worker:" log line
        (a sync worker with threads > 1 silently becomes gthread)."""
        try:
            with open(self.log_path, "rb") as fh:
                head = fh.read(200_000).decode(errors="replace")
        except OSError:
            return None
        match = re.search(r"Using worker: ([\w.:]+)", head)
        return match.group(1) if match else None

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid)

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds used so far by each current worker, and by the master together with
        every worker it has reaped (a recycled worker's time moves to the master's)."""
        seconds = {}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in (self.proc.pid, *self.worker_pids()):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = int(fields[11]) + int(fields[12])  # utime, stime
            if pid == self.proc.pid:
                used += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
            seconds[pid] = used / tick
        return seconds

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and its current workers."""
        return sum(self.cpu_by_pid().values())

    @staticmethod
    def cpu_used(before: Mapping[int, float], after: Mapping[int, float]) -> float:
        """CPU seconds the server spent between two ``cpu_by_pid`` snapshots, workers
        recycled in between (max_requests) included: their whole time is in the master's
        figure at the second snapshot, and what they had used by the first is taken off."""
        return max(0.0, sum(after.values()) - sum(before.values()))

    def wait_idle(self, timeout: float = 120, window: float = 0.5) -> float:
        """Wait until the server has worked off what wrk left queued when it stopped.

        A request still queued when wrk closes its connection is served anyway; without
        this wait it would run during (and slow down) the next measurement."""
        started = time.monotonic()
        deadline = started + timeout
        last, quiet = self.cpu_seconds(), 0
        while time.monotonic() < deadline:
            time.sleep(window)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - last < 0.05 * window else 0
            last = now
            if quiet >= 2:
                return time.monotonic() - started
        log(f"{self.name} still busy {timeout:.0f} s after wrk stopped; going on")
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within 15 s; killing its process group")
        # Workers of a dead master, if any, go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.log_file.close()
        log(f"stopped {self.name}")

    def cleanup(self, keep_log: bool) -> None:
        """Remove the scratch folder; after a failure keep the log's tail in bench/results/."""
        if keep_log:
            with contextlib.suppress(OSError):
                RESULTS_DIR.mkdir(exist_ok=True)
                kept = RESULTS_DIR / f"{self.name}-{self.proc.pid}.log"
                with open(self.log_path, "rb") as src:
                    src.seek(max(0, self.log_path.stat().st_size - 1_000_000))
                    kept.write_bytes(src.read())
                log(f"{self.name} log (last MB) kept in {kept}")
        shutil.rmtree(self.scratch, ignore_errors=True)


def server_env(env: Mapping[str, str], scratch: Path) -> dict[str, str]:
    """The service environment plus what any gunicorn started with the config file needs."""
    result = dict(env)
    # gunicorn.conf.py may name app modules (log formatters, hooks); with --chdir bench
    # (the hello app) the repository must still be importable.
    result["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        (scratch / "metrics").mkdir(exist_ok=True)
        result["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "metrics")
    return result


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers when ``pid`` is the master)."""
    children: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(x) for x in fh.read().split()]
        return sorted(children)
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Field 4 (ppid) comes after the parenthesised command name.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry))
    return sorted(children)


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def environment(args: argparse.Namespace) -> Iterator[tuple[Database, dict[str, str], list[str]]]:
    """A migrated throw-away database and the service environment; dropped on exit."""
    database = Database(args.database_url)
    try:
        log(f"creating database {database.name} on {args.database_url}")
        database.create()
        env = service_env(database.url, new_secret(), gunicorn_env(args))
        migrate(env)
        yield database, env, gunicorn_cli_args(args)
    finally:
        with uninterruptible():
            try:
                database.drop()
            except Exception as exc:  # noqa: BLE001 - report, never mask the original error
                log(f"could not drop database {database.name}: {exc}")


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    ok = False
    try:
        for server in servers:
            server.wait_ready()
        yield
        ok = True
    except KeyboardInterrupt:
        ok = True  # interrupted, not failed: nothing to keep
        raise
    finally:
        with uninterruptible():
            for server in servers:
                server.stop()
                server.cleanup(keep_log=not ok)


# --------------------------------------------------------------------------- the API


def token_for(secret: str, user_id: str, ttl: int = 12 * 3600) -> str:
    from app.auth import create_token

    return create_token(secret, user_id, ttl=ttl, email=f"{user_id}@bench.invalid", name=user_id)


class ApiClient:
    """Just enough HTTP for seeding, one keep-alive connection per thread."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or LOOPBACK, parts.port or 80

    def head_request(self, method: str, path: str, token: str) -> tuple[int, dict[str, str]]:
        """The status and headers of a request (its body read and dropped)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            return response.status, dict(response.getheaders())
        finally:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, Any]:
        own = conn is None
        conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            if own:
                conn.close()
        data = (
            json.loads(raw)
            if raw and response.getheader("Content-Type", "").startswith("application/json")
            else raw
        )
        return response.status, data

    def create_tasks(
        self, user_id: str, token: str, bodies: Sequence[Mapping[str, Any]], parallel: int = 8
    ) -> list[int]:
        """POST every body (in parallel) and return the new ids in the order given."""
        chunks = [list(enumerate(bodies))[i::parallel] for i in range(parallel)]

        def work(chunk: list[tuple[int, Mapping[str, Any]]]) -> list[tuple[int, int]]:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            made = []
            try:
                for index, body in chunk:
                    status, data = self.request("POST", f"/api/{user_id}/tasks", token, body, conn)
                    if status != 201:
                        raise BenchError(f"seeding POST for {user_id} answered {status}: {data!r}")
                    made.append((index, int(data["id"])))
            finally:
                conn.close()
            return made

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            results = [pair for part in pool.map(work, chunks) for pair in part]
        return [task_id for _, task_id in sorted(results)]


def main(
    run: Callable[[argparse.Namespace], int],
    parse_args: Callable[[list[str]], argparse.Namespace],
    argv: list[str] | None = None,
) -> int:
    """The scripts' entry point: exit 2 on a failed step, 130 on Ctrl-C or SIGTERM, after
    the ``finally`` blocks have stopped the servers and dropped the database."""
    install_signal_handlers()
    try:
        return run(parse_args(list(sys.argv[1:] if argv is None else argv)))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped and database dropped", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    statuses: dict[str, int]
    socket_errors: int
    errors: dict[str, int]
    # Share of CPU time the hypervisor gave to other guests during the run (/proc/stat
    # "steal"): on a shared VM this moves figures more than most code changes do.
    steal_pct: float | None = None
    # CPU time the server's processes (gunicorn master and workers) used per response,
    # in µs: a figure CPU steal moves much less than req/s.
    server_cpu_us: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def cpu_times() -> list[int] | None:
    """The machine's aggregate CPU counters (user, nice, system, idle, iowait, irq,
    softirq, steal, ...), or None where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8])
    return round(100 * delta[7] / total, 1) if total > 0 else None


RESULT_MARK = "BENCH_RESULT "
SOCKET_ERRORS_RE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
NON_2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    duration: float,
    lua_env: Mapping[str, str],
    script: Path = LUA_SCRIPT,
    threads: int = WRK_THREADS,
    timeout_s: float = 2,
    timeout_extra: float = 60,
) -> WrkResult:
    """Drive ``url`` with wrk and the Lua script; the script's ``done`` prints the figures."""
    threads = max(1, min(threads, connections))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, "BENCH_ORIGIN": BENCH_ORIGIN, **lua_env, "BENCH_THREADS": str(threads)}
    cpu_before = cpu_times()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=duration + timeout_extra)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {err.strip()}\n{out}")
    result = parse_wrk(out)
    result.steal_pct = steal_percent(cpu_before, cpu_times())
    return result


def parse_wrk(out: str) -> WrkResult:
    line = next((ln for ln in out.splitlines() if ln.startswith(RESULT_MARK)), None)
    if line is None:
        raise BenchError(f"wrk printed no {RESULT_MARK.strip()} line:\n{out}")
    data = json.loads(line[len(RESULT_MARK) :])
    errors = {k: int(data["errors"][k]) for k in ("connect", "read", "write", "timeout", "status")}
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    # wrk's own summary lines, as a cross-check of the Lua counters.
    text_socket = SOCKET_ERRORS_RE.search(out)
    if text_socket:
        socket_errors = max(socket_errors, sum(int(x) for x in text_socket.groups()))
    non2xx = int(data["non2xx"])
    text_status = NON_2XX_RE.search(out)
    if text_status:
        non2xx = max(non2xx, int(text_status.group(1)))
    duration_s = data["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in data.get("statuses", {}).items()}
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        non2xx=non2xx,
        statuses=statuses,
        socket_errors=socket_errors,
        errors=errors,
    )


def wrk_version(wrk: str) -> str:
    proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    first = (proc.stdout + proc.stderr).strip().splitlines()
    return first[0] if first else "unknown"


# --------------------------------------------------------------------------- output


def machine_note() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}); wrk, gunicorn and PostgreSQL on the same box, loopback"


def load_average() -> str:
    """1/5/15-minute load: anything well above 0 before a run means other work shares the box."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_json(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable as plain text too), numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in cells[1:]) if rows else False for i in range(len(headers))
    ]

    def fmt(row: Sequence[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        parts = [c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([fmt(cells[0]), rule, *(fmt(r) for r in cells[1:])])


def _is_number(text: str) -> bool:
    text = text.rstrip("×x%")
    if text in ("", "-", "n/a"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True
