"""Migration 0004 on a database that holds tasks: every user's tasks land in their default
list, in the order they were created, and nothing is lost on the way up, down and up again.

docs/api.md, "Lists" ("tasks made before lists existed are there, in the order they were
created") and "A task" (ids are never reused). Never the session ``app`` fixture's
database: a SQLite file of the test's own, or a fresh PostgreSQL database made here.
"""

from __future__ import annotations

import json
from typing import Any

import flask_migrate
import sqlalchemy as sa
from conftest import TEST_SECRET, lists_url, tasks_url
from flask import Flask
from support import bearer

from app.auth import create_token
from app.models import db

ALICE, BOB = "mig4-alice", "mig4-bob"
# (owner, title, completed, created minute, tags): created out of id order on purpose.
TASKS = [
    (ALICE, "third", False, 30, ["home"]),
    (ALICE, "first", True, 10, []),
    (BOB, "bob's only", False, 5, ["x", "Y"]),
    (ALICE, "second", False, 20, ["errands", "home"]),
    (ALICE, "also first", False, 10, []),  # same moment as "first": the id decides
]


def _migrate(command: str, revision: str) -> None:
    getattr(flask_migrate, command)(revision=revision)
    db.session.remove()
    db.engine.dispose()


def _moment(minute: int) -> str:
    if db.engine.dialect.name == "sqlite":
        return f"2026-11-30 10:{minute:02d}:00.000000"
    return f"2026-11-30 10:{minute:02d}:00+00:00"


def _seed_at_0003() -> dict[str, int]:
    """The tasks above (and their tag keys) as revision 0003 stores them; title -> id."""
    ids = {}
    with db.engine.begin() as conn:
        for user in (ALICE, BOB):
            conn.execute(
                sa.text("INSERT INTO users (id, created_at) VALUES (:id, :now)"),
                {"id": user, "now": _moment(0)},
            )
        for owner, title, completed, minute, tags in TASKS:
            row = conn.execute(
                sa.text(
                    "INSERT INTO tasks (user_id, title, completed, completed_at, tags, "
                    "created_at, updated_at) VALUES (:u, :t, :c, :done, :tags, :at, :at) "
                    "RETURNING id"
                ),
                {
                    "u": owner,
                    "t": title,
                    "c": completed,
                    "done": _moment(minute) if completed else None,
                    "tags": json.dumps(tags),
                    "at": _moment(minute),
                },
            )
            ids[title] = row.scalar_one()
            for tag in tags:
                conn.execute(
                    sa.text("INSERT INTO task_tags (user_id, tag, task_id) VALUES (:u, :g, :i)"),
                    {"u": owner, "g": tag.casefold(), "i": ids[title]},
                )
    return ids


def _auth(user: str) -> dict[str, str]:
    return bearer(create_token(TEST_SECRET, user))


def _get(client: Any, user: str, url: str) -> Any:
    answer = client.get(url, headers=_auth(user))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def _check_placed(app: Flask, ids: dict[str, int]) -> None:
    client = app.test_client()
    for user in (ALICE, BOB):
        lists = _get(client, user, lists_url(user))
        assert [(item["title"], item["is_default"]) for item in lists] == [("Tasks", True)]
        default = lists[0]
        mine = [task for task in TASKS if task[0] == user]
        assert default["open_count"] == sum(1 for task in mine if not task[2])
        tasks = _get(
            client, user, tasks_url(user, query={"list_id": default["id"], "sort": "position"})
        )
        # Oldest first, ids breaking ties; all at the top level.
        expected = sorted(mine, key=lambda task: (task[3], ids[task[1]]))
        assert [task["title"] for task in tasks] == [task[1] for task in expected]
        assert all(task["parent_id"] is None for task in tasks)
        positions = [task["position"] for task in tasks]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        for task in tasks:
            assert task["tags"] == next(t[4] for t in TASKS if t[1] == task["title"])
            for tag in task["tags"]:  # the tag keys came through too
                tagged = _get(client, user, tasks_url(user, query={"tag": tag}))
                assert task["id"] in [t["id"] for t in tagged]


def test_0004_puts_every_task_in_its_owners_default_list_in_creation_order(
    empty_app: Flask,
) -> None:
    with empty_app.app_context():
        _migrate("upgrade", "0003")
        ids = _seed_at_0003()
        _migrate("upgrade", "head")
        _check_placed(empty_app, ids)

        # Down to 0003: every task kept (and its tags), lists gone.
        _migrate("downgrade", "0003")
        with db.engine.connect() as conn:
            titles = set(conn.execute(sa.text("SELECT title FROM tasks")).scalars())
            tags = conn.execute(sa.text("SELECT count(*) FROM task_tags")).scalar_one()
            tables = set(sa.inspect(conn).get_table_names())
        assert titles == {task[1] for task in TASKS}
        assert tags == sum(len(task[4]) for task in TASKS)
        assert "lists" not in tables

        # And up again: the same placement.
        _migrate("upgrade", "head")
        _check_placed(empty_app, ids)


def test_0004_keeps_ids_from_being_reused(empty_app: Flask) -> None:
    """SQLite rebuilds the tasks table in 0004; its AUTOINCREMENT counter survives, so the
    id of a task deleted before the migration is not given out again."""
    with empty_app.app_context():
        _migrate("upgrade", "0003")
        ids = _seed_at_0003()
        highest = max(ids.values())
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM tasks WHERE id = :i"), {"i": highest})
        _migrate("upgrade", "head")
        client = empty_app.test_client()
        created = client.post(tasks_url(ALICE), json={"title": "new"}, headers=_auth(ALICE))
        assert created.status_code == 201, created.get_data(as_text=True)
        assert created.get_json()["id"] > highest
