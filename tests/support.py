"""Helpers the test modules share; no fixtures (those are in conftest.py) and no tests.

- The contract's error shape (``assert_error``, ``assert_401``) and a task as the API
  writes it (``assert_task``): docs/api.md, "Errors", "Authentication" and "A task".
- The environment of a process a test starts (``service_env``): built from the names the
  service reads (``config_names()``, recorded from ``app.config.from_env``) and those
  gunicorn.conf.py reads (``GUNICORN_NAMES``), never inherited from the developer's shell
  or ``.env``.
- The real gunicorn (``Gunicorn``), and the output of a process a test waits on
  (``ProcessOutput``).

Importing this module imports no part of the app: conftest.py clears the environment with
these names before the app's libraries read it (prometheus_client reads
PROMETHEUS_MULTIPROC_DIR when it is imported).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnop"

# --------------------------------------------------------------------------- the error shape

ERROR_KEYS = {"code", "status", "message", "errors"}
# The reason phrase of every status the API answers (docs/api.md, "Errors"), as the service
# has always spelled them: fixed, not the standard library's, whose phrases change with the
# Python version (3.13 renamed 413 and 422).
REASON_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def _status_type_text(response: Any) -> tuple[int, str, str]:
    """Status, media type and body text of a Flask test response, a ``requests`` response
    or a raw one (``status``, lower-case ``headers``, ``body`` bytes: tests/test_framing.py)."""
    if hasattr(response, "get_data"):
        return response.status_code, response.mimetype, response.get_data(as_text=True)
    if hasattr(response, "status_code"):
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.status_code, media, response.text
    media = response.headers.get("content-type", "").split(";")[0].strip()
    return response.status, media, response.body.decode("utf-8", "replace")


def assert_error(
    response: Any, code: int, status: str | None = None, *, errors: bool | None = None
) -> dict[str, Any]:
    """The contract's error shape (docs/api.md, "Errors"): a JSON response whose body
    :func:`assert_error_body` accepts, and never an HTML page or a traceback. Returns the
    body."""
    actual, media, text = _status_type_text(response)
    assert actual == code, (actual, text[:1000])
    assert media == "application/json", (media, text[:1000])
    lowered = text.lower()
    assert "<html" not in lowered and "<!doctype" not in lowered, text[:1000]
    assert "traceback" not in lowered and 'file "' not in lowered, text[:1000]
    return assert_error_body(json.loads(text), code, status, errors=errors)


def assert_error_body(
    body: Any, code: int, status: str | None = None, *, errors: bool | None = None
) -> dict[str, Any]:
    """``{"code", "status", "message"[, "errors"]}``: ``code`` the HTTP status (an int),
    ``status`` its reason phrase (``REASON_PHRASES``; ``status`` must say it when given), a
    message that is not blank. ``errors``: True, a non-empty mapping is required; False,
    absent; None, either."""
    assert isinstance(body, dict), body
    assert set(body) <= ERROR_KEYS, body
    assert type(body["code"]) is int and body["code"] == code, body
    assert body["status"] == REASON_PHRASES[code], body
    if status is not None:
        assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"].strip(), body
    if errors is True:
        assert isinstance(body.get("errors"), dict) and body["errors"], body
    elif errors is False:
        assert "errors" not in body, body
    return body


def is_error_shape(body: Any, code: int) -> bool:
    """:func:`assert_error_body` as a predicate, for filtering many answers at once."""
    try:
        assert_error_body(body, code)
    except (AssertionError, KeyError, TypeError):
        return False
    return True


def assert_401(response: Any, *, invalid: bool | None = None) -> dict[str, Any]:
    """401 in the error shape (no ``errors``) with an RFC 6750 ``Bearer`` challenge on one
    line; returns the body. ``invalid``: True, the challenge must say
    ``error="invalid_token"``; False, it names no error (no credentials were offered);
    None, not checked."""
    body = assert_error(response, 401, errors=False)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    assert "\n" not in challenge and "\r" not in challenge, challenge
    if invalid is True:
        assert 'error="invalid_token"' in challenge, challenge
    elif invalid is False:
        assert "error=" not in challenge, challenge
    return body


def assert_invalid_token(response: Any) -> dict[str, Any]:
    """``assert_401`` for credentials that were offered and refused: the challenge says
    ``error="invalid_token"``."""
    return assert_401(response, invalid=True)


# --------------------------------------------------------------------------- tokens

DROP = object()  # a claim's override that leaves the claim out


def with_claims(payload: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with ``overrides`` applied: each sets a claim, or removes it (DROP)."""
    for name, value in overrides.items():
        if value is DROP:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


def b64url(data: bytes | str) -> str:
    """Unpadded base64url, as a JWS's parts are written."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- a task

# Every field, in the order every task is written in (docs/api.md, "A task").
TASK_FIELDS = [
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "tags",
    "list_id",
    "parent_id",
    "position",
    "completed_at",
    "created_at",
    "updated_at",
]
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def assert_task(body: Any, **expected: Any) -> dict[str, Any]:
    """A task as the API writes it (docs/api.md, "A task"): every field, in order, each
    well formed; and the fields in ``expected`` have those values. Returns the task."""
    assert isinstance(body, dict), body
    assert list(body) == TASK_FIELDS, list(body)
    assert type(body["id"]) is int
    assert body["priority"] in ("low", "medium", "high"), body
    assert isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"]), body
    for key in ("due_date", "completed_at"):
        assert body[key] is None or TIMESTAMP_RE.match(body[key]), (key, body)
    for key in ("created_at", "updated_at"):
        assert TIMESTAMP_RE.match(body[key]), (key, body)
    assert (body["completed_at"] is not None) is body["completed"], body
    assert type(body["list_id"]) is int, body
    assert body["parent_id"] is None or type(body["parent_id"]) is int, body
    assert body["parent_id"] != body["id"], body
    assert type(body["completed"]) is bool, body
    assert isinstance(body["position"], str) and 0 < len(body["position"]) <= 64, body
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    return body


# --------------------------------------------------------------------------- the environment

# Every name gunicorn.conf.py reads from the environment (tests/test_factory.py checks this
# list against the file).
GUNICORN_NAMES = frozenset(
    {
        "HOST",
        "PORT",
        "WEB_CONCURRENCY",
        "GUNICORN_THREADS",
        "GUNICORN_WORKER_CLASS",
        "FORWARDED_ALLOW_IPS",
        "PROMETHEUS_MULTIPROC_DIR",
        "LOG_LEVEL",
        "LOG_FORMAT",
    }
)
SHIPPED_WORKERS = 2  # gunicorn.conf.py: WEB_CONCURRENCY's default (checked with the names)
# Not the service's, but no process of a test's inherits them either: the suite's own
# database, gunicorn's arguments from the environment, and prometheus_client's old name
# for PROMETHEUS_MULTIPROC_DIR.
NOT_INHERITED = frozenset({"TEST_DATABASE_URL", "GUNICORN_CMD_ARGS", "prometheus_multiproc_dir"})


class RecordingEnv(dict):  # type: ignore[type-arg]
    """An empty environment that remembers which names are looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.names.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.names.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.names.add(str(key))
        return super().__contains__(key)


@functools.cache
def config_names() -> frozenset[str]:
    """Every name ``app.config.from_env`` reads: the service's settings."""
    from app.config import from_env  # here, not at the top: see the module's docstring

    recorder = RecordingEnv()
    from_env(recorder)
    return frozenset(recorder.names)


def service_names() -> frozenset[str]:
    """Every name the service or gunicorn.conf.py reads."""
    return config_names() | GUNICORN_NAMES


def service_env(base: Mapping[str, str] | None = None, **settings: str) -> dict[str, str]:
    """The environment for a process that runs the service (gunicorn, ``import wsgi``):
    ``base`` (``os.environ`` by default) without any name the service or gunicorn.conf.py
    reads (nor ``NOT_INHERITED``), with ``.env`` never loaded (python-dotenv honours
    ``PYTHON_DOTENV_DISABLED``), then ``settings``. So only ``settings`` and the defaults
    count: neither the developer's shell nor a ``.env`` can change what a test sees."""
    dropped = service_names() | NOT_INHERITED
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in dropped}
    env["PYTHON_DOTENV_DISABLED"] = "1"
    env.update(settings)
    return env


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_name = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, ...
        except (OSError, IndexError):
            continue
        if int(after_name[1]) == pid:
            children.add(int(stat.parent.name))
    return children


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def redis_answers() -> bool:
    """Redis answers PING on REDIS_HOST:REDIS_PORT."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


GUNICORN_CMD = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
GRACEFUL_TIMEOUT = 30  # gunicorn.conf.py's graceful_timeout
START_TIMEOUT = 30  # seconds for gunicorn to answer /healthz with every worker forked


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` from the repository, on a free loopback
    port, in a session (process group) of its own, its output in ``log``.

    The worker model is what ships (gunicorn.conf.py's defaults: sync workers, two).
    The environment is :func:`service_env`'s: ``DATABASE_URL``, the suite's secret, rate
    limits off, JSON log lines at WARNING and up, multiprocess metrics in ``metrics_dir``,
    then ``settings``. ``start()`` returns once /healthz answers and every worker is forked;
    ``stop()`` sends SIGTERM, and SIGKILL to the group if anything lingers; it can then be
    started again. As a context manager: started, and stopped at the end.
    """

    def __init__(self, database_url: str, folder: Path, name: str = "gunicorn", **settings: str):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log = folder / f"{name}.log"
        self.metrics_dir = folder / f"{name}-metrics"
        self.env = service_env(
            DATABASE_URL=database_url,
            BETTER_AUTH_SECRET=TEST_SECRET,
            HOST=self.host,
            PORT=str(self.port),
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            RATELIMIT_ENABLED="false",
            LOG_LEVEL="WARNING",
            LOG_FORMAT="json",
        )
        self.env.update(settings)
        self.workers = int(self.env.get("WEB_CONCURRENCY", SHIPPED_WORKERS))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "gunicorn was not started"
        return self.process.pid

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Gunicorn:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                GUNICORN_CMD,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"gunicorn exited with {self.process.returncode} before answering /healthz:\n"
                    + self.log_tail()
                )
            try:
                up = requests.get(f"{self.base}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                up = False
            # Every worker there, so that none misses the start of a test's traffic.
            forked = not Path("/proc").is_dir() or len(child_pids(self.pid)) >= self.workers
            if up and forked:
                return self
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"gunicorn did not answer /healthz with {self.workers} workers within "
                    f"{START_TIMEOUT} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM to the group (in-flight requests get the graceful timeout), then SIGKILL
        to whatever is left in it (workers of a master that died). The exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=GRACEFUL_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        return self.process.returncode

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class ProcessOutput:
    """A text-mode process's stdout, copied as it comes (by a thread) into ``lines``."""

    def __init__(self, process: subprocess.Popen[str], name: str) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(process,), name=name, daemon=True)
        self.thread.start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, ready: Callable[[str], bool], timeout: float) -> str:
        """The first line (of those not yet waited through) that ``ready`` accepts.
        TimeoutError after ``timeout`` seconds; EOFError when the output ends first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no such line within {timeout} s")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError("the output ended")
            if ready(line):
                return line

    def tail(self, count: int) -> str:
        return "".join(self.lines[-count:])
