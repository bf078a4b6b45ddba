"""The database connection: engine settings per database, pooled connections that are
checked when they sat idle, and the two ways a request talks to the database.

Each request uses one pooled connection in autocommit mode: a single statement is
atomic on its own, and reads and single-statement writes spend no BEGIN/COMMIT round
trips. Writes of more than one statement ask for a real transaction (``transaction()``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from .models import db

TRANSACTION_LEVELS = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}
# Several reads that must see one moment: PostgreSQL's snapshot for the whole transaction;
# SQLite (WAL) reads one snapshot in any transaction.
SNAPSHOT_LEVELS = {"postgresql": "REPEATABLE READ", "sqlite": "SERIALIZABLE"}
IDLE_PING_SECONDS = 10.0


def engine_options(url: str, config: Mapping[str, Any]) -> dict[str, Any]:
    # Autocommit: a single statement needs no BEGIN/COMMIT round trips; the few
    # multi-statement writes (and migrations) ask for a real transaction.
    if url.startswith("sqlite"):
        # Wait for a competing writer instead of failing with "database is locked".
        return {"connect_args": {"timeout": 10}, "isolation_level": "AUTOCOMMIT"}
    options: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_recycle": 1800,
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        "pool_timeout": 5,
    }
    if url.startswith("postgresql"):
        options["connect_args"] = {
            "connect_timeout": config["DB_CONNECT_TIMEOUT"],
            "options": f"-c statement_timeout={config['DB_STATEMENT_TIMEOUT_MS']} -c timezone=UTC",
            "application_name": "tasks-api",
        }
    return options


def ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    A connection in steady use is known to be alive; one idle for IDLE_PING_SECONDS may
    have been closed by a database restart, a failover or a proxy's idle timeout. A failed
    ping raises DisconnectionError, on which the pool discards the connection and opens a
    new one (SQLAlchemy's documented pessimistic disconnect handling, on its pool events).
    """

    # Why not pool_pre_ping: its round trip on every checkout was a large share of a
    # request's time (bench/README.md, "What we keep and why").
    @event.listens_for(engine, "checkin")
    def _mark_idle(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:
            raise DisconnectionError("idle connection is dead") from exc


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it
        # The tree's rules are triggers that fire each other, level by level (migration 0006).
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.close()


def init_database(app: Flask) -> None:
    """Bind ``db`` to the configured database (a SQLite file in the instance folder when
    none is configured), with the engine settings of its kind."""
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            app.instance_path, "tasks.db"
        )
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(url, app.config),
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }
    db.init_app(app)
    if url.startswith("postgresql"):
        with app.app_context():
            ping_idle_connections(db.engine)


@contextmanager
def connection() -> Iterator[Connection]:
    """One pooled connection for the request (the engine is in autocommit mode)."""
    with db.engine.connect() as conn:
        yield conn


@contextmanager
def transaction(levels: Mapping[str, str] = TRANSACTION_LEVELS) -> Iterator[Connection]:
    """A real transaction: on an autocommit connection, begin() alone would not be one."""
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level=levels[conn.dialect.name])
        with conn.begin():
            yield conn


def snapshot() -> Any:
    """A read-only transaction whose statements all see the database at one moment."""
    return transaction(SNAPSHOT_LEVELS)
