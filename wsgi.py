"""WSGI entry point: ``gunicorn wsgi:app`` (and ``flask --app wsgi ...``)."""

import sys

from dotenv import load_dotenv

# A local .env fills in what the environment does not set; real variables win.
load_dotenv()

from app import ConfigError, create_app  # noqa: E402

try:
    app = create_app()
except ConfigError as exc:
    # One line, no traceback: the service refuses to start rather than run unsafely.
    sys.exit(f"tasks-api: refusing to start: {exc}")
