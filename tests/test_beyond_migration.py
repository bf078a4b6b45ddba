"""The issue-14 migration: a database of revision 0002 holding tasks goes to head with its
data intact, comes back to 0002 intact, and goes to head again; and at head every key of
a user's data includes ``user_id`` (ready to shard by it, as docs/deploy.md plans).

Contract: docs/api.md, "A task" (the defaults; every task has its ``user_id``). Never the
session ``app`` fixture's database for the migration: a SQLite file of the test's own, or
a fresh PostgreSQL database created and dropped here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import flask_migrate
import sqlalchemy as sa
from conftest import TEST_SECRET
from flask import Flask
from support import assert_task
from test_beyond_support import tasks_url

from app.auth import create_token
from app.models import db

SEED_COLUMNS = ["id", "user_id", "title", "description", "completed", "created_at", "updated_at"]
ALICE, BOB = "mig-alice", "mig-bob"
# (owner, title, description, completed, created day, updated day)
ROWS = [
    (ALICE, "Buy milk", "Two litres", False, 1, 1),
    (ALICE, "Caf\u00e9 \u4e2d\u6587 \U0001f600", None, True, 2, 5),
    (BOB, "Bob's", "private", True, 3, 3),
    (ALICE, "  spaced  ", "", False, 4, 6),
    (BOB, "Bob's second", None, False, 5, 5),
    (ALICE, "Done too", "x" * 1000, True, 6, 9),
]


def _migrate(command: str, revision: str) -> None:
    """Upgrade or downgrade, then drop pooled connections that saw the old schema."""
    getattr(flask_migrate, command)(revision=revision)
    db.session.remove()
    db.engine.dispose()


def _stamp(day: int) -> str:
    """A timestamp as each database stores it from raw SQL: 2026-01-<day> 00:00 UTC."""
    if db.engine.dialect.name == "sqlite":
        return f"2026-01-{day:02d} 00:00:00.000000"  # naive UTC text, as the app writes it
    return f"2026-01-{day:02d} 00:00:00+00:00"


def _insert_seed_data() -> None:
    with db.engine.begin() as conn:
        for user in (ALICE, BOB):
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, created_at) "
                    "VALUES (:id, :email, :name, :now)"
                ),
                {"id": user, "email": f"{user}@example.com", "name": user, "now": _stamp(1)},
            )
        for owner, title, description, completed, created, updated in ROWS:
            conn.execute(
                sa.text(
                    "INSERT INTO tasks (user_id, title, description, completed, created_at, "
                    "updated_at) VALUES (:u, :t, :d, :c, :created, :updated)"
                ),
                {
                    "u": owner,
                    "t": title,
                    "d": description,
                    "c": completed,
                    "created": _stamp(created),
                    "updated": _stamp(updated),
                },
            )


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


def _seed_rows() -> list[dict[str, Any]]:
    """The seed's columns of every task, straight from the database, comparable across DBs."""
    with db.engine.connect() as conn:
        table = sa.Table("tasks", sa.MetaData(), autoload_with=conn)
        rows = conn.execute(
            sa.select(*(table.c[name] for name in SEED_COLUMNS)).order_by(table.c.id)
        ).mappings()
        result = []
        for row in rows:
            item = {name: _normal(row[name]) for name in SEED_COLUMNS}
            item["completed"] = bool(item["completed"])
            result.append(item)
    return result


def _headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(TEST_SECRET, user)}"}


def _expected_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "title": row["title"],
        "description": row["description"],
        "completed": row["completed"],
        "priority": "medium",
        "due_date": None,
        "tags": [],
        "created_at": row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "updated_at": row["updated_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _check_through_api(app: Flask, rows: list[dict[str, Any]]) -> None:
    """Every migrated task reads back with the new fields at their defaults."""
    client = app.test_client()
    for row in rows:
        resp = client.get(tasks_url(row["user_id"], row["id"]), headers=_headers(row["user_id"]))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = assert_task(resp.get_json())  # completed_at set exactly for completed tasks
        # (Where migration 0004 puts them is tests/test_lists_migration.py's to check.)
        later = {"completed_at", "list_id", "parent_id", "position"}
        assert {k: v for k, v in body.items() if k not in later} == _expected_json(row)
    for user in (ALICE, BOB):
        mine = [row for row in rows if row["user_id"] == user]
        for status, wanted in (("all", mine), ("completed", [r for r in mine if r["completed"]])):
            resp = client.get(
                tasks_url(user, query={"status": status, "sort": "created", "order": "asc"}),
                headers=_headers(user),
            )
            assert resp.status_code == 200
            assert [t["id"] for t in resp.get_json()] == [r["id"] for r in wanted]
            assert resp.get_json()[0]["user_id"] == user
            assert json.loads(resp.headers["X-Pagination"])["total"] == len(wanted)
        resp = client.get(tasks_url(user, query={"priority": "medium"}), headers=_headers(user))
        assert len(resp.get_json()) == len(mine)
        resp = client.get(tasks_url(user, query={"tag": "anything"}), headers=_headers(user))
        assert resp.get_json() == []


def _schema_at_0002() -> None:
    inspector = sa.inspect(db.engine)
    assert set(inspector.get_table_names()) == {"users", "tasks", "alembic_version"}
    assert {c["name"] for c in inspector.get_columns("tasks")} == set(SEED_COLUMNS)
    assert inspector.get_pk_constraint("tasks")["constrained_columns"] == ["id"]
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0002"


def test_upgrade_from_0002_keeps_tasks_and_downgrade_restores_them(empty_app: Flask) -> None:
    app = empty_app
    with app.app_context():
        _migrate("upgrade", "0002")
        _insert_seed_data()
        original = _seed_rows()
        assert len(original) == len(ROWS)

        _migrate("upgrade", "head")
        assert _seed_rows() == original
        _check_through_api(app, original)

        # A task written at head survives the way down too (without its new fields).
        client = app.test_client()
        body = {"title": "at head", "priority": "high", "tags": ["a"], "completed": True}
        body["due_date"] = "2030-01-01T00:00:00Z"
        created = client.post(tasks_url(ALICE), headers=_headers(ALICE), json=body)
        assert created.status_code == 201, created.get_data(as_text=True)
        with_head_task = _seed_rows()
        assert [row["id"] for row in with_head_task][-1] == created.get_json()["id"]

        _migrate("downgrade", "0002")
        _schema_at_0002()
        assert _seed_rows() == with_head_task
        # The 0002 counters are still right: they count every task.
        with db.engine.connect() as conn:
            counts = dict(conn.execute(sa.text("SELECT id, task_count FROM users")).tuples().all())
        assert counts == {ALICE: 5, BOB: 2}

        _migrate("upgrade", "head")
        assert _seed_rows() == with_head_task
        _check_through_api(app, with_head_task)  # the task made at head lost its new fields


def test_ids_are_never_reused_after_the_upgrade(empty_app: Flask) -> None:
    app = empty_app
    with app.app_context():
        _migrate("upgrade", "0002")
        _insert_seed_data()
        given = {row["id"] for row in _seed_rows()}
        _migrate("upgrade", "head")

        client = app.test_client()
        headers = _headers(BOB)
        for _ in range(3):
            resp = client.post(tasks_url(BOB), headers=headers, json={"title": "new"})
            assert resp.status_code == 201
            assert resp.get_json()["id"] > max(given)
            given.add(resp.get_json()["id"])
        for _ in range(3):
            highest = max(given)
            owner = next(r["user_id"] for r in _seed_rows() if r["id"] == highest)
            deleted = client.delete(tasks_url(owner, highest), headers=_headers(owner))
            assert deleted.status_code == 204
            resp = client.post(tasks_url(ALICE), headers=_headers(ALICE), json={"title": "again"})
            assert resp.status_code == 201
            assert resp.get_json()["id"] > max(given), (resp.get_json()["id"], sorted(given))
            given.add(resp.get_json()["id"])
        # Clearing completed tasks (the highest ids among them) does not free ids either.
        client.put(tasks_url(ALICE, max(given)), headers=_headers(ALICE), json={"completed": True})
        cleared = client.delete(tasks_url(ALICE, query="status=completed"), headers=_headers(ALICE))
        assert cleared.status_code == 200
        resp = client.post(tasks_url(ALICE), headers=_headers(ALICE), json={"title": "last"})
        assert resp.get_json()["id"] > max(given)


# --------------------------------------------------------------------------- ready to shard

USER_DATA_TABLES = {"tasks", "lists", "idempotency_keys", "task_tags", "deletions"}


def test_every_primary_and_unique_key_of_user_data_includes_user_id(app: Flask) -> None:
    with app.app_context():
        inspector = sa.inspect(db.engine)
        tables = set(inspector.get_table_names()) - {"users", "alembic_version"}
        assert USER_DATA_TABLES <= tables, tables
        sqlite = db.engine.dialect.name == "sqlite"
        for table in sorted(tables):
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            if sqlite and table in ("tasks", "lists"):
                # SQLite numbers only a lone INTEGER PRIMARY KEY (README: the one place a
                # key leaves user_id out; SQLite, the local default, is never distributed).
                assert pk == ["id"], pk
            else:
                assert "user_id" in pk, (table, pk)
            for unique in inspector.get_unique_constraints(table):
                assert "user_id" in unique["column_names"], (table, unique)
            for index in inspector.get_indexes(table):
                if index.get("unique"):
                    assert "user_id" in index["column_names"], (table, index)
        db.session.remove()
