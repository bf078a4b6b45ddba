"""Safe retries: ``Idempotency-Key`` on create.

Contract: docs/api.md, "A task", "Create" ("Safe retries"), and the 409
line under "Errors". The concurrent test goes through ``live_server`` with
``requests``; the expiry test ages a key straight in the database rather than waiting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa
from conftest import ALICE, BOB, CONCURRENT_TIMEOUT, all_at_once, describe
from support import assert_error
from test_beyond_support import assert_422, db_scalar, list_ids, tasks_url

from app.models import db

TIMEOUT = CONCURRENT_TIMEOUT


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def post(client, headers, body, key=None, user=ALICE):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(tasks_url(user), headers=headers, json=body)


def assert_first(resp) -> dict:
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert "Idempotent-Replayed" not in resp.headers
    return resp.get_json()


def assert_replay_of(resp, first) -> None:
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers.get("Idempotent-Replayed") == "true"
    assert resp.get_json() == first.get_json()
    assert resp.headers["Location"] == first.headers["Location"]
    assert resp.mimetype == "application/json"


# --------------------------------------------------------------------------- replay


def test_same_key_same_body_replays_the_first_response(client, alice):
    key = new_key()
    body = {"title": "buy milk", "priority": "high", "tags": ["home"]}
    first = post(client, alice, body, key)
    created = assert_first(first)
    assert "Location" in first.headers
    for _ in range(2):  # a retry of a retry, too
        assert_replay_of(post(client, alice, body, key), first)
    assert list_ids(client, alice) == ([created["id"]], 1)


def test_replay_returns_the_first_body_even_after_the_task_changed(client, alice):
    key = new_key()
    first = post(client, alice, {"title": "original"}, key)
    created = assert_first(first)
    url = tasks_url(task_id=created["id"])
    changed = client.put(url, headers=alice, json={"title": "changed", "priority": "low"})
    assert changed.status_code == 200
    assert_replay_of(post(client, alice, {"title": "original"}, key), first)
    assert client.get(url, headers=alice).get_json()["title"] == "changed"
    assert list_ids(client, alice)[1] == 1


@pytest.mark.parametrize(
    "again",
    [
        {"title": "a", "completed": False},
        {"title": "  a  "},
        {"title": "a", "description": None},
        {"title": "a", "priority": "medium", "tags": [], "due_date": None},
        {"completed": False, "title": "a"},
    ],
)
def test_same_body_after_validation_is_a_replay(client, alice, again):
    key = new_key()
    first = post(client, alice, {"title": "a"}, key)
    assert_first(first)
    assert_replay_of(post(client, alice, again, key), first)
    assert list_ids(client, alice)[1] == 1


@pytest.mark.parametrize(
    "other",
    [
        {"title": "b"},
        {"title": "a", "completed": True},
        {"title": "a", "description": "x"},
        {"title": "a", "priority": "high"},
        {"title": "a", "tags": ["x"]},
        {"title": "a", "due_date": "2030-01-01T00:00:00Z"},
    ],
)
def test_same_key_with_a_different_body_is_422(client, alice, other):
    key = new_key()
    first = post(client, alice, {"title": "a"}, key)
    created = assert_first(first)
    resp = post(client, alice, other, key)
    assert_error(resp, 422)
    assert "Idempotent-Replayed" not in resp.headers
    assert "Location" not in resp.headers
    assert list_ids(client, alice) == ([created["id"]], 1)
    # The key still holds the first request.
    assert_replay_of(post(client, alice, {"title": "a"}, key), first)


def test_different_keys_and_no_key_create_new_tasks(client, alice):
    body = {"title": "same"}
    ids = {assert_first(post(client, alice, body, new_key()))["id"] for _ in range(2)}
    ids |= {assert_first(post(client, alice, body))["id"] for _ in range(2)}
    assert len(ids) == 4
    assert list_ids(client, alice)[1] == 4


def test_keys_are_per_user(client, alice, bob):
    key = new_key()
    first = post(client, alice, {"title": "a"}, key)
    alices = assert_first(first)
    # Bob, same key and same body: his own new task, not Alice's response.
    bobs_first = post(client, bob, {"title": "a"}, key, user=BOB)
    bobs = assert_first(bobs_first)
    assert bobs["id"] != alices["id"] and bobs["user_id"] == BOB
    # Bob, same key, another body: not a conflict with Alice's either.
    assert_first(post(client, bob, {"title": "b"}, new_key(), user=BOB))
    assert_replay_of(post(client, bob, {"title": "a"}, key, user=BOB), bobs_first)
    assert_replay_of(post(client, alice, {"title": "a"}, key), first)
    assert list_ids(client, alice) == ([alices["id"]], 1)
    assert list_ids(client, bob, user=BOB)[1] == 2


def test_key_of_another_user_with_another_body_creates(client, alice, bob):
    key = new_key()
    assert_first(post(client, alice, {"title": "alice's"}, key))
    bobs = assert_first(post(client, bob, {"title": "bob's"}, key, user=BOB))
    assert bobs["title"] == "bob's"


# --------------------------------------------------------------------------- key format

VALID_KEYS = ["a", "x" * 255, "".join(chr(c) for c in range(0x21, 0x7F)), "a b", "~!", "0"]


@pytest.mark.parametrize("key", VALID_KEYS, ids=["one", "255", "printable", "space", "sym", "0"])
def test_printable_ascii_keys_of_1_to_255_are_accepted(client, alice, key):
    first = post(client, alice, {"title": "t"}, key)
    assert_first(first)
    assert_replay_of(post(client, alice, {"title": "t"}, key), first)


# Header values reach the app as latin-1 text: "é" as UTF-8 bytes is "Ã©" here.
INVALID_KEYS = {
    "empty": "",
    "256": "x" * 256,
    "latin1": "caf\u00e9",
    "utf8-bytes": "caf\u00e9".encode().decode("latin-1"),
    "tab": "a\tb",
    "del": "a\x7fb",
    "control": "a\x01b",
    "nbsp": "a\u00a0b",
}


@pytest.mark.parametrize("key", INVALID_KEYS.values(), ids=INVALID_KEYS.keys())
def test_malformed_key_is_422_under_headers_and_creates_nothing(client, alice, key):
    resp = post(client, alice, {"title": "t"}, key)
    assert_422(resp, "headers", "Idempotency-Key")
    assert list_ids(client, alice) == ([], 0)


def test_malformed_key_is_answered_after_authentication(client, alice, bob):
    resp = client.post(tasks_url(), headers={"Idempotency-Key": "x" * 256}, json={"title": "t"})
    assert_error(resp, 401)
    resp = post(client, bob, {"title": "t"}, "x" * 256)  # Bob on Alice's path
    assert "errors" not in assert_error(resp, 403)
    assert list_ids(client, alice) == ([], 0)


def test_invalid_body_with_a_key_is_422_and_creates_nothing(client, alice):
    key = new_key()
    assert_422(post(client, alice, {"title": ""}, key), "json", "title")
    assert_422(post(client, alice, {"title": "t", "priority": "x"}, key), "json", "priority")
    assert list_ids(client, alice) == ([], 0)


# --------------------------------------------------------------------------- expiry


def _age_keys(app, hours: float) -> int:
    """Move every stored key's ``created_at`` back by ``hours``; return how many moved."""
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        with db.engine.begin() as conn:
            table = sa.Table("idempotency_keys", sa.MetaData(), autoload_with=conn)
            keys = list(table.primary_key.columns)
            assert keys, "idempotency_keys has no primary key"
            moved = 0
            for row in conn.execute(sa.select(*keys, table.c.created_at)).all():
                created_at = row.created_at
                if isinstance(created_at, str):
                    created_at = datetime.fromisoformat(created_at)
                if created_at.tzinfo is None:  # SQLite keeps naive UTC
                    created_at = created_at.replace(tzinfo=UTC)
                older = created_at - timedelta(hours=hours)
                where = [column == row._mapping[column.name] for column in keys]
                value = older.replace(tzinfo=None) if sqlite else older
                stmt = sa.update(table).where(*where).values(created_at=value)
                moved += conn.execute(stmt).rowcount
        db.session.remove()
    return moved


def test_key_older_than_24_hours_no_longer_replays(client, alice, app):
    key = new_key()
    first = post(client, alice, {"title": "a"}, key)
    created = assert_first(first)
    assert _age_keys(app, 24.5) >= 1
    again = post(client, alice, {"title": "a"}, key)
    fresh = assert_first(again)
    assert fresh["id"] != created["id"]
    assert again.headers["Location"] != first.headers["Location"]
    # The key now holds the new request.
    assert_replay_of(post(client, alice, {"title": "a"}, key), again)
    assert list_ids(client, alice)[1] == 2


def test_key_younger_than_24_hours_still_replays(client, alice, app):
    key = new_key()
    first = post(client, alice, {"title": "a"}, key)
    assert_first(first)
    assert _age_keys(app, 23.5) >= 1
    assert_replay_of(post(client, alice, {"title": "a"}, key), first)
    assert list_ids(client, alice)[1] == 1


def test_expired_key_with_another_body_creates_instead_of_422(client, alice, app):
    key = new_key()
    assert_first(post(client, alice, {"title": "a"}, key))
    assert _age_keys(app, 25) >= 1
    assert assert_first(post(client, alice, {"title": "b"}, key))["title"] == "b"


def test_expired_keys_are_removed_without_an_operator(client, alice, bob, app):
    """Nobody runs a command: ordinary keyed creates clear expired keys out of the table."""
    for i in range(3):
        assert_first(post(client, alice, {"title": f"a{i}"}, new_key()))
        assert_first(post(client, bob, {"title": f"b{i}"}, new_key(), user=BOB))
    assert _age_keys(app, 25) == 6
    for i in range(5):
        assert_first(post(client, alice, {"title": f"later {i}"}, new_key()))
    assert db_scalar(app, "SELECT count(*) FROM idempotency_keys") == 5


# --------------------------------------------------------------------------- concurrency

N = 10


def test_concurrent_creates_with_one_key_make_one_task(client, alice, live_server):
    key = new_key()
    url = f"{live_server}{tasks_url()}"
    headers = {**alice, "Idempotency-Key": key}
    done = all_at_once(
        [
            lambda: requests.post(url, headers=headers, json={"title": "once"}, timeout=TIMEOUT)
            for _ in range(N)
        ]
    )
    assert len(done) == N
    described = describe(done)
    assert {r.status_code for r in done} <= {201, 409}, described

    created = [r for r in done if r.status_code == 201]
    originals = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1, described
    [original] = originals
    for replay in created:
        assert replay.json() == original.json()
        assert replay.headers["Location"] == original.headers["Location"]
        if replay is not original:
            assert replay.headers["Idempotent-Replayed"] == "true"
    for conflict in (r for r in done if r.status_code == 409):
        body = conflict.json()
        assert (body["code"], body["status"]) == (409, "Conflict"), body
        assert isinstance(body["message"], str) and body["message"]
        assert int(conflict.headers["Retry-After"]) >= 0

    assert list_ids(client, alice) == ([original.json()["id"]], 1)
    # Once the first has finished, a retry is a replay.
    retry = requests.post(url, headers=headers, json={"title": "once"}, timeout=TIMEOUT)
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json() == original.json()
