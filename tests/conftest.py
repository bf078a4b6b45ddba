"""Shared fixtures.

The database is a SQLite file by default and PostgreSQL when TEST_DATABASE_URL
is set; either way the schema comes from the real migrations (``flask db upgrade``).
Set TASKS_REQUIRE_ALL=1 (as .ci/run does) to turn every "part missing" skip into a failure.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url
from support import GUNICORN_NAMES, TEST_SECRET, config_names
from werkzeug.serving import make_server

# Tests configure the app explicitly; the developer's shell must not change what they see.
# gunicorn.conf.py's names go first: PROMETHEUS_MULTIPROC_DIR must be gone before the app's
# import below imports prometheus_client, which reads it then. Then every name
# app.config.from_env reads (config_names() imports the app to record them).
for _name in GUNICORN_NAMES:
    os.environ.pop(_name, None)
for _name in config_names():
    os.environ.pop(_name, None)

from app import create_app  # noqa: E402
from app.auth import Identity, create_token  # noqa: E402
from app.config import normalize_database_url  # noqa: E402
from app.models import User, db  # noqa: E402
from app.tasks import queries  # noqa: E402
from app.tasks.schemas import task_json  # noqa: E402

ALICE = "alice-3J9xQ2mN8pL4vR7sT1wY6zA0bC5d"
BOB = "bob-Q2mN8pL4vR7sT1wY6zA0bC5dE2fk3J9"


def require(condition: bool, reason: str) -> None:
    """Skip when a part the test needs is missing, or fail under TASKS_REQUIRE_ALL=1."""
    if condition:
        return
    if os.environ.get("TASKS_REQUIRE_ALL") == "1":
        pytest.fail(f"required part missing (TASKS_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "tasks-test.db")


def tasks_url(user: str = ALICE, task_id: Any = None, suffix: str = "", query: Any = None) -> str:
    """``/api/{user}/tasks[/{task_id}]{suffix}[?query]``; ``query`` a string or a mapping."""
    url = f"/api/{user}/tasks" + ("" if task_id is None else f"/{task_id}") + suffix
    if query:
        url += "?" + (query if isinstance(query, str) else urlencode(query, doseq=True))
    return url


def lists_url(user: str = ALICE, list_id: Any = None, suffix: str = "") -> str:
    """``/api/{user}/lists[/{list_id}]{suffix}``; ``list_id`` may be ``"default"``."""
    return f"/api/{user}/lists" + ("" if list_id is None else f"/{list_id}") + suffix


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """make_app reconfigures the root logger (level, handler on this test's stderr): undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def make_app(database_url: str, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        # The suite sends many requests as one user; tests of the limits turn them on.
        "RATELIMIT_ENABLED": False,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def empty_app(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database nobody else uses (a new SQLite file, or a PostgreSQL
    database of the test module's own beside the session's), removed afterwards."""
    module = request.module.__name__.rpartition(".")[2]
    if not database_url.startswith("postgresql"):
        url, admin, quoted = "sqlite:///" + str(tmp_path / f"{module}.db"), None, ""
    else:
        server_url = make_url(database_url)
        admin = sa.create_engine(
            server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        name = f"{server_url.database}_{module}"
        quoted = admin.dialect.identifier_preparer.quote(name)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))  # a killed run's leftover
            conn.execute(text(f"CREATE DATABASE {quoted}"))
        url = server_url.set(database=name).render_as_string(hide_password=False)
    app = make_app(url)
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            admin.dispose()


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = make_app(database_url)
    with app.app_context():
        downgrade(revision="base")  # a reused PostgreSQL test database starts empty too
        upgrade()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in ("task_tags", "idempotency_keys", "tasks", "lists", "deletions", "users"):
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def extra_app(app: Flask, database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build more apps: ``make_app`` with overrides, on the session's migrated database
    unless ``url`` names another; their engines are disposed of afterwards."""
    built: list[Flask] = []

    def build(url: str | None = None, **overrides: Any) -> Flask:
        new = make_app(url or database_url, **overrides)
        built.append(new)
        return new

    yield build
    for other in built:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def token() -> Callable[..., str]:
    def make(user_id: str = ALICE, **kwargs: Any) -> str:
        return create_token(TEST_SECRET, user_id, **kwargs)

    return make


@pytest.fixture
def auth_headers(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def make(user_id: str = ALICE, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(user_id, **kwargs)}"}

    return make


@pytest.fixture
def alice(auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers(ALICE)


@pytest.fixture
def bob(auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers(BOB)


@pytest.fixture
def make_task(app: Flask) -> Callable[..., dict[str, Any]]:
    """Insert a task directly (not through the API) and return it as a dict."""

    def make(user_id: str = ALICE, title: str = "A task", **fields: Any) -> dict[str, Any]:
        with app.app_context():
            row = queries.create_task(Identity(user_id), {"title": title, **fields})
        return task_json(row)

    return make


def stored_user(app: Flask, user_id: str) -> dict[str, Any] | None:
    """The ``users`` row of ``user_id`` (id, email, name), straight from the database; None
    when there is none."""
    with app.app_context():
        user = db.session.get(User, user_id)
        row = None if user is None else {"id": user.id, "email": user.email, "name": user.name}
        db.session.remove()
    return row


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app behind a real threaded HTTP server on a free loopback port."""
    with serving(app) as url:
        yield url


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` from a threaded werkzeug server on a free loopback port; yield its URL.
    Errors are answered as 500s (as in production) rather than raised into the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.config["PROPAGATE_EXCEPTIONS"] = None


# --------------------------------------------------------------------------- concurrent requests

# Seconds per request in the concurrency tests: far above SQLite's 10 s busy timeout.
CONCURRENT_TIMEOUT = 30


def all_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call in its own thread, released together; return the responses in order."""
    barrier = threading.Barrier(len(calls), timeout=CONCURRENT_TIMEOUT)

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=2 * CONCURRENT_TIMEOUT) for future in futures]


def describe(responses: list[requests.Response]) -> str:
    """Statuses and the start of each body, for an assertion's message."""
    return "; ".join(f"{r.status_code} {r.text[:200]!r}" for r in responses)


# --------------------------------------------------------------------------- real gunicorn


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the migrations' head, as ``flask db upgrade`` does."""
    migrator = make_app(url)
    with migrator.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def migrated_database(request: pytest.FixtureRequest, database_url: str, folder: Path) -> str:
    """A migrated database for a gunicorn of a test's own (support.Gunicorn): a new SQLite
    file in ``folder``, or the session's PostgreSQL database (migrated by the ``app``
    fixture)."""
    if not database_url.startswith("sqlite"):
        request.getfixturevalue("app")
        return database_url
    url = "sqlite:///" + str(folder / "gunicorn.db")
    migrate(url)
    return url
