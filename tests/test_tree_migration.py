"""Migration 0006 on a database that holds a tree made under migration 0005 (the schema
stop 21 shipped, when the service ran the tree rules itself): after the upgrade the
database keeps the rules and the counters, and down to 0005 and up again loses nothing.

docs/api.md, "Subtasks" (completing a task completes its open subtasks) and "Lists"
(`open_count`). A database of the test's own (the ``empty_app`` fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from conftest import lists_url, tasks_url
from flask import Flask
from test_lists_migration import ALICE, _auth, _get, _migrate, _seed_at_0003

from app.models import db


def _default_open_count(client) -> int:  # type: ignore[no-untyped-def]
    return _get(client, ALICE, lists_url(ALICE))[0]["open_count"]


def test_0006_takes_over_the_tree_rules_and_counters_of_a_tree_made_at_0005(
    empty_app: Flask,
) -> None:
    with empty_app.app_context():
        _migrate("upgrade", "0003")
        ids = _seed_at_0003()
        _migrate("upgrade", "0005")
        # "second" under "third", both open, in the default list (as the service made it).
        with db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE tasks SET parent_id = :p WHERE id = :i"),
                {"p": ids["third"], "i": ids["second"]},
            )
        _migrate("upgrade", "head")
        client = empty_app.test_client()
        assert _default_open_count(client) == 3  # third, second, also first

        done = client.patch(f"{tasks_url(ALICE)}/{ids['third']}/complete", headers=_auth(ALICE))
        assert done.status_code == 200, done.get_data(as_text=True)
        child = _get(client, ALICE, f"{tasks_url(ALICE)}/{ids['second']}")
        assert child["completed"] is True and child["completed_at"] is not None
        assert _default_open_count(client) == 1

        # Down to 0005 and up again: the counters stay exact, the rules still hold.
        _migrate("downgrade", "0005")
        _migrate("upgrade", "head")
        assert _default_open_count(client) == 1
        reopened = client.patch(
            f"{tasks_url(ALICE)}/{ids['second']}/complete", headers=_auth(ALICE)
        )
        assert reopened.get_json()["completed"] is False
        parent = _get(client, ALICE, f"{tasks_url(ALICE)}/{ids['third']}")
        assert parent["completed"] is False  # reopening a subtask reopens its parent
        assert _default_open_count(client) == 3
