"""Helpers shared by the ``test_beyond_*`` files (contract: docs/api.md, "A task", "The list",
"Conditional requests (ETags)").

No tests here. Everything goes through the HTTP API (black box) except where a test
has to put the clock somewhere else (an aged ``Idempotency-Key``, an old ``updated_at``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from conftest import ALICE, tasks_url  # noqa: F401 - re-exported for the beyond tests
from flask import Flask
from support import TIMESTAMP_RE, assert_error

from app.models import db

# A strong entity tag: a quoted string of etagc characters, no W/ prefix (RFC 9110 8.8.3).
STRONG_ETAG_RE = re.compile(r'^"[\x21\x23-\x7e\x80-\xff]*"$')


def utc_text(moment: datetime) -> str:
    """A datetime as the API writes it: ``2026-11-26T17:38:00.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    assert TIMESTAMP_RE.match(text), text
    return datetime.fromisoformat(text)


def assert_422(resp: Any, location: str, field: str) -> dict[str, Any]:
    """A 422 whose errors are keyed under ``location`` only, with ``field`` among them."""
    body = assert_error(resp, 422)
    errors = body.get("errors")
    assert isinstance(errors, dict) and list(errors) == [location], body
    assert isinstance(errors[location], dict), body
    assert errors[location].get(field), body  # a non-empty list (or dict of item errors)
    return body


def create(client: Any, headers: dict[str, str], user: str = ALICE, **fields: Any) -> dict:
    """Create a task through the API (title "A task" unless given); return its JSON."""
    fields.setdefault("title", "A task")
    resp = client.post(tasks_url(user), headers=headers, json=fields)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def list_ids(client: Any, headers: dict[str, str], query: Any = None, user: str = ALICE):
    """(ids in the order listed, X-Pagination total) of one list request that must be 200."""
    resp = client.get(tasks_url(user, query=query), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    total = json.loads(resp.headers["X-Pagination"])["total"]
    return [task["id"] for task in resp.get_json()], total


def set_task_times(app: Flask, task_id: int, **values: datetime) -> None:
    """Move a task's ``created_at``/``updated_at`` straight in the database."""
    from app.models import Task

    table = Task.__table__
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == task_id).values(**values))
        db.session.remove()


def db_scalar(app: Flask, sql: str, **params: Any) -> Any:
    with app.app_context():
        with db.engine.connect() as conn:
            value = conn.execute(sa.text(sql), params).scalar()
        db.session.remove()
    return value
