"""The new task fields: priority, due_date, tags, completed_at.

Contract: docs/api.md, "A task" and its "Create", "Update" and "Toggle" (and the
README's decisions where it is silent). Black box: every task is made and read
through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ALICE, BOB
from support import TASK_FIELDS, assert_task
from test_beyond_support import assert_422, create, list_ids, parse_utc, tasks_url

EMOJI = "\U0001f600"
DUE = "2026-12-01T10:00:00+02:00"
DUE_UTC = "2026-12-01T08:00:00.000000Z"


def _send(client, method: str, url: str, headers: dict, body: Any):
    """``body``: a JSON value, or bytes sent as raw JSON text."""
    if isinstance(body, bytes):
        headers = {**headers, "Content-Type": "application/json"}
        return client.open(url, method=method, headers=headers, data=body)
    return client.open(url, method=method, headers=headers, json=body)


def _all_tasks(client, headers, user: str = ALICE) -> list[dict[str, Any]]:
    resp = client.get(tasks_url(user, query={"page_size": 500}), headers=headers)
    assert resp.status_code == 200
    return resp.get_json()


# --------------------------------------------------------------------------- shape, defaults


def test_create_without_new_fields_gets_defaults_in_field_order(client, alice):
    resp = client.post(tasks_url(), headers=alice, json={"title": "plain"})
    assert resp.status_code == 201
    body = assert_task(resp.get_json())
    assert list(body) == TASK_FIELDS
    assert (body["priority"], body["due_date"], body["tags"]) == ("medium", None, [])
    assert body["completed_at"] is None
    for fetched in (
        client.get(tasks_url(task_id=body["id"]), headers=alice).get_json(),
        _all_tasks(client, alice)[0],
    ):
        assert list(fetched) == TASK_FIELDS
        assert fetched == body


def test_create_with_every_new_field_returns_and_stores_them(client, alice):
    sent = {"title": "call", "priority": "high", "due_date": DUE, "tags": [" Home ", "Errands"]}
    body = assert_task(create(client, alice, **sent))
    expected = {"priority": "high", "due_date": DUE_UTC, "tags": ["Home", "Errands"]}
    assert {k: body[k] for k in expected} == expected
    assert client.get(tasks_url(task_id=body["id"]), headers=alice).get_json() == body
    assert _all_tasks(client, alice) == [body]


def test_every_route_writes_the_new_fields(client, alice):
    created = create(client, alice, priority="low", due_date=DUE, tags=["x"])
    url = tasks_url(task_id=created["id"])
    bodies = [
        created,
        client.get(url, headers=alice).get_json(),
        client.put(url, headers=alice, json={"title": "renamed"}).get_json(),
        client.patch(url + "/complete", headers=alice).get_json(),
        *_all_tasks(client, alice),
    ]
    for body in bodies:
        assert_task(body)
        assert (body["priority"], body["due_date"], body["tags"]) == ("low", DUE_UTC, ["x"])


# --------------------------------------------------------------------------- priority


@pytest.mark.parametrize("priority", ["low", "medium", "high"])
def test_priority_values_are_stored_on_create_and_put(client, alice, priority):
    created = create(client, alice, priority=priority)
    assert created["priority"] == priority
    other = {"low": "high", "medium": "low", "high": "medium"}[priority]
    url = tasks_url(task_id=created["id"])
    resp = client.put(url, headers=alice, json={"priority": other})
    assert resp.status_code == 200
    assert resp.get_json()["priority"] == other
    assert client.get(url, headers=alice).get_json()["priority"] == other


# --------------------------------------------------------------------------- due_date

DUE_DATES = [  # sent -> returned (UTC, microseconds, Z)
    ("2026-12-01T10:00:00+02:00", "2026-12-01T08:00:00.000000Z"),
    ("2026-12-01T08:00:00Z", "2026-12-01T08:00:00.000000Z"),
    ("2026-12-01T08:00:00+00:00", "2026-12-01T08:00:00.000000Z"),
    ("2026-12-01T08:00:00.123456Z", "2026-12-01T08:00:00.123456Z"),
    ("2026-12-01T10:00:00.5+02:00", "2026-12-01T08:00:00.500000Z"),
    ("2026-12-01T00:30:00-05:00", "2026-12-01T05:30:00.000000Z"),
    ("2026-12-01T01:00:00+02:00", "2026-11-30T23:00:00.000000Z"),  # crosses midnight
    ("2020-02-29T23:59:59+00:00", "2020-02-29T23:59:59.000000Z"),  # the past is allowed
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
]


@pytest.mark.parametrize(("sent", "returned"), DUE_DATES)
def test_due_date_is_returned_in_utc(client, alice, sent, returned):
    created = create(client, alice, due_date=sent)
    assert created["due_date"] == returned
    assert client.get(tasks_url(task_id=created["id"]), headers=alice).get_json() == created
    put = client.put(tasks_url(task_id=created["id"]), headers=alice, json={"due_date": sent})
    assert put.status_code == 200
    assert put.get_json()["due_date"] == returned


def test_put_null_due_date_clears_it(client, alice):
    created = create(client, alice, due_date=DUE)
    url = tasks_url(task_id=created["id"])
    resp = client.put(url, headers=alice, json={"due_date": None})
    assert resp.status_code == 200
    assert resp.get_json()["due_date"] is None
    assert client.get(url, headers=alice).get_json()["due_date"] is None


def test_create_with_null_due_date_is_allowed(client, alice):
    assert create(client, alice, due_date=None)["due_date"] is None


# --------------------------------------------------------------------------- tags

VALID_TAGS = [  # sent -> returned: trimmed, order and case kept
    ([], []),
    (["b", "A", "c"], ["b", "A", "c"]),
    (["  Home  ", "\twork\n"], ["Home", "work"]),
    (["x" * 50], ["x" * 50]),
    ([" " * 5 + "x" * 50 + " " * 5], ["x" * 50]),
    ([EMOJI * 50], [EMOJI * 50]),
    (["caf\u00e9", "\u4e2d\u6587"], ["caf\u00e9", "\u4e2d\u6587"]),
    ([f"tag{i}" for i in range(20)], [f"tag{i}" for i in range(20)]),
    (["a b", "a-b", "a_b"], ["a b", "a-b", "a_b"]),
]


@pytest.mark.parametrize(("sent", "returned"), VALID_TAGS, ids=[str(i) for i in range(9)])
def test_tags_are_trimmed_and_kept_in_order_and_case(client, alice, sent, returned):
    created = create(client, alice, tags=sent)
    assert created["tags"] == returned
    assert client.get(tasks_url(task_id=created["id"]), headers=alice).get_json() == created
    assert _all_tasks(client, alice)[0]["tags"] == returned


def test_put_tags_replaces_the_whole_list_and_empty_list_empties_it(client, alice):
    created = create(client, alice, tags=["one", "two", "three"])
    url = tasks_url(task_id=created["id"])
    resp = client.put(url, headers=alice, json={"tags": ["three", "Four"]})
    assert resp.status_code == 200
    assert resp.get_json()["tags"] == ["three", "Four"]
    assert client.get(url, headers=alice).get_json()["tags"] == ["three", "Four"]
    resp = client.put(url, headers=alice, json={"tags": []})
    assert resp.status_code == 200
    assert resp.get_json()["tags"] == []
    assert client.get(url, headers=alice).get_json()["tags"] == []


def test_put_tags_may_change_only_case_or_order(client, alice):
    created = create(client, alice, tags=["home", "work"])
    url = tasks_url(task_id=created["id"])
    resp = client.put(url, headers=alice, json={"tags": ["Work", "HOME"]})
    assert resp.status_code == 200
    assert resp.get_json()["tags"] == ["Work", "HOME"]
    assert client.get(url, headers=alice).get_json()["tags"] == ["Work", "HOME"]


def test_same_tags_on_many_tasks_and_users_are_independent(client, alice, bob):
    first = create(client, alice, tags=["home"])
    second = create(client, alice, tags=["Home", "work"])
    bobs = create(client, bob, BOB, tags=["HOME"])
    client.put(tasks_url(task_id=first["id"]), headers=alice, json={"tags": []})
    assert client.get(tasks_url(task_id=second["id"]), headers=alice).get_json()["tags"] == [
        "Home",
        "work",
    ]
    assert client.get(tasks_url(BOB, bobs["id"]), headers=bob).get_json()["tags"] == ["HOME"]


# --------------------------------------------------------------------------- validation

INVALID = [  # (body beyond a valid title, field under errors.json)
    *[({"priority": p}, "priority") for p in ("HIGH", "High", "urgent", "", " low", 1, 0)],
    *[({"priority": p}, "priority") for p in (None, True, ["high"], {"p": "high"})],
    *[({"due_date": d}, "due_date") for d in ("2026-12-01", "2026-12-01T10:00:00")],
    *[({"due_date": d}, "due_date") for d in ("2026-12-01T10:00:00.123456", "tomorrow", "")],
    *[({"due_date": d}, "due_date") for d in ("2026-13-01T10:00:00Z", "2026-12-01T25:00:00Z")],
    *[({"due_date": d}, "due_date") for d in (1764576000, True, ["2026-12-01T10:00:00Z"])],
    ({"due_date": {"at": "2026-12-01T10:00:00Z"}}, "due_date"),
    # Not a moment that exists in UTC (year 0, year 10000), or not an offset at all.
    *[
        ({"due_date": d}, "due_date")
        for d in ("0001-01-01T00:00:00+01:00", "2026-12-01T10:00+25:00")
    ],
    ({"due_date": "9999-12-31T23:59:59-01:00"}, "due_date"),
    *[({"tags": t}, "tags") for t in ("home", None, {"a": "b"}, 1, True)],
    *[({"tags": t}, "tags") for t in ([1], [None], [["a"]], [{"a": 1}], [True], ["ok", 2])],
    *[({"tags": t}, "tags") for t in ([""], ["   "], ["\t\n"], ["x" * 51], [EMOJI * 51])],
    ({"tags": ["  " + "x" * 51 + "  "]}, "tags"),
    ({"tags": ["a\x00b"]}, "tags"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    *[({"tags": t}, "tags") for t in (["Home", "home"], ["a", " A "], ["x", "y", "X"])],
    ({"tags": ["\u00c9t\u00e9", "\u00e9t\u00e9"]}, "tags"),  # case of non-ASCII letters too
    *[({"completed_at": v}, "completed_at") for v in (None, "2026-12-01T10:00:00Z")],
]
INVALID_IDS = [f"{field}-{i}" for i, (_, field) in enumerate(INVALID)]
# Raw JSON text: a lone surrogate cannot be sent with json= from Python.
RAW_INVALID = [
    (b'{"title": "ok", "tags": ["a\\ud800"]}', "tags"),
    (b'{"title": "ok", "tags": ["ok", "\\udc00x"]}', "tags"),
]


@pytest.mark.parametrize(("extra", "field"), INVALID, ids=INVALID_IDS)
def test_create_invalid_new_field_is_422_and_stores_nothing(client, alice, extra, field):
    resp = client.post(tasks_url(), headers=alice, json={"title": "ok", **extra})
    assert_422(resp, "json", field)
    assert "Location" not in resp.headers
    assert _all_tasks(client, alice) == []


@pytest.mark.parametrize(("raw", "field"), RAW_INVALID)
def test_create_tag_the_database_cannot_store_is_422(client, alice, raw, field):
    assert_422(_send(client, "POST", tasks_url(), alice, raw), "json", field)
    assert _all_tasks(client, alice) == []


@pytest.mark.parametrize(("extra", "field"), INVALID, ids=INVALID_IDS)
def test_put_invalid_new_field_is_422_and_changes_nothing(client, alice, extra, field):
    task = create(client, alice, priority="low", due_date=DUE, tags=["keep"])
    url = tasks_url(task_id=task["id"])
    assert_422(client.put(url, headers=alice, json=extra), "json", field)
    assert client.get(url, headers=alice).get_json() == task
    # Alongside a valid change, the whole request is refused.
    assert_422(client.put(url, headers=alice, json={"title": "new", **extra}), "json", field)
    assert client.get(url, headers=alice).get_json() == task


@pytest.mark.parametrize(("raw", "field"), RAW_INVALID)
def test_put_tag_the_database_cannot_store_is_422(client, alice, raw, field):
    task = create(client, alice, tags=["keep"])
    url = tasks_url(task_id=task["id"])
    assert_422(_send(client, "PUT", url, alice, raw), "json", field)
    assert client.get(url, headers=alice).get_json() == task


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_completed_at_is_read_only_like_id(client, alice, method):
    task = create(client, alice)
    url = tasks_url() if method == "POST" else tasks_url(task_id=task["id"])
    as_id = client.open(url, method=method, headers=alice, json={"title": "ok", "id": 5})
    as_completed_at = client.open(
        url, method=method, headers=alice, json={"title": "ok", "completed_at": None}
    )
    id_errors = assert_422(as_id, "json", "id")["errors"]["json"]
    completed_at_errors = assert_422(as_completed_at, "json", "completed_at")["errors"]["json"]
    assert completed_at_errors == {"completed_at": id_errors["id"]}  # "Unknown field."
    assert _all_tasks(client, alice) == [task]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"completed": True, "priority": "high"}, "priority"),
        ({"completed": True, "due_date": DUE}, "due_date"),
        ({"tags": ["a"]}, "tags"),
        ({"completed": True, "completed_at": "2026-12-01T10:00:00Z"}, "completed_at"),
    ],
)
def test_toggle_takes_no_other_field(client, alice, body, field):
    task = create(client, alice)
    url = tasks_url(task_id=task["id"])
    assert_422(client.patch(url + "/complete", headers=alice, json=body), "json", field)
    assert client.get(url, headers=alice).get_json() == task


# --------------------------------------------------------------------------- PUT keeps the rest


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "new"},
        {"description": "new"},
        {"description": None},
        {"completed": True},
        {"priority": "high"},
        {"due_date": "2027-01-02T03:04:05Z"},
        {"due_date": None},
        {"tags": ["other"]},
        {"tags": []},
        {"priority": "low", "due_date": None, "tags": ["B", "a"], "title": "all"},
    ],
)
def test_put_changes_only_given_fields(client, alice, changes):
    start = {"title": "old", "description": "keep", "priority": "medium", "due_date": DUE}
    task = create(client, alice, **start, tags=["Home", "work"])
    url = tasks_url(task_id=task["id"])
    resp = client.put(url, headers=alice, json=changes)
    assert resp.status_code == 200
    body = assert_task(resp.get_json())
    expected = {**task, **changes}
    if expected["due_date"] == "2027-01-02T03:04:05Z":
        expected["due_date"] = "2027-01-02T03:04:05.000000Z"
    for key in ("id", "user_id", "title", "description", "completed", "priority", "due_date"):
        assert body[key] == expected[key], key
    assert body["tags"] == expected["tags"]
    assert body["created_at"] == task["created_at"]
    assert parse_utc(body["updated_at"]) > parse_utc(task["updated_at"])
    assert client.get(url, headers=alice).get_json() == body


# --------------------------------------------------------------------------- completed_at


def _window():
    return datetime.now(UTC) - timedelta(seconds=5), datetime.now(UTC) + timedelta(seconds=5)


def test_create_completed_sets_completed_at_and_pending_leaves_it_null(client, alice):
    low, high = _window()
    done = assert_task(create(client, alice, completed=True))
    assert low <= parse_utc(done["completed_at"]) <= high
    pending = assert_task(create(client, alice, completed=False))
    assert pending["completed_at"] is None


def test_toggle_sets_and_clears_completed_at(client, alice):
    task = create(client, alice)
    url = tasks_url(task_id=task["id"]) + "/complete"
    low, high = _window()
    done = assert_task(client.patch(url, headers=alice).get_json())
    assert done["completed"] is True
    assert low <= parse_utc(done["completed_at"]) <= high
    assert parse_utc(done["completed_at"]) >= parse_utc(task["created_at"])
    reopened = assert_task(client.patch(url, headers=alice).get_json())
    assert (reopened["completed"], reopened["completed_at"]) == (False, None)
    again = assert_task(client.patch(url, headers=alice, json={"completed": True}).get_json())
    # Completed anew: a new time, not the first one remembered.
    assert parse_utc(again["completed_at"]) >= parse_utc(reopened["updated_at"])
    assert parse_utc(again["completed_at"]) >= parse_utc(done["completed_at"])
    got = client.get(tasks_url(task_id=task["id"]), headers=alice).get_json()
    assert got["completed_at"] == again["completed_at"]


def test_put_completed_sets_and_clears_completed_at(client, alice):
    task = create(client, alice)
    url = tasks_url(task_id=task["id"])
    low, high = _window()
    done = assert_task(client.put(url, headers=alice, json={"completed": True}).get_json())
    assert low <= parse_utc(done["completed_at"]) <= high
    reopened = assert_task(client.put(url, headers=alice, json={"completed": False}).get_json())
    assert reopened["completed_at"] is None
    assert client.get(url, headers=alice).get_json()["completed_at"] is None


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "renamed"},
        {"completed": True},
        {"completed": True, "priority": "high"},
        {"tags": ["x"], "due_date": None},
    ],
)
def test_put_leaving_completed_as_it_was_keeps_completed_at(client, alice, changes):
    task = create(client, alice, completed=True)
    url = tasks_url(task_id=task["id"])
    resp = client.put(url, headers=alice, json=changes)
    assert resp.status_code == 200
    body = assert_task(resp.get_json())
    assert body["completed"] is True
    assert body["completed_at"] == task["completed_at"]
    assert client.get(url, headers=alice).get_json()["completed_at"] == task["completed_at"]


def test_put_on_pending_task_keeps_completed_at_null(client, alice):
    task = create(client, alice)
    url = tasks_url(task_id=task["id"])
    for changes in ({"title": "t"}, {"completed": False}):
        body = assert_task(client.put(url, headers=alice, json=changes).get_json())
        assert (body["completed"], body["completed_at"]) == (False, None)


@pytest.mark.parametrize("value", [True, False])
def test_explicit_toggle_to_current_value_changes_nothing(client, alice, value):
    task = create(client, alice, completed=value)
    url = tasks_url(task_id=task["id"])
    resp = client.patch(url + "/complete", headers=alice, json={"completed": value})
    assert resp.status_code == 200
    assert resp.get_json() == task  # completed_at and updated_at included
    assert client.get(url, headers=alice).get_json() == task


# --------------------------------------------------------------------------- isolation


def test_list_of_one_user_never_shows_another_users_new_fields(client, alice, bob):
    mine = create(client, alice, tags=["shared"], priority="high")
    create(client, bob, BOB, tags=["shared"], priority="high", due_date=DUE)
    assert list_ids(client, alice) == ([mine["id"]], 1)
    assert _all_tasks(client, alice) == [mine]
