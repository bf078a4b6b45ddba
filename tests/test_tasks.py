"""The six task routes against the contract (docs/api.md, "A task" and "Routes").

Not here: the token validity matrix, generic error pages, concurrency, migrations, OpenAPI.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from conftest import ALICE, BOB, tasks_url
from fractional_indexing import generate_n_keys_between
from sqlalchemy import insert, select, update
from support import assert_error, assert_task

from app.models import Task, User, db

TASKS = Task.__table__
USERS = User.__table__
T0 = datetime(2020, 1, 1, tzinfo=UTC)
T0_TEXT = "2020-01-01T00:00:00.000000Z"
LINK_RE = re.compile(r'<([^>]*)>;\s*rel="([^"]+)"')

# --------------------------------------------------------------------------- helpers


def send(client, method: str, url: str, headers: dict, body: Any = None):
    """``body``: None (no body), bytes (raw JSON text), (content_type, bytes), or a JSON value."""
    if isinstance(body, bytes):
        body = ("application/json", body)
    if isinstance(body, tuple):
        headers = {**headers, "Content-Type": body[0]}
        return client.open(url, method=method, headers=headers, data=body[1])
    kwargs = {} if body is None else {"json": body}
    return client.open(url, method=method, headers=headers, **kwargs)


def snapshot(app) -> list[dict[str, Any]]:
    """Every task row, straight from the database."""
    with app.app_context():
        rows = db.session.execute(select(TASKS).order_by(TASKS.c.id)).mappings()
        result = [dict(r) for r in rows]
        db.session.remove()
    return result


def set_row(app, task_id: int, **values: Any) -> None:
    with app.app_context():
        db.session.execute(update(TASKS).where(TASKS.c.id == task_id).values(**values))
        db.session.commit()
        db.session.remove()


def assert_422(resp, location: str, field: str) -> None:
    body = assert_error(resp, 422, "Unprocessable Entity")
    assert list(body["errors"]) == [location], body
    assert isinstance(body["errors"][location].get(field), list), body
    assert body["errors"][location][field], body


def assert_404(resp) -> None:
    assert_error(resp, 404, "Not Found", errors=False)


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def links(resp) -> dict[str, dict[str, Any]]:
    """rel -> {"path": ..., "query": {name: [values]}} from the Link header."""
    result = {}
    for url, rel in LINK_RE.findall(resp.headers["Link"]):
        parts = urlsplit(url)
        result[rel] = {"path": parts.path, "query": parse_qs(parts.query, keep_blank_values=True)}
    return result


def pagination(resp) -> dict[str, int]:
    return json.loads(resp.headers["X-Pagination"])


def meta(total: int, pages: int, page: int, prev: int | None, nxt: int | None) -> dict[str, int]:
    """The X-Pagination we expect; last_page is at least 1 (README: an empty list has page 1)."""
    result = {"total": total, "total_pages": pages, "first_page": 1}
    result |= {"last_page": max(pages, 1), "page": page}
    result |= {"previous_page": prev} if prev else {}
    return result | ({"next_page": nxt} if nxt else {})


def _ids(table: list[tuple[Any, str]]) -> list[str]:
    return [f"{field}-{i}" for i, (_, field) in enumerate(table)]


# --------------------------------------------------------------------------- create


def test_create_task_returns_201_task_and_location(client, alice):
    body_in = {"title": "buy milk", "description": "two litres"}
    resp = client.post(tasks_url(), headers=alice, json=body_in)
    assert resp.status_code == 201
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert_task(body, user_id=ALICE, title="buy milk", description="two litres", completed=False)
    assert body["created_at"] == body["updated_at"]
    location = resp.headers["Location"]
    assert urlsplit(urljoin("http://localhost/", location)).path == tasks_url(task_id=body["id"])
    fetched = client.get(location, headers=alice)
    assert fetched.status_code == 200
    assert fetched.get_json() == body


@pytest.mark.parametrize("completed", [None, True, False])
def test_create_task_completed_defaults_false_or_is_stored(client, alice, app, completed):
    body_in = {"title": "a"} if completed is None else {"title": "a", "completed": completed}
    resp = client.post(tasks_url(), headers=alice, json=body_in)
    assert resp.status_code == 201
    assert_task(resp.get_json(), title="a", description=None, completed=bool(completed))
    [row] = snapshot(app)
    assert (row["title"], row["description"], row["completed"]) == ("a", None, bool(completed))


def test_create_task_records_owner_with_token_claims(client, auth_headers, app):
    headers = auth_headers(ALICE, email="alice@example.com", name="Alice")
    assert client.post(tasks_url(), headers=headers, json={"title": "a"}).status_code == 201
    assert client.post(tasks_url(), headers=headers, json={"title": "b"}).status_code == 201
    with app.app_context():
        rows = db.session.execute(select(USERS.c.id, USERS.c.email, USERS.c.name))
        users = [tuple(r) for r in rows]
        db.session.remove()
    assert users == [(ALICE, "alice@example.com", "Alice")]
    assert {row["user_id"] for row in snapshot(app)} == {ALICE}


VALID_TITLES = [("a", "a"), ("  buy milk  ", "buy milk"), ("\t\n buy milk \r\n", "buy milk")]
VALID_TITLES += [("a" * 200, "a" * 200), (" " * 50 + "a" * 200 + " " * 50, "a" * 200)]
EMOJI = "\U0001f600"
VALID_TITLES += [(EMOJI * 200, EMOJI * 200), (" caf\u00e9 \u4e2d ", "caf\u00e9 \u4e2d")]
TITLE_IDS = [f"len{len(sent)}-{i}" for i, (sent, _) in enumerate(VALID_TITLES)]


@pytest.mark.parametrize(("sent", "stored"), VALID_TITLES, ids=TITLE_IDS)
def test_create_title_is_trimmed_and_stored_trimmed(client, alice, app, sent, stored):
    resp = client.post(tasks_url(), headers=alice, json={"title": sent})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["title"] == stored
    assert client.get(resp.headers["Location"], headers=alice).get_json()["title"] == stored
    assert snapshot(app)[0]["title"] == stored


DESCRIPTIONS = {"null": None, "empty": "", "x1000": "x" * 1000, "emoji1000": EMOJI * 1000}
DESCRIPTIONS["spaced"] = "  kept as sent  "


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
def test_create_description_accepts_null_and_up_to_1000_chars(client, alice, app, description):
    body_in = {"title": "a", "description": description}
    resp = client.post(tasks_url(), headers=alice, json=body_in)
    assert resp.status_code == 201
    assert resp.get_json()["description"] == description
    assert snapshot(app)[0]["description"] == description


# (body, field): every write taking task fields refuses these with errors.json.<field>.
INVALID_FIELDS = [
    *[({"title": t}, "title") for t in ("", "   ", "\t\r\n ", "a" * 201, "  " + "a" * 201 + " ")],
    *[({"title": t}, "title") for t in (EMOJI * 201, 123, ["a"], {"t": "a"}, None)],
    ({"title": "a\x00b"}, "title"),
    *[({"title": "ok", "description": d}, "description") for d in ("x" * 1001, 5, "a\x00")],
    *[({"title": "ok", "completed": c}, "completed") for c in ("true", "false", 1, 0, "yes", None)],
    *[({"title": "ok", k: v}, k) for k, v in (("id", 12345), ("user_id", BOB), ("x", None))],
    *[({"title": "ok", k: T0_TEXT}, k) for k in ("created_at", "updated_at", "completed_at")],
    # Raw JSON text: lone surrogates cannot be sent with json= from Python.
    (b'{"title": "a\\ud800"}', "title"),
    (b'{"title": "\\udc00"}', "title"),
    (b'{"title": "ok", "description": "x\\ud800y"}', "description"),
    *[(raw, "_schema") for raw in (b"[]", b'[{"title": "a"}]', b'"buy milk"', b"42", b"null")],
]


@pytest.mark.parametrize(("body", "field"), INVALID_FIELDS, ids=_ids(INVALID_FIELDS))
def test_create_invalid_body_is_422_and_stores_nothing(client, alice, app, body, field):
    resp = send(client, "POST", tasks_url(), alice, body)
    assert_422(resp, "json", field)
    assert "Location" not in resp.headers
    assert snapshot(app) == []


@pytest.mark.parametrize("body", [{}, {"description": "x", "completed": True}, b""])
def test_create_without_title_is_422(client, alice, app, body):
    assert_422(send(client, "POST", tasks_url(), alice, body), "json", "title")
    assert snapshot(app) == []


# --------------------------------------------------------------------------- get / delete


def test_get_task_returns_200_task(client, alice, make_task):
    task = make_task(ALICE, "read", description="d", completed=True)
    resp = client.get(tasks_url(task_id=task["id"]), headers=alice)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    expected = {"id": task["id"], "user_id": ALICE, "title": "read", "description": "d"}
    assert_task(resp.get_json(), completed=True, **expected)


def test_delete_task_returns_204_empty_and_removes_it(client, alice, app, make_task):
    task = make_task(ALICE, "gone")
    other = make_task(ALICE, "stays")
    resp = client.delete(tasks_url(task_id=task["id"]), headers=alice)
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert [row["id"] for row in snapshot(app)] == [other["id"]]
    assert_404(client.get(tasks_url(task_id=task["id"]), headers=alice))
    assert_404(client.delete(tasks_url(task_id=task["id"]), headers=alice))


# --------------------------------------------------------------------------- update (PUT)

PUT_CHANGES = [{"title": "  new title  "}, {"description": "new"}, {"description": None}]
PUT_CHANGES += [{"completed": True}, {"title": "new", "description": None, "completed": True}]


@pytest.mark.parametrize("changes", PUT_CHANGES)
def test_put_changes_only_given_fields(client, alice, app, make_task, changes):
    task = make_task(ALICE, "old", description="keep me", completed=False)
    set_row(app, task["id"], created_at=T0, updated_at=T0)
    expected = {"title": "old", "description": "keep me", "completed": False, **changes}
    expected["title"] = expected["title"].strip()
    resp = client.put(tasks_url(task_id=task["id"]), headers=alice, json=changes)
    assert resp.status_code == 200
    body = resp.get_json()
    assert_task(body, id=task["id"], user_id=ALICE, created_at=T0_TEXT, **expected)
    assert parse_time(body["updated_at"]) > T0
    assert client.get(tasks_url(task_id=task["id"]), headers=alice).get_json() == body
    [row] = snapshot(app)
    assert {k: row[k] for k in expected} == expected


@pytest.mark.parametrize(("sent", "stored"), VALID_TITLES, ids=TITLE_IDS)
def test_put_title_is_trimmed_and_stored_trimmed(client, alice, app, make_task, sent, stored):
    task = make_task(ALICE, "old")
    resp = client.put(tasks_url(task_id=task["id"]), headers=alice, json={"title": sent})
    assert resp.status_code == 200
    assert resp.get_json()["title"] == stored
    assert snapshot(app)[0]["title"] == stored


PUT_INVALID = [({}, "_schema"), *INVALID_FIELDS, ({"description": "x" * 1001}, "description")]
PUT_INVALID += [({"completed": "yes"}, "completed"), ({"id": 1}, "id")]


@pytest.mark.parametrize(("body", "field"), PUT_INVALID, ids=_ids(PUT_INVALID))
def test_put_invalid_body_is_422_and_changes_nothing(client, alice, app, make_task, body, field):
    task = make_task(ALICE, "old", description="keep me")
    before = snapshot(app)
    assert_422(send(client, "PUT", tasks_url(task_id=task["id"]), alice, body), "json", field)
    assert snapshot(app) == before


# --------------------------------------------------------------------------- toggle (PATCH)


@pytest.mark.parametrize("body", [None, {}, b""])
def test_toggle_flips_completed_on_each_call(client, alice, app, make_task, body):
    task = make_task(ALICE, "flip")
    set_row(app, task["id"], created_at=T0, updated_at=T0)
    previous = T0
    for expected in (True, False, True):
        resp = send(client, "PATCH", tasks_url(task_id=task["id"], suffix="/complete"), alice, body)
        assert resp.status_code == 200
        result = resp.get_json()
        assert_task(result, id=task["id"], title="flip", completed=expected, created_at=T0_TEXT)
        assert parse_time(result["updated_at"]) > previous
        previous = parse_time(result["updated_at"])
        assert snapshot(app)[0]["completed"] is expected


@pytest.mark.parametrize("start", [True, False])
@pytest.mark.parametrize("value", [True, False])
def test_toggle_explicit_value_is_idempotent(client, alice, app, make_task, start, value):
    task = make_task(ALICE, "set", completed=start)
    set_row(app, task["id"], created_at=T0, updated_at=T0)
    url = tasks_url(task_id=task["id"], suffix="/complete")
    first = client.patch(url, headers=alice, json={"completed": value})
    assert first.status_code == 200
    assert_task(first.get_json(), completed=value, created_at=T0_TEXT)
    if start == value:  # nothing to change: updated_at stays
        assert first.get_json()["updated_at"] == T0_TEXT
    else:  # a real change moves it
        assert parse_time(first.get_json()["updated_at"]) > T0
    second = client.patch(url, headers=alice, json={"completed": value})
    assert second.status_code == 200
    assert second.get_json() == first.get_json()  # updated_at unchanged too
    assert snapshot(app)[0]["completed"] is value


TOGGLE_INVALID = [
    *[({"completed": c}, "completed") for c in ("yes", "true", 1, 0, None)],
    ({"done": True}, "done"),
    ({"completed": True, "title": "x"}, "title"),
    ({"completed": True, "updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
    *[(raw, "_schema") for raw in (b"[]", b"true", b'"yes"', b"null")],
]


@pytest.mark.parametrize(("body", "field"), TOGGLE_INVALID, ids=_ids(TOGGLE_INVALID))
def test_toggle_invalid_body_is_422_and_changes_nothing(client, alice, app, make_task, body, field):
    task = make_task(ALICE, "flip")
    before = snapshot(app)
    resp = send(client, "PATCH", tasks_url(task_id=task["id"], suffix="/complete"), alice, body)
    assert_422(resp, "json", field)
    assert snapshot(app) == before


# --------------------------------------------------------------------------- timestamps


def test_timestamps_are_iso8601_utc_with_z_on_every_route(client, alice):
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = client.post(tasks_url(), headers=alice, json={"title": "t"}).get_json()
    url = tasks_url(task_id=created["id"])
    bodies = [
        created,
        client.get(url, headers=alice).get_json(),
        client.put(url, headers=alice, json={"title": "u"}).get_json(),
        client.patch(url + "/complete", headers=alice).get_json(),
        *client.get(tasks_url(), headers=alice).get_json(),
    ]
    after = datetime.now(UTC) + timedelta(seconds=5)
    for body in bodies:
        for key in ("created_at", "updated_at"):
            assert before <= parse_time(body[key]) <= after
        assert body["created_at"] == created["created_at"]
        assert parse_time(body["updated_at"]) >= parse_time(body["created_at"])


# --------------------------------------------------------------------------- two users

# (method, path after /tasks with {id} for Alice's task, body): Bob sends them on Alice's path.
FOREIGN_REQUESTS = [
    ("GET", "", None),
    ("GET", "?status=bogus&sort=nope&order=up&page=0&page_size=501", None),
    *[("POST", "", b) for b in ({"title": "x"}, {"title": "", "user_id": BOB}, b"{not json")],
    ("POST", "", ("text/plain", b"hello")),
    *[("GET", s, None) for s in ("/{id}", "/abc", "/9223372036854775808")],
    *[("PUT", "/{id}", b) for b in ({"title": "x"}, {}, {"title": 5, "id": 1}, b"{not json")],
    *[("DELETE", s, None) for s in ("/{id}", "/0")],
    *[("PATCH", "/{id}/complete", b) for b in (None, {"completed": True}, {"completed": "yes"})],
]


@pytest.mark.parametrize(("method", "suffix", "body"), FOREIGN_REQUESTS)
def test_other_users_path_is_403_before_body_or_params(
    client, bob, app, make_task, method, suffix, body
):
    task = make_task(ALICE, "mine", description="private")
    before = snapshot(app)
    resp = send(client, method, tasks_url(ALICE) + suffix.format(id=task["id"]), bob, body)
    assert "errors" not in assert_error(resp, 403, "Forbidden")
    assert "private" not in resp.get_data(as_text=True)
    assert snapshot(app) == before


# (method, suffix, body): Alice sends them on her own path with Bob's task id.
FOREIGN_TASK_REQUESTS = [
    *[("GET", "", None), ("DELETE", "", None)],
    *[("PUT", "", b) for b in ({"title": "hacked"}, {"description": None, "completed": True})],
    *[("PATCH", "/complete", b) for b in (None, {"completed": True})],
]


@pytest.mark.parametrize(("method", "suffix", "body"), FOREIGN_TASK_REQUESTS)
def test_other_users_task_is_same_404_as_missing(
    client, alice, bob, app, make_task, method, suffix, body
):
    bobs = make_task(BOB, "bobs", description="secret")
    make_task(ALICE, "alices")
    bob_view = client.get(tasks_url(BOB, bobs["id"]), headers=bob).get_json()
    missing_id = max(row["id"] for row in snapshot(app)) + 1000
    missing = send(client, method, tasks_url(ALICE, missing_id, suffix), alice, body)
    foreign = send(client, method, tasks_url(ALICE, bobs["id"], suffix), alice, body)
    assert_404(missing)
    assert_404(foreign)
    assert foreign.get_json() == missing.get_json()
    assert "secret" not in foreign.get_data(as_text=True)
    after = client.get(tasks_url(BOB, bobs["id"]), headers=bob)
    assert after.status_code == 200
    assert after.get_json() == bob_view


def test_list_shows_only_own_tasks(client, alice, make_task):
    mine = [make_task(ALICE, t)["id"] for t in ("a", "b")]
    make_task(BOB, "c")
    resp = client.get(tasks_url(ALICE), headers=alice)
    assert resp.status_code == 200
    assert sorted(t["id"] for t in resp.get_json()) == sorted(mine)
    assert {t["user_id"] for t in resp.get_json()} == {ALICE}
    assert pagination(resp)["total"] == 2


# --------------------------------------------------------------------------- path ids

ODD_IDS = [
    *[str(n) for n in (2**63, 2**63 - 1, 10**30, 0, -1)],
    *["abc", "01", "0{id}", "+{id}", "{id}.0", "{id}abc", "%20{id}", "{id}%00", "%F0%9F%98%80"],
    "\u0661",  # ARABIC-INDIC DIGIT ONE: isdigit() but not ASCII
]
ID_METHODS = [("GET", "", None), ("PUT", "", {"title": "x"}), ("DELETE", "", None)]
ID_METHODS.append(("PATCH", "/complete", None))


@pytest.mark.parametrize(("method", "suffix", "body"), ID_METHODS)
@pytest.mark.parametrize("raw_id", ODD_IDS)
def test_odd_task_ids_are_404_never_500(
    client, alice, app, make_task, raw_id, method, suffix, body
):
    task = make_task(ALICE, "real")
    before = snapshot(app)
    url = tasks_url(ALICE) + "/" + raw_id.format(id=task["id"]) + suffix
    assert_404(send(client, method, url, alice, body))
    assert snapshot(app) == before


# --------------------------------------------------------------------------- list: order, filters


@pytest.fixture
def seeded(app, make_task) -> dict[str, int]:
    """Four tasks with ties on created_at, updated_at and title; returns name -> id."""
    spec = {  # name: (title, completed, created minutes, updated minutes)
        "a": ("delta", False, 1, 5),
        "b": ("alpha", True, 2, 2),
        "c": ("charlie", False, 2, 9),
        "d": ("alpha", True, 0, 5),
    }
    ids = {}
    for name, (title, completed, created, updated) in spec.items():
        ids[name] = make_task(ALICE, title, completed=completed)["id"]
        created_at, updated_at = T0 + timedelta(minutes=created), T0 + timedelta(minutes=updated)
        set_row(app, ids[name], created_at=created_at, updated_at=updated_at)
    return ids


LIST_CASES = [  # expected: names in the order listed
    ({}, "cbad"),
    ({"status": "all", "sort": "created", "order": "desc"}, "cbad"),
    ({"order": "asc"}, "dabc"),
    ({"sort": "created", "order": "asc"}, "dabc"),
    ({"sort": "updated"}, "cdab"),
    ({"sort": "updated", "order": "asc"}, "badc"),
    ({"sort": "title"}, "acdb"),
    ({"sort": "title", "order": "asc"}, "bdca"),
    ({"status": "pending"}, "ca"),
    ({"status": "completed"}, "bd"),
    ({"status": "completed", "sort": "title", "order": "asc"}, "bd"),
    ({"status": "completed", "sort": "title", "order": "desc"}, "db"),
    ({"status": "pending", "sort": "updated", "order": "asc"}, "ac"),
]


@pytest.mark.parametrize(("params", "expected"), LIST_CASES)
def test_list_filters_and_sorts_with_id_tiebreak(client, alice, seeded, params, expected):
    resp = client.get(tasks_url(), headers=alice, query_string=params)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert [t["id"] for t in body] == [seeded[n] for n in expected]
    for task in body:
        assert_task(task, user_id=ALICE)
    assert pagination(resp)["total"] == len(expected)


INVALID_QUERIES = [
    *[({"status": v}, "status") for v in ("bogus", "ALL", "", "done", "pending ")],
    *[({"sort": v}, "sort") for v in ("bogus", "id", "created_at", "title; DROP TABLE tasks", "")],
    *[({"order": v}, "order") for v in ("up", "DESC", "desc, id")],
    *[({"page": v}, "page") for v in ("0", "-1", "abc", "1.5", "")],
    *[({"page_size": v}, "page_size") for v in ("0", "501", "-5", "abc", "1e3")],
]


@pytest.mark.parametrize(("params", "param"), INVALID_QUERIES)
def test_list_invalid_query_value_is_422(client, alice, make_task, params, param):
    make_task(ALICE, "a")
    resp = client.get(tasks_url(), headers=alice, query_string=params)
    assert_422(resp, "query", param)
    assert "X-Pagination" not in resp.headers


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("status=pending&status=bogus", "status"),
        ("sort=title&sort=bogus", "sort"),
        ("order=asc&order=bogus", "order"),
        ("page_size=5&page_size=9999", "page_size"),
    ],
)
def test_list_repeated_param_with_unknown_value_is_422(client, alice, make_task, query, param):
    make_task(ALICE, "a")
    assert_422(client.get(tasks_url() + "?" + query, headers=alice), "query", param)


# --------------------------------------------------------------------------- list: pagination


def test_list_empty_has_total_zero_and_one_page(client, alice, app):
    resp = client.get(tasks_url(), headers=alice)
    assert resp.status_code == 200
    assert resp.get_json() == []
    assert pagination(resp) == meta(0, 0, 1, None, None)
    rels = {rel: link["query"]["page"] for rel, link in links(resp).items()}
    assert rels == {"first": ["1"], "last": ["1"]}
    with app.app_context():  # reading creates no user row
        assert db.session.execute(select(USERS)).all() == []
        db.session.remove()


def _bulk_tasks(app, make_task, count: int) -> list[int]:
    """``count`` tasks of Alice's, all with the same timestamps; their ids, newest first."""
    first = make_task(ALICE, "t")
    row = {"user_id": ALICE, "title": "t", "completed": False, "created_at": T0, "updated_at": T0}
    row["list_id"] = first["list_id"]
    # The rest after the first in its list's manual order: keys as the service makes them.
    keys = generate_n_keys_between(first["position"], None, count - 1)
    with app.app_context():
        db.session.execute(insert(TASKS), [{**row, "position": key} for key in keys])
        db.session.execute(update(TASKS).values(created_at=T0, updated_at=T0))
        db.session.commit()
        db.session.remove()
    return sorted((row["id"] for row in snapshot(app)), reverse=True)


def test_list_default_page_size_is_100(client, alice, app, make_task):
    ids = _bulk_tasks(app, make_task, 101)
    first = client.get(tasks_url(), headers=alice)
    assert first.status_code == 200
    assert [t["id"] for t in first.get_json()] == ids[:100]
    assert pagination(first) == meta(101, 2, 1, None, 2)
    nxt = links(first)["next"]
    second = client.get(nxt["path"], headers=alice, query_string=nxt["query"])
    assert second.status_code == 200
    assert [t["id"] for t in second.get_json()] == ids[100:]


def test_list_page_size_500_is_allowed(client, alice, app, make_task):
    ids = _bulk_tasks(app, make_task, 3)
    resp = client.get(tasks_url(), headers=alice, query_string={"page_size": 500})
    assert resp.status_code == 200
    assert [t["id"] for t in resp.get_json()] == ids
    assert pagination(resp) == meta(3, 1, 1, None, None)


PAGES = [  # page, slice of the newest-first ids, previous_page, next_page
    (1, slice(0, 2), None, 2),
    (2, slice(2, 4), 1, 3),
    (3, slice(4, 5), 2, None),
    (4, slice(5, 5), 3, None),
    (10**6, slice(5, 5), 3, None),
]


@pytest.mark.parametrize(("page", "window", "prev", "nxt"), PAGES)
def test_list_pagination_headers_and_links(client, alice, app, make_task, page, window, prev, nxt):
    ids = _bulk_tasks(app, make_task, 5)
    params = {"status": "all", "sort": "created", "page_size": "2", "page": str(page)}
    resp = client.get(tasks_url(), headers=alice, query_string=params)
    assert resp.status_code == 200
    assert [t["id"] for t in resp.get_json()] == ids[window]
    assert pagination(resp) == meta(5, 3, page, prev, nxt)
    rels = {"first": 1, "last": 3, "prev": prev, "next": nxt}
    got = links(resp)
    assert {rel: int(link["query"]["page"][0]) for rel, link in got.items()} == {
        rel: n for rel, n in rels.items() if n
    }
    kept = {"status": ["all"], "sort": ["created"], "page_size": ["2"]}
    for link in got.values():
        assert link["path"] == tasks_url()
        assert len(link["query"].pop("page")) == 1
        assert link["query"] == kept


def test_list_pagination_links_keep_filters_and_follow_to_the_end(client, alice, seeded):
    params = {"status": "completed", "sort": "title", "order": "asc", "page_size": "1"}
    resp = client.get(tasks_url(), headers=alice, query_string=params)
    seen = []
    while True:
        assert resp.status_code == 200
        seen += [t["id"] for t in resp.get_json()]
        nxt = links(resp).get("next")
        if nxt is None:
            break
        kept = {k: v for k, v in nxt["query"].items() if k != "page"}
        assert kept == {k: [v] for k, v in params.items()}
        resp = client.get(nxt["path"], headers=alice, query_string=nxt["query"])
    assert seen == [seeded["b"], seeded["d"]]
    assert pagination(resp) == meta(2, 2, 2, 1, None)
