"""Tasks API: the application factory."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint as FlaskBlueprint
from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from .api import Api
from .auth import EXTENSION_KEY, TokenAuthority
from .config import ConfigError
from .errors import register_error_handlers
from .limits import init_limits
from .logs import configure_logging, init_request_logging
from .models import compared_by_autogenerate, db
from .ops import bp as ops_bp
from .ops import init_metrics, migrations_head
from .web import init_browser_support

__all__ = ["ConfigError", "create_app", "migrate"]
__version__ = "1.0.0"

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
SWAGGER_UI_ASSETS = str(Path(flask_swagger_ui.__file__).resolve().parent / "dist")

API_DESCRIPTION = """\
A task list per user, for frontends that sign users in with
[Better Auth](https://www.better-auth.com).

Every route is under `/api/{user_id}` and needs `Authorization: Bearer <JWT>`
whose `sub` is that `user_id`. Use **Authorize** with a token
(`flask token create USER_ID` prints one for local use) to try the routes here.

Errors always have the shape
`{"code": 422, "status": "Unprocessable Entity", "message": "...", "errors": {...}}`.
"""

migrate = Migrate()


def _api_settings() -> dict[str, Any]:
    return {
        "API_TITLE": "Tasks API",
        "API_VERSION": __version__,
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        # Swagger UI is served from the pinned flask-swagger-ui package: no CDN.
        "OPENAPI_SWAGGER_UI_URL": "/static/swagger-ui/",
        "API_SPEC_OPTIONS": {
            "info": {"description": API_DESCRIPTION},
            # Relative: the API is wherever this document was fetched from.
            "servers": [{"url": "/", "description": "This service"}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "A Better Auth JWT whose `sub` is the path's user_id.",
                    }
                }
            },
            "security": [{"bearerAuth": []}],
        },
    }


def _engine_options(url: str, config: Mapping[str, Any]) -> dict[str, Any]:
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


IDLE_PING_SECONDS = 10.0


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
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.close()


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then the environment, then ``test_config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.json.sort_keys = False  # fields in the documented order
    app.json.compact = True
    # "//" in a path is a 404 like any unknown path, not a redirect built from the Host header.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=64 * 1024,
        SQLALCHEMY_ENGINE_OPTIONS={},
        **_api_settings(),
    )
    app.config.update(config_module.from_env())
    app.config.update(test_config or {})
    config_module.validate(app.config)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    if app.config["TRUSTED_PROXY_COUNT"]:
        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            app.instance_path, "tasks.db"
        )
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **_engine_options(url, app.config),
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    }

    app.extensions[EXTENSION_KEY] = TokenAuthority.from_config(app.config)

    app.config["MIGRATIONS_HEAD"] = migrations_head(MIGRATIONS_DIR)

    # after_request hooks run in reverse order of registration: the request log,
    # registered first, sees the final response.
    init_request_logging(app)
    db.init_app(app)
    if url.startswith("postgresql"):
        with app.app_context():
            ping_idle_connections(db.engine)
    migrate.init_app(
        app,
        db,
        directory=MIGRATIONS_DIR,
        render_as_batch=True,
        compare_type=True,
        include_object=compared_by_autogenerate,
    )
    if app.config["METRICS_ENABLED"]:
        init_metrics(app)

    app.register_blueprint(
        FlaskBlueprint(
            "swagger_ui_assets",
            __name__,
            static_folder=SWAGGER_UI_ASSETS,
            static_url_path="/static/swagger-ui",
        )
    )
    app.register_blueprint(ops_bp)
    api = Api(app)  # one per app: the document describes this app's configuration
    register_error_handlers(app)
    init_limits(app)
    init_browser_support(app)

    from .tasks import (
        USER_ID_PARAMETER,
        TaskIdConverter,
        blp,
        register_responses,
        task_id_param_schema,
    )
    from .tasks.schemas import TaskUpdateSchema

    app.url_map.converters["task_id"] = TaskIdConverter
    # marshmallow cannot say "at least one field"; the document should.
    api.spec.components.schema("TaskUpdate", {"minProperties": 1}, schema=TaskUpdateSchema)
    register_responses(api.spec)
    api.register_converter(TaskIdConverter, task_id_param_schema)
    api.register_blueprint(blp, parameters=[USER_ID_PARAMETER])

    from .cli import register_cli

    register_cli(app)
    return app
