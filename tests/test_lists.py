"""The list resource against the contract, through HTTP only.

Contract: docs/api.md, "Lists" (every paragraph), "Routes" (the list routes, `default` as a
`{list_id}`, the same 404 for a missing and a foreign list, absolute `Location`), "A task"
(`list_id` on create, "Create": an unknown or foreign `list_id` is a 422), "Subtasks"
("deleting a list deletes its tasks"), "Conditional requests (ETags)" (the list GETs and
writes) and "Errors" (the two 409s of lists). The task move is used here only as one of the
things `open_count` follows; its own rules are tested elsewhere.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import ALICE, BOB, CONCURRENT_TIMEOUT, all_at_once, describe, lists_url, tasks_url
from support import TIMESTAMP_RE, assert_error
from test_beyond_support import STRONG_ETAG_RE, assert_422, create

# Every field of a list, in the order every list is written in (docs/api.md, "Lists").
LIST_FIELDS = [
    "id",
    "user_id",
    "title",
    "color",
    "is_default",
    "position",
    "open_count",
    "created_at",
    "updated_at",
]
MAX_LISTS = 500  # "At most 500 lists, the default one included"
EMOJI = "\U0001f600"

# --------------------------------------------------------------------------- helpers


def assert_list(body: Any, **expected: Any) -> dict[str, Any]:
    """A list as the API writes it: every field, in order, each of its type; the fields in
    ``expected`` have those values. Returns the list."""
    assert isinstance(body, dict), body
    assert list(body) == LIST_FIELDS, list(body)
    assert type(body["id"]) is int and body["id"] > 0, body
    assert type(body["user_id"]) is str, body
    assert type(body["title"]) is str and body["title"] == body["title"].strip(), body
    assert body["color"] is None or (
        type(body["color"]) is str
        and len(body["color"]) == 7
        and body["color"][0] == "#"
        and all(c in "0123456789abcdef" for c in body["color"][1:])
    ), body
    assert type(body["is_default"]) is bool, body
    assert type(body["position"]) is str and body["position"], body
    assert type(body["open_count"]) is int and body["open_count"] >= 0, body
    for key in ("created_at", "updated_at"):
        assert type(body[key]) is str and TIMESTAMP_RE.match(body[key]), (key, body)
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    return body


def etag_of(resp) -> str:
    etag = resp.headers.get("ETag")
    assert etag is not None, dict(resp.headers)
    assert STRONG_ETAG_RE.match(etag), etag
    return etag


def parse_time(text: str) -> datetime:
    assert TIMESTAMP_RE.match(text), text
    return datetime.fromisoformat(text)


def all_lists(client, headers, user: str = ALICE) -> list[dict[str, Any]]:
    """GET /lists, which must be 200: every list well formed, in position-then-id order,
    positions strictly increasing (byte order)."""
    resp = client.get(lists_url(user), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert isinstance(body, list), body
    for item in body:
        assert_list(item, user_id=user)
    positions = [item["position"].encode() for item in body]
    assert all(a < b for a, b in zip(positions, positions[1:], strict=False)), positions
    return body


def ids_of(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def default_list(client, headers, user: str = ALICE) -> dict[str, Any]:
    [found] = [item for item in all_lists(client, headers, user) if item["is_default"]]
    return found


def new_list(client, headers, title: str = "Groceries", user: str = ALICE, **fields) -> dict:
    """Create a list through the API; return its JSON."""
    resp = client.post(lists_url(user), headers=headers, json={"title": title, **fields})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return assert_list(resp.get_json(), user_id=user, is_default=False)


def get_list(client, headers, list_id: Any, user: str = ALICE, **extra: str):
    """GET /lists/{list_id}, which must be 200; the response."""
    resp = client.get(lists_url(user, list_id), headers={**headers, **extra})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_list(resp.get_json(), user_id=user)
    return resp


def open_count(client, headers, list_id: Any, user: str = ALICE) -> int:
    """The list's open_count, read both ways (GET of the list and GET /lists): they agree."""
    one = get_list(client, headers, list_id, user).get_json()
    [listed] = [item for item in all_lists(client, headers, user) if item["id"] == one["id"]]
    assert listed == one, (listed, one)
    return one["open_count"]


def move_list(client, headers, list_id: Any, body: Any, user: str = ALICE, **extra: str):
    return client.post(lists_url(user, list_id, "/move"), headers={**headers, **extra}, json=body)


def toggle(client, headers, task_id: int, completed: bool):
    resp = client.patch(
        tasks_url(task_id=task_id, suffix="/complete"),
        headers=headers,
        json={"completed": completed},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def move_task(client, headers, task_id: int, body: dict[str, Any]):
    resp = client.post(tasks_url(task_id=task_id, suffix="/move"), headers=headers, json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def assert_404(resp) -> dict[str, Any]:
    return assert_error(resp, 404, errors=False)


def task_count(client, headers, user: str = ALICE) -> int:
    resp = client.get(tasks_url(user, query={"page_size": 500}), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return len(resp.get_json())


def _ids(table: list[tuple[Any, ...]]) -> list[str]:
    return [f"{row[-1]}-{i}" for i, row in enumerate(table)]


# --------------------------------------------------------------------------- the JSON


def test_list_json_has_every_field_in_order_with_its_type(client, alice):
    resp = client.post(lists_url(), headers=alice, json={"title": "Groceries", "color": "#3b82f6"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = assert_list(
        resp.get_json(),
        user_id=ALICE,
        title="Groceries",
        color="#3b82f6",
        is_default=False,
        open_count=0,
    )
    assert body["created_at"] == body["updated_at"]
    assert get_list(client, alice, body["id"]).get_json() == body


# --------------------------------------------------------------------------- the default list


def test_new_user_get_lists_answers_exactly_the_default_list(client, alice):
    resp = client.get(lists_url(), headers=alice)
    assert resp.status_code == 200
    etag_of(resp)
    [only] = resp.get_json()
    assert_list(only, user_id=ALICE, title="Tasks", color=None, is_default=True, open_count=0)
    # Reading again creates no second one.
    assert all_lists(client, alice) == [only]


FIRST_REQUESTS = [
    ("GET", lists_url(), None, "get-lists"),
    ("GET", lists_url(list_id="default"), None, "get-default"),
    ("GET", tasks_url(), None, "get-tasks"),
    ("POST", tasks_url(), {"title": "a task"}, "create-task"),
    ("POST", lists_url(), {"title": "Work"}, "create-list"),
]


@pytest.mark.parametrize(
    ("method", "url", "body"), [r[:3] for r in FIRST_REQUESTS], ids=_ids(FIRST_REQUESTS)
)
def test_default_list_exists_whatever_the_first_request_was(client, alice, method, url, body):
    kwargs = {} if body is None else {"json": body}
    first = client.open(url, method=method, headers=alice, **kwargs)
    assert first.status_code in (200, 201), first.get_data(as_text=True)
    lists = all_lists(client, alice)
    defaults = [item for item in lists if item["is_default"]]
    assert len(defaults) == 1, lists
    assert_list(defaults[0], title="Tasks", color=None)
    expected_titles = {"Tasks", "Work"} if url == lists_url() and method == "POST" else {"Tasks"}
    assert {item["title"] for item in lists} == expected_titles
    assert len(lists) == len(expected_titles)
    if url == tasks_url() and method == "POST":
        assert first.get_json()["list_id"] == defaults[0]["id"]


def test_default_alias_names_the_default_list(client, alice):
    new_list(client, alice, "Work")
    default = default_list(client, alice)
    by_alias = get_list(client, alice, "default")
    by_id = get_list(client, alice, default["id"])
    assert by_alias.get_json() == by_id.get_json() == default
    assert etag_of(by_alias) == etag_of(by_id)


def test_default_alias_of_a_new_user_answers_the_default_list(client, bob):
    resp = client.get(lists_url(BOB, "default"), headers=bob)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = assert_list(resp.get_json(), user_id=BOB, title="Tasks", is_default=True)
    assert all_lists(client, bob, BOB) == [body]


@pytest.mark.parametrize("target", ["default", "id"])
def test_default_list_can_be_renamed_and_recoloured(client, alice, target):
    default = default_list(client, alice)
    list_id = "default" if target == "default" else default["id"]
    resp = client.put(
        lists_url(list_id=list_id), headers=alice, json={"title": " Inbox ", "color": "#00AA11"}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = assert_list(
        resp.get_json(), id=default["id"], title="Inbox", color="#00aa11", is_default=True
    )
    assert get_list(client, alice, default["id"]).get_json() == body
    assert get_list(client, alice, "default").get_json() == body
    assert [item for item in all_lists(client, alice) if item["is_default"]] == [body]


@pytest.mark.parametrize("target", ["default", "id"])
def test_default_list_can_be_moved(client, alice, target):
    default = default_list(client, alice)
    work = new_list(client, alice, "Work")
    home = new_list(client, alice, "Home")
    list_id = "default" if target == "default" else default["id"]
    resp = move_list(client, alice, list_id, {"after_id": home["id"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_list(resp.get_json(), id=default["id"], is_default=True, title="Tasks")
    assert ids_of(all_lists(client, alice)) == [work["id"], home["id"], default["id"]]


@pytest.mark.parametrize("target", ["default", "id"])
@pytest.mark.parametrize("if_match", [None, "current", "*"])
def test_deleting_the_default_list_is_409_and_deletes_nothing(client, alice, target, if_match):
    task = create(client, alice, title="kept")
    default = default_list(client, alice)
    list_id = "default" if target == "default" else default["id"]
    headers = dict(alice)
    if if_match == "current":
        headers["If-Match"] = etag_of(get_list(client, alice, default["id"]))
    elif if_match == "*":
        headers["If-Match"] = "*"
    resp = client.delete(lists_url(list_id=list_id), headers=headers)
    body = assert_error(resp, 409, "Conflict", errors=False)
    assert "default" in body["message"].lower(), body
    assert default_list(client, alice) == default
    assert default["open_count"] == 1
    assert client.get(tasks_url(task_id=task["id"]), headers=alice).status_code == 200


def test_new_lists_are_not_default_and_there_is_one_default(client, alice):
    for title in ("A", "B", "C"):
        new_list(client, alice, title)
    lists = all_lists(client, alice)
    assert len(lists) == 4
    assert [item["title"] for item in lists if item["is_default"]] == ["Tasks"]


def test_tasks_created_without_list_id_land_in_the_default_list(client, alice):
    other = new_list(client, alice, "Other")
    task = create(client, alice, title="no list given")
    default = default_list(client, alice)
    assert task["list_id"] == default["id"]
    assert task["parent_id"] is None
    assert default["open_count"] == 1
    in_default = client.get(tasks_url(query={"list_id": default["id"]}), headers=alice)
    assert [t["id"] for t in in_default.get_json()] == [task["id"]]
    in_other = client.get(tasks_url(query={"list_id": other["id"]}), headers=alice)
    assert in_other.status_code == 200 and in_other.get_json() == []


# --------------------------------------------------------------------------- create


def test_create_list_answers_201_absolute_location_and_etag(client, alice):
    resp = client.post(lists_url(), headers=alice, json={"title": "Work"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = assert_list(resp.get_json(), title="Work", color=None, is_default=False, open_count=0)
    location = urlsplit(resp.headers["Location"])
    assert location.scheme in ("http", "https") and location.netloc, resp.headers["Location"]
    assert location.path == lists_url(list_id=body["id"])
    fetched = client.get(resp.headers["Location"], headers=alice)
    assert fetched.status_code == 200
    assert fetched.get_json() == body
    assert etag_of(resp) == etag_of(fetched)


def test_new_lists_are_placed_last(client, alice):
    default = default_list(client, alice)
    made = [new_list(client, alice, title) for title in ("A", "B", "C")]
    assert ids_of(all_lists(client, alice)) == [default["id"], *ids_of(made)]
    # Still last after the order was changed by hand.
    assert move_list(client, alice, made[2]["id"], {"after_id": None}).status_code == 200
    late = new_list(client, alice, "D")
    order = ids_of(all_lists(client, alice))
    assert order == [made[2]["id"], default["id"], made[0]["id"], made[1]["id"], late["id"]]


def test_list_ids_are_never_reused(client, alice):
    first = new_list(client, alice, "gone")
    assert client.delete(lists_url(list_id=first["id"]), headers=alice).status_code == 204
    second = new_list(client, alice, "new")
    assert second["id"] > first["id"]


VALID_TITLES = [
    ("a", "a"),
    ("  Groceries  ", "Groceries"),
    ("\t\n Groceries \r\n", "Groceries"),
    ("\u00a0Work\u3000", "Work"),  # JavaScript's trim() removes these too
    ("x" * 100, "x" * 100),
    (" " * 30 + "x" * 100 + "\t" * 30, "x" * 100),
    (EMOJI * 100, EMOJI * 100),
    ("caf\u00e9 \u4e2d", "caf\u00e9 \u4e2d"),
]


@pytest.mark.parametrize(("sent", "stored"), VALID_TITLES, ids=[f"t{i}" for i in range(8)])
def test_create_title_is_trimmed_and_stored_trimmed(client, alice, sent, stored):
    resp = client.post(lists_url(), headers=alice, json={"title": sent})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["title"] == stored
    assert get_list(client, alice, resp.get_json()["id"]).get_json()["title"] == stored


COLORS = [
    (None, None, "null"),
    ("#3b82f6", "#3b82f6", "lower"),
    ("#3B82F6", "#3b82f6", "upper"),
    ("#AbCdEf", "#abcdef", "mixed"),
    ("#000000", "#000000", "black"),
]


@pytest.mark.parametrize(("sent", "stored"), [c[:2] for c in COLORS], ids=[c[2] for c in COLORS])
def test_create_color_is_null_or_rrggbb_stored_lower_case(client, alice, sent, stored):
    resp = client.post(lists_url(), headers=alice, json={"title": "c", "color": sent})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["color"] == stored
    assert get_list(client, alice, resp.get_json()["id"]).get_json()["color"] == stored


def test_create_color_defaults_to_null(client, alice):
    assert new_list(client, alice, "no colour")["color"] is None


T_TEXT = "2020-01-01T00:00:00Z"
INVALID_CREATES = [
    *[({"title": t}, "title") for t in ("", "   ", "\t\r\n", "x" * 101, "  " + "x" * 101 + " ")],
    *[({"title": t}, "title") for t in (EMOJI * 101, None, 5, ["a"], {"t": "a"}, "a\x00b")],
    ({}, "title"),
    ({"color": "#ffffff"}, "title"),
    *[({"title": "ok", "color": c}, "color") for c in ("red", "#fff", "3b82f6", "#3b82f", "")],
    *[({"title": "ok", "color": c}, "color") for c in ("#3b82f6f", "#3b82f6ff", "#gggggg")],
    *[({"title": "ok", "color": c}, "color") for c in ("#3b82f6\n", " #3b82f6", 3900150, True)],
    *[({"title": "ok", "color": c}, "color") for c in (["#000000"], "rgb(0,0,0)", "#3b82f6 ")],
    ({"title": "ok", "id": 123}, "id"),
    ({"title": "ok", "user_id": BOB}, "user_id"),
    ({"title": "ok", "is_default": True}, "is_default"),
    ({"title": "ok", "is_default": False}, "is_default"),
    ({"title": "ok", "position": "a0"}, "position"),
    ({"title": "ok", "open_count": 0}, "open_count"),
    ({"title": "ok", "created_at": T_TEXT}, "created_at"),
    ({"title": "ok", "updated_at": T_TEXT}, "updated_at"),
    ({"title": "ok", "colour": "#000000"}, "colour"),
    ({"title": "ok", "list_id": 1}, "list_id"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_CREATES, ids=_ids(INVALID_CREATES))
def test_create_invalid_body_is_422_and_creates_nothing(client, alice, body, field):
    before = all_lists(client, alice)
    resp = client.post(lists_url(), headers=alice, json=body)
    assert_422(resp, "json", field)
    assert "Location" not in resp.headers
    assert all_lists(client, alice) == before


# --------------------------------------------------------------------------- update (PUT)

UPDATES = [
    ({"title": "  Food  "}, {"title": "Food"}, "title"),
    ({"color": "#ABCDEF"}, {"color": "#abcdef"}, "color"),
    ({"color": None}, {"color": None}, "color-null"),
    ({"title": "Both", "color": "#123456"}, {"title": "Both", "color": "#123456"}, "both"),
]


@pytest.mark.parametrize(("sent", "changed"), [u[:2] for u in UPDATES], ids=[u[2] for u in UPDATES])
def test_put_changes_the_fields_sent_and_moves_updated_at(client, alice, sent, changed):
    made = new_list(client, alice, "Groceries", color="#3b82f6")
    before = get_list(client, alice, made["id"])
    resp = client.put(lists_url(list_id=made["id"]), headers=alice, json=sent)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    expected = {**made, **changed}
    assert_list(body, **{k: v for k, v in expected.items() if k != "updated_at"})
    assert parse_time(body["updated_at"]) > parse_time(made["updated_at"])
    assert body["created_at"] == made["created_at"]
    after = get_list(client, alice, made["id"])
    assert after.get_json() == body
    assert etag_of(resp) == etag_of(after) != etag_of(before)


def test_put_with_the_values_it_has_still_answers_the_list(client, alice):
    made = new_list(client, alice, "Same", color="#000000")
    resp = client.put(lists_url(list_id=made["id"]), headers=alice, json={"title": "Same"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_list(resp.get_json(), id=made["id"], title="Same", color="#000000")


INVALID_UPDATES = [
    ({}, "_schema"),
    *[({"title": t}, "title") for t in ("", "   ", "x" * 101, None, 5, "a\x00b")],
    *[({"color": c}, "color") for c in ("red", "#fff", "#3b82f6\n", "", 5)],
    ({"is_default": True}, "is_default"),
    ({"is_default": False}, "is_default"),
    ({"position": "a0"}, "position"),
    ({"open_count": 3}, "open_count"),
    ({"id": 1}, "id"),
    ({"user_id": BOB}, "user_id"),
    ({"created_at": T_TEXT}, "created_at"),
    ({"updated_at": T_TEXT}, "updated_at"),
    ({"title": "ok", "colour": "#000000"}, "colour"),
    ({"title": "ok", "position": "a0"}, "position"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_UPDATES, ids=_ids(INVALID_UPDATES))
def test_put_invalid_body_is_422_and_changes_nothing(client, alice, body, field):
    made = new_list(client, alice, "Groceries", color="#3b82f6")
    before = get_list(client, alice, made["id"])
    resp = client.put(lists_url(list_id=made["id"]), headers=alice, json=body)
    assert_422(resp, "json", field)
    after = get_list(client, alice, made["id"])
    assert after.get_json() == before.get_json()
    assert etag_of(after) == etag_of(before)


# --------------------------------------------------------------------------- delete


def test_delete_list_deletes_it_with_its_tasks_and_subtasks_only(client, alice):
    doomed = new_list(client, alice, "Doomed")
    kept = new_list(client, alice, "Kept")
    top = create(client, alice, title="top", list_id=doomed["id"])
    sub = create(client, alice, title="sub", parent_id=top["id"])
    subsub = create(client, alice, title="subsub", parent_id=sub["id"], completed=True)
    assert sub["list_id"] == subsub["list_id"] == doomed["id"]
    other = create(client, alice, title="other list", list_id=kept["id"])
    in_default = create(client, alice, title="default list")

    resp = client.delete(lists_url(list_id=doomed["id"]), headers=alice)
    assert resp.status_code == 204, resp.get_data(as_text=True)
    assert resp.get_data() == b""

    assert_404(client.get(lists_url(list_id=doomed["id"]), headers=alice))
    assert doomed["id"] not in ids_of(all_lists(client, alice))
    for gone in (top, sub, subsub):
        assert_404(client.get(tasks_url(task_id=gone["id"]), headers=alice))
    for stays in (other, in_default):
        resp = client.get(tasks_url(task_id=stays["id"]), headers=alice)
        assert resp.status_code == 200
        assert resp.get_json() == stays
    assert task_count(client, alice) == 2
    assert client.get(tasks_url(query={"list_id": doomed["id"]}), headers=alice).get_json() == []
    assert open_count(client, alice, kept["id"]) == 1
    # Gone means gone: a second delete is the 404 of a list that does not exist.
    assert_404(client.delete(lists_url(list_id=doomed["id"]), headers=alice))


def test_delete_unknown_list_is_404(client, alice):
    made = new_list(client, alice)
    assert_404(client.delete(lists_url(list_id=made["id"] + 100000), headers=alice))
    assert made["id"] in ids_of(all_lists(client, alice))


# --------------------------------------------------------------------------- the 500-list limit


def test_500_lists_at_most_the_default_included(client, alice):
    default_list(client, alice)
    statuses = [
        client.post(lists_url(), headers=alice, json={"title": f"list {i}"}).status_code
        for i in range(MAX_LISTS - 1)
    ]
    assert statuses == [201] * (MAX_LISTS - 1)
    lists = all_lists(client, alice)  # no paging: all 500 in one answer
    assert len(lists) == MAX_LISTS

    resp = client.post(lists_url(), headers=alice, json={"title": "one too many"})
    body = assert_error(resp, 409, "Conflict", errors=False)
    assert str(MAX_LISTS) in body["message"], body
    assert "Location" not in resp.headers
    assert all_lists(client, alice) == lists

    # It is a count, not a counter: after a delete there is room for one more.
    assert client.delete(lists_url(list_id=lists[-1]["id"]), headers=alice).status_code == 204
    new_list(client, alice, "room again")
    assert_error(client.post(lists_url(), headers=alice, json={"title": "again"}), 409)
    assert len(all_lists(client, alice)) == MAX_LISTS


# --------------------------------------------------------------------------- Idempotency-Key


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def post_list(client, headers, body, key: str | None = None, user: str = ALICE):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(lists_url(user), headers=headers, json=body)


def assert_replay_of(resp, first) -> None:
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers.get("Idempotent-Replayed") == "true"
    assert resp.get_json() == first.get_json()
    assert resp.headers["Location"] == first.headers["Location"]
    assert resp.headers.get("ETag") == first.headers.get("ETag")


def test_list_create_same_key_same_body_replays_and_creates_nothing(client, alice):
    key = new_key()
    body = {"title": "Groceries", "color": "#3b82f6"}
    first = post_list(client, alice, body, key)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert "Idempotent-Replayed" not in first.headers
    made = assert_list(first.get_json(), title="Groceries")
    for _ in range(2):
        assert_replay_of(post_list(client, alice, body, key), first)
    lists = all_lists(client, alice)
    assert len(lists) == 2
    assert made["id"] in ids_of(lists)


@pytest.mark.parametrize(
    "again",
    [{"title": "  Groceries "}, {"title": "Groceries", "color": None}],
    ids=["untrimmed", "default-spelled-out"],
)
def test_list_create_same_body_once_validated_is_a_replay(client, alice, again):
    key = new_key()
    first = post_list(client, alice, {"title": "Groceries"}, key)
    assert first.status_code == 201
    assert_replay_of(post_list(client, alice, again, key), first)
    assert len(all_lists(client, alice)) == 2


@pytest.mark.parametrize(
    "other",
    [{"title": "Other"}, {"title": "Groceries", "color": "#000000"}],
    ids=["title", "color"],
)
def test_list_create_same_key_another_body_is_422(client, alice, other):
    key = new_key()
    first = post_list(client, alice, {"title": "Groceries"}, key)
    assert first.status_code == 201
    before = all_lists(client, alice)
    resp = post_list(client, alice, other, key)
    assert_error(resp, 422)
    assert "Idempotent-Replayed" not in resp.headers
    assert "Location" not in resp.headers
    assert all_lists(client, alice) == before
    assert_replay_of(post_list(client, alice, {"title": "Groceries"}, key), first)


def test_key_used_for_a_task_create_is_another_body_for_a_list_create(client, alice):
    key = new_key()
    task = client.post(tasks_url(), headers={**alice, "Idempotency-Key": key}, json={"title": "A"})
    assert task.status_code == 201
    before = all_lists(client, alice)
    resp = post_list(client, alice, {"title": "A"}, key)
    assert_error(resp, 422)
    assert "Location" not in resp.headers
    assert all_lists(client, alice) == before


def test_key_used_for_a_list_create_is_another_body_for_a_task_create(client, alice):
    key = new_key()
    assert post_list(client, alice, {"title": "A"}, key).status_code == 201
    resp = client.post(tasks_url(), headers={**alice, "Idempotency-Key": key}, json={"title": "A"})
    assert_error(resp, 422)
    assert "Location" not in resp.headers
    assert task_count(client, alice) == 0


def test_list_create_keys_are_per_user(client, alice, bob):
    key = new_key()
    alices = post_list(client, alice, {"title": "Shared name"}, key)
    bobs = post_list(client, bob, {"title": "Shared name"}, key, user=BOB)
    assert alices.status_code == bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs.headers
    assert bobs.get_json()["id"] != alices.get_json()["id"]
    assert bobs.get_json()["user_id"] == BOB


def test_list_create_malformed_key_is_422_under_headers(client, alice):
    resp = post_list(client, alice, {"title": "A"}, "x" * 256)
    assert_422(resp, "headers", "Idempotency-Key")
    assert len(all_lists(client, alice)) == 1


# --------------------------------------------------------------------------- move


def test_move_list_after_another_answers_the_list_and_its_new_etag(client, alice):
    default = default_list(client, alice)
    a, b, c = (new_list(client, alice, title) for title in ("A", "B", "C"))
    before = get_list(client, alice, c["id"])
    resp = move_list(client, alice, c["id"], {"after_id": a["id"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = assert_list(resp.get_json(), id=c["id"], title="C", created_at=c["created_at"])
    assert body["position"] != c["position"]
    assert parse_time(body["updated_at"]) > parse_time(c["updated_at"])
    after = get_list(client, alice, c["id"])
    assert after.get_json() == body
    assert etag_of(resp) == etag_of(after) != etag_of(before)
    assert ids_of(all_lists(client, alice)) == [default["id"], a["id"], c["id"], b["id"]]


@pytest.mark.parametrize("body", [{"after_id": None}, {}], ids=["null", "absent"])
def test_move_list_with_null_or_no_after_id_puts_it_first(client, alice, body):
    default = default_list(client, alice)
    a, b = new_list(client, alice, "A"), new_list(client, alice, "B")
    resp = move_list(client, alice, b["id"], body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["id"] == b["id"]
    assert ids_of(all_lists(client, alice)) == [b["id"], default["id"], a["id"]]


def test_move_list_after_the_last_puts_it_last(client, alice):
    default = default_list(client, alice)
    a, b = new_list(client, alice, "A"), new_list(client, alice, "B")
    assert move_list(client, alice, default["id"], {"after_id": b["id"]}).status_code == 200
    assert ids_of(all_lists(client, alice)) == [a["id"], b["id"], default["id"]]


def test_many_moves_keep_the_order_they_describe(client, alice):
    """Each move places the list right after the one named, whatever came before: checked
    against a model over random moves, then 60 moves into the same gap (where fractional
    keys grow fastest)."""
    order = ids_of(all_lists(client, alice)) + [new_list(client, alice, t)["id"] for t in "ABCD"]
    rng = random.Random(20261207)
    for _ in range(40):
        moved = rng.choice(order)
        after = rng.choice([None, *[i for i in order if i != moved]])
        assert move_list(client, alice, moved, {"after_id": after}).status_code == 200
        order.remove(moved)
        order.insert(0 if after is None else order.index(after) + 1, moved)
        assert ids_of(all_lists(client, alice)) == order
    first, x, y = order[0], order[1], order[2]
    for i in range(60):
        moved = (x, y)[i % 2]
        assert move_list(client, alice, moved, {"after_id": first}).status_code == 200
        order.remove(moved)
        order.insert(1, moved)
    assert ids_of(all_lists(client, alice)) == order


def test_move_list_after_id_not_one_of_your_other_lists_is_422(client, alice, bob):
    a, b = new_list(client, alice, "A"), new_list(client, alice, "B")
    bobs = new_list(client, bob, "Bob's", user=BOB)
    before_order = all_lists(client, alice)
    before = get_list(client, alice, a["id"])
    for after_id in (a["id"], bobs["id"], b["id"] + 100000, 0, -1, "abc", str(b["id"]), 1.5, True):
        resp = move_list(client, alice, a["id"], {"after_id": after_id})
        assert_422(resp, "json", "after_id")
    assert all_lists(client, alice) == before_order
    assert etag_of(get_list(client, alice, a["id"])) == etag_of(before)


def test_move_unknown_list_is_404(client, alice):
    made = new_list(client, alice, "A")
    assert_404(move_list(client, alice, made["id"] + 100000, {"after_id": None}))


# --------------------------------------------------------------------------- If-Match

WRITES = [  # method, suffix, body
    ("PUT", "", {"title": "changed"}),
    ("POST", "/move", {"after_id": None}),
    ("DELETE", "", None),
]
WRITE_IDS = ["put", "move", "delete"]


def write(client, headers, list_id, method, suffix, body, if_match=None, user=ALICE):
    if if_match is not None:
        headers = {**headers, "If-Match": if_match}
    kwargs = {} if body is None else {"json": body}
    return client.open(lists_url(user, list_id, suffix), method=method, headers=headers, **kwargs)


def two_lists(client, alice) -> tuple[dict, dict]:
    """A second list after a first, so that moving the second first changes the order."""
    return new_list(client, alice, "first"), new_list(client, alice, "second")


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("header", ["{etag}", "*", '"x", {etag}'], ids=["exact", "star", "listed"])
def test_if_match_current_etag_lets_the_write_through(client, alice, method, suffix, body, header):
    _, target = two_lists(client, alice)
    etag = etag_of(get_list(client, alice, target["id"]))
    resp = write(client, alice, target["id"], method, suffix, body, header.format(etag=etag))
    if method == "DELETE":
        assert resp.status_code == 204, resp.get_data(as_text=True)
        assert_404(client.get(lists_url(list_id=target["id"]), headers=alice))
        return
    assert resp.status_code == 200, resp.get_data(as_text=True)
    after = get_list(client, alice, target["id"])
    assert etag_of(resp) == etag_of(after) != etag
    assert resp.get_json() == after.get_json()
    if method == "PUT":
        assert after.get_json()["title"] == "changed"
    else:
        assert ids_of(all_lists(client, alice))[0] == target["id"]


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("kind", ["stale", "weak", "unknown", "stale-listed"])
def test_if_match_not_current_is_412_and_changes_nothing(client, alice, method, suffix, body, kind):
    _, target = two_lists(client, alice)
    task = create(client, alice, title="in the list", list_id=target["id"])
    old = etag_of(get_list(client, alice, target["id"]))
    renamed = client.put(lists_url(list_id=target["id"]), headers=alice, json={"title": "renamed"})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    current = get_list(client, alice, target["id"])
    etag = etag_of(current)
    assert etag != old
    header = {
        "stale": old,
        "weak": "W/" + etag,  # a weak tag never matches (strong comparison)
        "unknown": '"not-an-etag-of-this-list"',
        "stale-listed": f'{old}, "other"',
    }[kind]
    lists_before = all_lists(client, alice)
    resp = write(client, alice, target["id"], method, suffix, body, header)
    assert_error(resp, 412, "Precondition Failed", errors=False)
    after = get_list(client, alice, target["id"])
    assert after.get_json() == current.get_json()
    assert etag_of(after) == etag
    assert all_lists(client, alice) == lists_before
    assert client.get(tasks_url(task_id=task["id"]), headers=alice).status_code == 200


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("header", ["*", '"whatever"'])
def test_if_match_on_a_missing_list_is_still_404(client, alice, method, suffix, body, header):
    made = new_list(client, alice)
    resp = write(client, alice, made["id"] + 100000, method, suffix, body, header)
    assert_404(resp)


N = 8


def test_concurrent_list_puts_with_one_if_match_exactly_one_wins(client, alice, live_server):
    made = new_list(client, alice, "start")
    url = f"{live_server}{lists_url(list_id=made['id'])}"
    etag = requests.get(url, headers=alice, timeout=CONCURRENT_TIMEOUT).headers["ETag"]
    headers = {**alice, "If-Match": etag}

    def put(i: int) -> Callable[[], requests.Response]:
        return lambda: requests.put(
            url, headers=headers, json={"title": f"w{i}"}, timeout=CONCURRENT_TIMEOUT
        )

    responses = all_at_once([put(i) for i in range(N)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (N - 1), describe(responses)
    [winner] = [r for r in responses if r.status_code == 200]
    final = requests.get(url, headers=alice, timeout=CONCURRENT_TIMEOUT)
    assert final.json()["title"] == winner.json()["title"]
    assert final.headers["ETag"] == winner.headers["ETag"] != etag


# --------------------------------------------------------------------------- If-None-Match


def assert_304(resp, etag: str) -> None:
    assert resp.status_code == 304, resp.get_data(as_text=True)
    assert resp.get_data() == b""
    assert resp.headers.get("ETag") == etag


def test_get_lists_if_none_match_is_304_until_something_changes(client, alice):
    first = client.get(lists_url(), headers=alice)
    assert first.status_code == 200
    etag = etag_of(first)
    assert etag_of(client.get(lists_url(), headers=alice)) == etag
    for _ in range(2):
        assert_304(client.get(lists_url(), headers={**alice, "If-None-Match": etag}), etag)
    assert_304(client.get(lists_url(), headers={**alice, "If-None-Match": f'"x", {etag}'}), etag)
    new_list(client, alice, "A")
    resp = client.get(lists_url(), headers={**alice, "If-None-Match": etag})
    assert resp.status_code == 200
    assert [item["title"] for item in resp.get_json()] == ["Tasks", "A"]
    assert etag_of(resp) != etag


@pytest.mark.parametrize("alias", [False, True], ids=["id", "default"])
def test_get_list_if_none_match_is_304_until_it_changes(client, alice, alias):
    default = default_list(client, alice)
    list_id = "default" if alias else default["id"]
    etag = etag_of(get_list(client, alice, list_id))
    resp = client.get(lists_url(list_id=list_id), headers={**alice, "If-None-Match": etag})
    assert_304(resp, etag)
    renamed = client.put(lists_url(list_id=list_id), headers=alice, json={"title": "Inbox"})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    resp = client.get(lists_url(list_id=list_id), headers={**alice, "If-None-Match": etag})
    assert resp.status_code == 200
    assert resp.get_json()["title"] == "Inbox"
    assert etag_of(resp) != etag


def test_list_etags_change_when_open_count_does_and_only_then(client, alice, bob):
    groceries = new_list(client, alice, "Groceries")
    other = new_list(client, alice, "Other")

    def etags() -> tuple[str, str, dict[str, Any]]:
        one = get_list(client, alice, groceries["id"])
        return etag_of(one), etag_of(client.get(lists_url(), headers=alice)), one.get_json()

    one, many, shown = etags()

    # Nothing either answer shows changes: the ETags stay.
    create(client, bob, BOB, title="bob's")
    new_list(client, bob, "bob's", user=BOB)
    done = create(client, alice, title="done", list_id=groceries["id"], completed=True)
    renamed = client.put(tasks_url(task_id=done["id"]), headers=alice, json={"title": "renamed"})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    toggle(client, alice, done["id"], True)  # already completed
    assert client.delete(tasks_url(task_id=done["id"]), headers=alice).status_code == 204
    assert etags() == (one, many, shown)

    # open_count changes: both change, each time; updated_at does not (no title, colour or
    # position changed).
    # (Only "changed since the step before": a digest ETag may come back with the same body.)
    previous = (one, many)
    task = create(client, alice, title="open", list_id=groceries["id"])
    steps: list[tuple[Callable[[], Any], int]] = [
        (lambda: None, 1),  # the create above
        (lambda: toggle(client, alice, task["id"], True), 0),
        (lambda: toggle(client, alice, task["id"], False), 1),
        (lambda: client.delete(tasks_url(task_id=task["id"]), headers=alice), 0),
    ]
    for step, expected in steps:
        step()
        now_one, now_many, now_shown = etags()
        assert now_shown["open_count"] == expected, now_shown
        assert now_shown["updated_at"] == groceries["updated_at"], now_shown
        assert now_one != previous[0] and now_many != previous[1], expected
        previous = (now_one, now_many)

    # Another list's open_count: that list's answer and GET /lists change, this one's does not.
    one, many, shown = etags()
    create(client, alice, title="elsewhere", list_id=other["id"])
    now_one, now_many, now_shown = etags()
    assert (now_one, now_shown) == (one, shown)
    assert now_many != many


# --------------------------------------------------------------------------- open_count


def test_open_count_follows_creates_toggles_deletes_and_moves(client, alice):
    home = new_list(client, alice, "Home")
    work = new_list(client, alice, "Work")

    def counts() -> tuple[int, int]:
        return open_count(client, alice, home["id"]), open_count(client, alice, work["id"])

    assert counts() == (0, 0)
    parent = create(client, alice, title="parent", list_id=home["id"])
    assert counts() == (1, 0)
    create(client, alice, title="done already", list_id=home["id"], completed=True)
    assert counts() == (1, 0)
    child = create(client, alice, title="child", parent_id=parent["id"])
    grandchild = create(client, alice, title="grandchild", parent_id=child["id"])
    assert counts() == (3, 0)  # subtasks included, all levels
    toggle(client, alice, grandchild["id"], True)
    assert counts() == (2, 0)
    toggle(client, alice, parent["id"], True)  # completes its open subtasks too
    assert counts() == (0, 0)
    toggle(client, alice, grandchild["id"], False)  # reopens its ancestors too
    assert counts() == (3, 0)
    put = client.put(tasks_url(task_id=child["id"]), headers=alice, json={"completed": True})
    assert put.status_code == 200  # completes the grandchild, leaves the parent open
    assert counts() == (1, 0)
    loose = create(client, alice, title="loose", list_id=home["id"])
    assert counts() == (2, 0)
    move_task(client, alice, loose["id"], {"list_id": work["id"]})
    assert counts() == (1, 1)
    toggle(client, alice, child["id"], False)
    assert counts() == (2, 1)
    move_task(client, alice, parent["id"], {"list_id": work["id"]})  # with its subtasks
    assert counts() == (0, 3)
    assert client.delete(tasks_url(task_id=child["id"]), headers=alice).status_code == 204
    assert counts() == (0, 2)  # child gone with the grandchild
    cleared = client.delete(tasks_url(query="status=completed"), headers=alice)
    assert cleared.status_code == 200
    assert counts() == (0, 2)
    assert client.delete(tasks_url(task_id=parent["id"]), headers=alice).status_code == 204
    assert counts() == (0, 1)


# --------------------------------------------------------------------------- tasks in lists


def test_task_created_with_list_id_lands_in_that_list(client, alice):
    work = new_list(client, alice, "Work")
    task = create(client, alice, title="in work", list_id=work["id"])
    assert task["list_id"] == work["id"]
    assert task["parent_id"] is None
    fetched = client.get(tasks_url(task_id=task["id"]), headers=alice).get_json()
    assert fetched["list_id"] == work["id"]
    listed = client.get(tasks_url(query={"list_id": work["id"]}), headers=alice).get_json()
    assert [t["id"] for t in listed] == [task["id"]]
    assert open_count(client, alice, work["id"]) == 1
    assert default_list(client, alice)["open_count"] == 0


@pytest.mark.parametrize(
    "kind", ["bobs", "unknown", "zero", "negative", "text", "numeric-text", "bool", "float"]
)
def test_task_create_with_a_list_id_not_yours_is_422(client, alice, bob, kind):
    bobs = new_list(client, bob, "Bob's", user=BOB)
    value = {
        "bobs": bobs["id"],
        "unknown": bobs["id"] + 100000,
        "zero": 0,
        "negative": -1,
        "text": "abc",
        "numeric-text": str(default_list(client, alice)["id"]),  # an id, but not an integer
        "bool": True,
        "float": 1.5,
    }[kind]
    resp = client.post(tasks_url(), headers=alice, json={"title": "t", "list_id": value})
    assert_422(resp, "json", "list_id")
    assert "Location" not in resp.headers
    assert task_count(client, alice) == 0
    assert task_count(client, bob, BOB) == 0


# --------------------------------------------------------------------------- isolation

LIST_ROUTES = [  # method, suffix, body; "{id}" is filled in with a list id
    ("GET", "", None, "get"),
    ("PUT", "", {"title": "mine now"}, "put"),
    ("DELETE", "", None, "delete"),
    ("POST", "/move", {"after_id": None}, "move"),
]
ROUTE_ARGS = [r[:3] for r in LIST_ROUTES]
ROUTE_IDS = [r[3] for r in LIST_ROUTES]


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTE_ARGS, ids=ROUTE_IDS)
@pytest.mark.parametrize("target", ["id", "default"])
def test_another_users_path_is_403_and_changes_nothing(
    client, alice, bob, method, suffix, body, target
):
    made = new_list(client, alice, "Alice's")
    list_id = made["id"] if target == "id" else "default"
    before = all_lists(client, alice)
    kwargs = {} if body is None else {"json": body}
    resp = client.open(lists_url(ALICE, list_id, suffix), method=method, headers=bob, **kwargs)
    assert_error(resp, 403, "Forbidden", errors=False)
    assert all_lists(client, alice) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_users_lists_collection_is_403(client, alice, bob, method):
    before = all_lists(client, alice)
    kwargs = {"json": {"title": "sneaky"}} if method == "POST" else {}
    resp = client.open(lists_url(ALICE), method=method, headers=bob, **kwargs)
    assert_error(resp, 403, "Forbidden", errors=False)
    assert all_lists(client, alice) == before


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTE_ARGS, ids=ROUTE_IDS)
def test_a_foreign_list_id_on_your_own_path_is_the_404_of_a_missing_one(
    client, alice, bob, method, suffix, body
):
    made = new_list(client, alice, "Alice's")
    before = all_lists(client, alice)
    kwargs = {} if body is None else {"json": body}
    foreign = client.open(lists_url(BOB, made["id"], suffix), method=method, headers=bob, **kwargs)
    missing = client.open(
        lists_url(BOB, made["id"] + 100000, suffix), method=method, headers=bob, **kwargs
    )
    assert assert_404(foreign) == assert_404(missing)
    assert all_lists(client, alice) == before


def test_get_lists_never_shows_another_users_lists(client, alice, bob):
    mine = [new_list(client, alice, t) for t in ("A", "B")]
    alices_default = default_list(client, alice)
    bobs = all_lists(client, bob, BOB)
    assert len(bobs) == 1 and bobs[0]["is_default"] and bobs[0]["user_id"] == BOB
    assert not set(ids_of(bobs)) & {alices_default["id"], *ids_of(mine)}
    assert get_list(client, bob, "default", BOB).get_json() == bobs[0]


BAD_LIST_IDS = ["0", "-1", "abc", "01", "1.5", "1e3", "9223372036854775808", "9" * 25]
BAD_LIST_IDS += ["Default", "DEFAULT", "default1", "%20default"]


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTE_ARGS, ids=ROUTE_IDS)
@pytest.mark.parametrize("list_id", BAD_LIST_IDS)
def test_list_id_neither_a_positive_integer_nor_default_is_404(
    client, alice, method, suffix, body, list_id
):
    before = all_lists(client, alice)
    kwargs = {} if body is None else {"json": body}
    resp = client.open(lists_url(ALICE, list_id, suffix), method=method, headers=alice, **kwargs)
    assert_404(resp)
    assert all_lists(client, alice) == before


def test_trailing_slash_is_served_as_if_absent(client, alice):
    made = new_list(client, alice, "A")
    collection = client.get(lists_url() + "/", headers=alice)
    assert collection.status_code == 200
    assert collection.get_json() == all_lists(client, alice)
    one = client.get(lists_url(list_id=made["id"]) + "/", headers=alice)
    assert one.status_code == 200
    assert one.get_json() == made
