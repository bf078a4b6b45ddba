"""Tasks API: the application factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flask_swagger_ui
import orjson
from flask import Blueprint as FlaskBlueprint
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from .api import USER_ID_PARAMETER, Api
from .auth import EXTENSION_KEY, TokenAuthority
from .config import ConfigError
from .database import init_database
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


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, written by orjson: compact, fields in the documented (insertion)
    order. Reading stays the standard library's."""

    # Why: orjson writes a page of tasks in a fraction of json's time (bench/README.md).
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # Non-string keys (a list item's index in a 422's field errors) as strings, as json.
        return orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS).decode()


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then the environment, then ``test_config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = JSONProvider(app)
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

    app.extensions[EXTENSION_KEY] = TokenAuthority.from_config(app.config)

    app.config["MIGRATIONS_HEAD"] = migrations_head(MIGRATIONS_DIR)

    # after_request hooks run in reverse order of registration: the request log,
    # registered first, sees the final response.
    init_request_logging(app)
    init_database(app)
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

    from . import changes, lists, tasks

    # marshmallow cannot say "at least one field"; the document should.
    for name, schema in (("TaskUpdate", tasks.TASK), ("TaskListUpdate", lists.LIST)):
        api.spec.components.schema(name, {"minProperties": 1}, schema=schema.update_schema)
    app.url_map.converters["list_id"] = lists.ListIdConverter
    api.register_converter(lists.ListIdConverter, lists.list_id_param_schema)
    changes.document(api.spec)
    for blueprint in (tasks.blp, lists.blp, changes.blp):
        api.register_blueprint(blueprint, parameters=[USER_ID_PARAMETER])

    from .cli import register_cli

    register_cli(app)
    return app
