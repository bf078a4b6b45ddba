"""The changes feed, ``GET /api/{user_id}/changes``, through HTTP, sentence by sentence.

Contract: docs/api.md, "Sync: GET /api/{user_id}/changes" (the first load, the polls,
`data` and `etag` as `GET` answers them, deletions, "Everything shows up", the `410` and
the `422`), "Errors" (`410`), "Authentication" (`403` on another user's path); docs/sync.md,
"What the service does" (the order of the feed: the order of the writes) and "Why nothing is
skipped" (what changed while the first load paged comes with the first poll; an item may
come again, applying it twice changes nothing; a cursor older than the retention is a
`410`; deletions are kept a day longer). Where docs/api.md is silent, README.md, "Choices
where the contract is silent" (the changes feed) says what the service chose: lists before
tasks within one write and in the first load, each by id; deletions removed a day after
the retention, 100 at a time, oldest first; an answer, even an empty one, gives a fresh
cursor.

The helpers ``sync`` (apply every page to a store keyed by ``(type, id)``) and
``current_state`` (``GET /lists`` plus every page of ``GET /tasks``, keyed the same way)
are shared with tests/test_changes_sync.py: they take a Flask test client or anything with
the same ``get`` (tests/test_changes_sync.py wraps ``requests``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from conftest import ALICE, BOB, lists_url, make_app, migrate, tasks_url
from flask import Flask
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from support import assert_401, assert_error, assert_task
from test_beyond_support import STRONG_ETAG_RE, assert_422
from test_lists import assert_list
from test_subtasks import build, create, default_list, new_list

from app.changes.schemas import KINDS, Cursor
from app.config import ConfigError
from app.models import Deletion, db, utcnow

CAROL = "carol-mN8pL4vR7sT1wY6zA0bC5dE2fk3J9"  # a user no other test touches
PAGE_KEYS = {"changes", "cursor", "has_more"}
LIVE_KEYS = {"type", "id", "deleted", "etag", "data"}
DELETED_KEYS = {"type", "id", "deleted"}
DEFAULT_LIMIT, MAX_LIMIT = 500, 1000  # docs/api.md, "Sync": limit 1-1000 (default 500)
RETENTION_DAYS = 30  # docs/api.md, "Sync": "deletions are remembered 30 days"
DAY = 86400
KIND_ORDER = {"list": 0, "task": 1}  # README: within one write, lists come before tasks

Key = tuple[str, int]


def T(task_id: int) -> Key:  # noqa: N802 - reads as a label in the tables below
    return ("task", task_id)


def L(list_id: int) -> Key:  # noqa: N802
    return ("list", list_id)


# --------------------------------------------------------------------------- reading the feed


def changes_url(user: str = ALICE, cursor: str | None = None, limit: Any = None) -> str:
    query = {}
    if cursor is not None:
        query["cursor"] = cursor
    if limit is not None:
        query["limit"] = limit
    return f"/api/{user}/changes" + ("?" + urlencode(query) if query else "")


def body_of(resp: Any) -> Any:
    """The JSON body of a Flask test response or a ``requests`` response."""
    return resp.get_json() if hasattr(resp, "get_json") else resp.json()


def text_of(resp: Any) -> str:
    return resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp.text


def assert_item(item: Any, user: str = ALICE) -> dict[str, Any]:
    """One change: ``{"type", "id", "deleted": true}``, or the same with ``deleted`` false,
    an ``etag`` and the task or list as ``data`` (docs/api.md, "Sync")."""
    assert isinstance(item, dict), item
    assert item.get("type") in KIND_ORDER, item
    assert type(item.get("id")) is int and item["id"] > 0, item
    if item.get("deleted") is True:
        assert set(item) == DELETED_KEYS, item
        return item
    assert item.get("deleted") is False, item
    assert set(item) == LIVE_KEYS, item
    assert isinstance(item["etag"], str) and STRONG_ETAG_RE.match(item["etag"]), item
    if item["type"] == "task":
        assert_task(item["data"], id=item["id"], user_id=user)
    else:
        assert_list(item["data"], id=item["id"], user_id=user)
    return item


def get_page(
    client: Any, headers: dict[str, str], cursor: str | None = None, limit: Any = None, user=ALICE
) -> dict[str, Any]:
    """One answer of the feed, which must be 200: ``{"changes", "cursor", "has_more"}``,
    every item well formed, none twice in the page, at most ``limit`` of them."""
    resp = client.get(changes_url(user, cursor, limit), headers=headers)
    assert resp.status_code == 200, text_of(resp)
    body = body_of(resp)
    assert isinstance(body, dict) and set(body) == PAGE_KEYS, body
    assert type(body["has_more"]) is bool, body
    assert isinstance(body["cursor"], str) and body["cursor"], body
    assert isinstance(body["changes"], list), body
    for item in body["changes"]:
        assert_item(item, user)
    keys = [(item["type"], item["id"]) for item in body["changes"]]
    assert len(set(keys)) == len(keys), f"an item twice in one page: {keys}"
    assert len(keys) <= (DEFAULT_LIMIT if limit is None else int(limit)), len(keys)
    return body


def read_all(
    client: Any, headers: dict[str, str], cursor: str | None = None, limit: Any = None, user=ALICE
) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]]]:
    """Ask from ``cursor`` (None: the first load), following ``cursor`` while ``has_more``:
    every item in order, the cursor to poll with next, and the pages."""
    pages: list[dict[str, Any]] = []
    while True:
        page = get_page(client, headers, cursor, limit, user)
        pages.append(page)
        cursor = page["cursor"]
        if not page["has_more"]:
            break
        assert page["changes"], "has_more with an empty page"
        assert len(pages) < 10_000, "the feed never ends"
    items = [item for page in pages for item in page["changes"]]
    return items, cursor, pages


def first_load(client: Any, headers: dict[str, str], limit: Any = None, user=ALICE) -> str:
    """The first load, followed to its end: the cursor to poll with."""
    return read_all(client, headers, None, limit, user)[1]


def since(
    client: Any, headers: dict[str, str], cursor: str, limit: Any = None, user=ALICE
) -> tuple[dict[Key, dict[str, Any]], str]:
    """A poll with nothing written meanwhile: each item once ("each item once in its latest
    state"), every live one exactly what GET of it answers. The items by key, in order, and
    the next cursor."""
    items, cursor, _ = read_all(client, headers, cursor, limit, user)
    keys = [(item["type"], item["id"]) for item in items]
    assert len(set(keys)) == len(keys), f"an item twice in one poll: {keys}"
    assert_as_get_answers(client, headers, items, user)
    return dict(zip(keys, items, strict=True)), cursor


def assert_as_get_answers(client: Any, headers: dict[str, str], items, user=ALICE) -> None:
    """Each live item's ``data`` is exactly what GET of that task or list answers now, and
    its ``etag`` that answer's ETag; a deleted one is a 404."""
    for item in items:
        url = (tasks_url if item["type"] == "task" else lists_url)(user, item["id"])
        resp = client.get(url, headers=headers)
        if item["deleted"]:
            assert_error(resp, 404)
            continue
        assert resp.status_code == 200, (item, text_of(resp))
        assert body_of(resp) == item["data"], (item, body_of(resp))
        assert resp.headers.get("ETag") == item["etag"], (item, dict(resp.headers))


def deleted_flags(found: dict[Key, dict[str, Any]]) -> dict[Key, bool]:
    return {key: item["deleted"] for key, item in found.items()}


# --------------------------------------------------------------------------- a store in step


def apply(store: dict[Key, Any], items: list[dict[str, Any]]) -> None:
    """docs/api.md, "Sync": "upsert by `type` + `id`, or remove"."""
    for item in items:
        key = (item["type"], item["id"])
        if item["deleted"]:
            store.pop(key, None)
        else:
            store[key] = item["data"]


def sync(
    client: Any,
    headers: dict[str, str],
    store: dict[Key, Any],
    cursor: str | None = None,
    *,
    limit: Any = None,
    user: str = ALICE,
) -> str:
    """Apply every page from ``cursor`` (None: the first load, into an empty store) until
    ``has_more`` is false, as docs/api.md "Sync" tells a client to; the cursor to keep."""
    while True:
        page = get_page(client, headers, cursor, limit, user)
        apply(store, page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


def current_state(client: Any, headers: dict[str, str], user: str = ALICE) -> dict[Key, Any]:
    """What the user has: ``GET /lists`` and every page of ``GET /tasks``, by (type, id)."""
    resp = client.get(lists_url(user), headers=headers)
    assert resp.status_code == 200, text_of(resp)
    state: dict[Key, Any] = {("list", item["id"]): item for item in body_of(resp)}
    page = 1
    while True:
        query = {"page_size": 500, "page": page, "sort": "created", "order": "asc"}
        resp = client.get(tasks_url(user, query=query), headers=headers)
        assert resp.status_code == 200, text_of(resp)
        for task in body_of(resp):
            assert ("task", task["id"]) not in state, task
            state[("task", task["id"])] = task
        if page >= json.loads(resp.headers["X-Pagination"])["last_page"]:
            return state
        page += 1


def assert_in_step(client: Any, headers: dict[str, str], store: dict[Key, Any], user=ALICE):
    """The store equals what the user has, field for field."""
    state = current_state(client, headers, user)
    assert set(store) == set(state), (
        sorted(set(store) - set(state)),
        sorted(set(state) - set(store)),
    )
    for key, value in state.items():
        assert store[key] == value, (key, store[key], value)


# --------------------------------------------------------------------------- writing


def call(client: Any, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    """A write that must succeed (2xx); its JSON, or None for a 204."""
    kwargs = {} if body is None else {"json": body}
    resp = client.open(url, method=method, headers=headers, **kwargs)
    assert 200 <= resp.status_code < 300, (method, url, body, text_of(resp))
    return None if resp.status_code == 204 else body_of(resp)


def put_task(client, headers, task_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return call(client, "PUT", tasks_url(ALICE, task_id), headers, body)


def toggle(client, headers, task_id: int, completed: bool | None = None) -> dict[str, Any]:
    body = None if completed is None else {"completed": completed}
    return call(client, "PATCH", tasks_url(ALICE, task_id, "/complete"), headers, body)


def move_task(client, headers, task_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return call(client, "POST", tasks_url(ALICE, task_id, "/move"), headers, body)


def delete_task(client, headers, task_id: int) -> None:
    call(client, "DELETE", tasks_url(ALICE, task_id), headers)


def clear_completed(client, headers) -> int:
    return call(client, "DELETE", tasks_url(ALICE, query="status=completed"), headers)["deleted"]


def delete_list(client, headers, list_id: int) -> None:
    call(client, "DELETE", lists_url(ALICE, list_id), headers)


def ids_of(tree: dict[str, dict[str, Any]], names: str) -> list[int]:
    return [tree[name]["id"] for name in names.split()]


def cursor_fields(cursor: str) -> Cursor:
    """The fields of a cursor the feed gave (app.changes.schemas.Cursor, the app's own)."""
    decoded = Cursor.decode(cursor)
    assert decoded is not None, cursor
    return decoded


def aged(cursor: str, seconds: int) -> str:
    """``cursor`` as the feed would have written it ``seconds`` ago (its ``issued``)."""
    return dataclasses.replace(cursor_fields(cursor), issued=int(time.time()) - seconds).encode()


# --------------------------------------------------------------------------- the first load


def test_first_load_of_a_user_never_seen_is_exactly_their_default_list(client, auth_headers):
    carol = auth_headers(CAROL)
    items, cursor, pages = read_all(client, carol, user=CAROL)
    assert len(pages) == 1 and pages[0]["has_more"] is False, pages
    [only] = items
    assert only["type"] == "list" and only["deleted"] is False, only
    assert_list(only["data"], user_id=CAROL, is_default=True, title="Tasks", open_count=0)
    assert_as_get_answers(client, carol, items, CAROL)
    # No task, and no second default list made by what came next.
    assert current_state(client, carol, CAROL) == {L(only["id"]): only["data"]}
    found, _ = since(client, carol, cursor, user=CAROL)
    assert found == {}


def test_first_load_is_every_live_list_and_task_and_never_a_deleted_one(client, alice):
    work = new_list(client, alice, "Work")
    gone_list = new_list(client, alice, "Gone")
    tree = build(
        client, alice, {"A": {"A1": {"A11": {}}, "A2*": {}}, "B": {}, "C*": {}}, list_id=work
    )
    build(client, alice, {"G": {"G1": {}}}, list_id=gone_list)
    doomed = build(client, alice, {"D": {"D1": {}}, "E": {}})
    delete_task(client, alice, doomed["D"]["id"])  # and D1 with it
    delete_list(client, alice, gone_list)  # and G, G1
    toggle(client, alice, doomed["E"]["id"], True)
    clear_completed(client, alice)  # E, C, A2

    items, _, _ = read_all(client, alice)
    assert all(item["deleted"] is False for item in items), items
    store: dict[Key, Any] = {}
    apply(store, items)
    assert len(store) == len(items)
    assert_in_step(client, alice, store)
    assert set(store) == {L(default_list(client, alice)), L(work)} | {
        T(i) for i in ids_of(tree, "A A1 A11 B")
    }
    assert_as_get_answers(client, alice, items)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 12, 13, None])
def test_first_load_comes_in_pages_of_limit_while_has_more(client, alice, limit):
    """1 + 2 lists and 10 tasks: 13 items. Every page but the last is full and says
    has_more; following the cursors gives every item once: the lists, then the tasks,
    each by id (docs/sync.md, "Why nothing is skipped": the first read pages "by id";
    README: lists before tasks)."""
    lists = [new_list(client, alice, "Work"), new_list(client, alice, "Home")]
    tasks = [create(client, alice, list_id=lists[i % 2], title=f"t{i}")["id"] for i in range(10)]
    expected = sorted([L(i) for i in [default_list(client, alice), *lists]]) + [
        T(i) for i in sorted(tasks)
    ]
    items, _, pages = read_all(client, alice, limit=limit)
    size = DEFAULT_LIMIT if limit is None else limit
    assert [len(page["changes"]) for page in pages[:-1]] == [size] * (len(pages) - 1)
    assert 1 <= len(pages[-1]["changes"]) <= size
    assert [page["has_more"] for page in pages] == [True] * (len(pages) - 1) + [False]
    assert len(pages) == -(-len(expected) // size), [len(p["changes"]) for p in pages]
    assert [(item["type"], item["id"]) for item in items] == expected


def test_first_load_limit_defaults_to_500_and_goes_up_to_1000(client, alice, make_task):
    for i in range(DEFAULT_LIMIT):
        make_task(ALICE, f"t{i}")
    # 501 items: the default list and 500 tasks.
    first = get_page(client, alice)
    assert len(first["changes"]) == DEFAULT_LIMIT and first["has_more"] is True
    second = get_page(client, alice, first["cursor"])
    assert len(second["changes"]) == 1 and second["has_more"] is False
    whole = get_page(client, alice, limit=MAX_LIMIT)
    assert len(whole["changes"]) == DEFAULT_LIMIT + 1 and whole["has_more"] is False
    assert whole["changes"] == first["changes"] + second["changes"]


@pytest.mark.parametrize("limit", [1, MAX_LIMIT])
def test_limit_bounds_are_accepted(client, alice, limit):
    create(client, alice)
    body = get_page(client, alice, limit=limit)
    assert len(body["changes"]) == min(limit, 2)
    assert body["has_more"] is (limit == 1)


BAD_LIMITS = ["0", "1001", "x", "-1", "1.5", ""]


@pytest.mark.parametrize("with_cursor", [False, True], ids=["first-load", "poll"])
@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_limit_out_of_range_or_not_a_number_is_422_under_query_limit(
    client, alice, limit, with_cursor
):
    cursor = first_load(client, alice) if with_cursor else None
    resp = client.get(changes_url(ALICE, cursor, limit), headers=alice)
    body = assert_422(resp, "query", "limit")
    assert list(body["errors"]["query"]) == ["limit"], body


# --------------------------------------------------------------------------- polling


def test_poll_with_nothing_new_is_an_empty_page_whose_cursor_still_works(client, alice):
    task = create(client, alice)
    cursor = first_load(client, alice)
    empty = get_page(client, alice, cursor)
    assert empty["changes"] == [] and empty["has_more"] is False, empty
    again = get_page(client, alice, empty["cursor"])  # and the empty answer's cursor
    assert again["changes"] == [] and again["has_more"] is False, again
    renamed = put_task(client, alice, task["id"], {"title": "Renamed"})
    for old in (cursor, empty["cursor"], again["cursor"]):
        found, _ = since(client, alice, old)
        assert found[T(task["id"])]["data"] == renamed, found


LAST_WRITES: dict[str, Callable[[Any, dict[str, str], dict[str, int]], Any]] = {
    "create": lambda client, h, made: create(client, h),
    "update": lambda client, h, made: put_task(client, h, made["task"], {"title": "x"}),
    "delete-task": lambda client, h, made: delete_task(client, h, made["task"]),
    "clear-completed": lambda client, h, made: clear_completed(client, h),
    "delete-list": lambda client, h, made: delete_list(client, h, made["list"]),
}


def assert_nothing_new_after_the_first_load(client, headers, last_write: str) -> None:
    """The first load right after ``last_write``, then a poll: nothing changed since, so
    an empty page ("An answer with no changes gives the cursor back")."""
    work = new_list(client, headers, "Work")
    made = {"task": create(client, headers, completed=True)["id"], "list": work}
    create(client, headers, list_id=work)
    LAST_WRITES[last_write](client, headers, made)
    cursor = first_load(client, headers)
    page = get_page(client, headers, cursor)
    assert page["changes"] == [] and page["has_more"] is False, (last_write, page)


@pytest.mark.parametrize("last_write", LAST_WRITES)
def test_poll_right_after_the_first_load_is_empty_whatever_the_last_write_was(
    client, alice, last_write
):
    assert_nothing_new_after_the_first_load(client, alice, last_write)


@pytest.fixture
def english_client(database_url: str) -> Iterator[Any]:
    """A test client of an app on a PostgreSQL database whose collation is English (ICU
    en-US), as the official postgres image's default en_US.utf8 is: there, punctuation such
    as ``~`` sorts before letters, unlike in "C"."""
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "a database's collation is PostgreSQL's (this test runs in the PostgreSQL pass)"
        )
    server = make_url(database_url)
    name = f"{server.database}_changes_en"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            try:
                conn.execute(
                    text(
                        f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                        "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                    )
                )
            except sa.exc.SQLAlchemyError as exc:
                pytest.skip(f"this PostgreSQL cannot make an ICU en-US database: {exc}")
        url = server.set(database=name).render_as_string(hide_password=False)
        migrate(url)
        english = make_app(url)
        try:
            yield english.test_client()
        finally:
            with english.app_context():
                db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("last_write", LAST_WRITES)
def test_poll_right_after_the_first_load_is_empty_on_an_english_collation_too(
    english_client, alice, last_write
):
    """The feed's order (seq, kind, id) and its cursor's place must not depend on how the
    database sorts text: docs/api.md, "Sync": "what changed since, oldest first, each item
    once"."""
    assert_nothing_new_after_the_first_load(english_client, alice, last_write)


def test_empty_answer_gives_a_fresh_cursor(client, alice):
    """README: "an answer, even an empty one, gives a fresh cursor" (docs/api.md: "use
    the new one: it stays valid longer"): a cursor 29 days old answers a cursor of now,
    at the same place."""
    cursor = first_load(client, alice)
    old = aged(cursor, 29 * DAY)
    body = get_page(client, alice, old)
    assert body["changes"] == []
    fresh = cursor_fields(body["cursor"])
    assert abs(fresh.issued - time.time()) < 60, fresh
    task = create(client, alice)
    found, _ = since(client, alice, body["cursor"])
    assert T(task["id"]) in found


def test_poll_is_what_changed_since_the_cursor_and_nothing_before(client, alice):
    before = create(client, alice, title="before")
    cursor = first_load(client, alice)
    after = create(client, alice, title="after")
    found, cursor = since(client, alice, cursor)
    assert deleted_flags(found) == {T(after["id"]): False, L(after["list_id"]): False}
    assert T(before["id"]) not in found
    found, _ = since(client, alice, cursor)  # the last page's cursor: nothing again
    assert found == {}


def test_poll_with_the_same_cursor_twice_answers_the_same(client, alice):
    """A poll can be retried: the same items, and a cursor to the same place (given again,
    so its moment of issue may differ)."""
    cursor = first_load(client, alice)
    create(client, alice)
    first, again = get_page(client, alice, cursor), get_page(client, alice, cursor)
    assert (again["changes"], again["has_more"]) == (first["changes"], first["has_more"])
    place = dataclasses.replace(cursor_fields(first["cursor"]), issued=0)
    assert dataclasses.replace(cursor_fields(again["cursor"]), issued=0) == place


def test_items_come_in_the_order_of_the_writes_that_last_changed_them(client, alice):
    """docs/api.md, "Sync": "oldest first, each item once in its latest state"; docs/sync.md:
    the order (seq, kind, id), seq the write that last changed the row; README: within one
    write, lists before tasks, each by id. The same order however small the pages."""
    home = default_list(client, alice)
    work = new_list(client, alice, "Work")
    cursor = first_load(client, alice)
    writes: list[set[Key]] = []  # what each write changes, in order

    a = create(client, alice, title="a")
    writes.append({T(a["id"]), L(home)})
    b = create(client, alice, title="b", list_id=work)
    writes.append({T(b["id"]), L(work)})
    extra = new_list(client, alice, "Extra")
    writes.append({L(extra)})
    put_task(client, alice, a["id"], {"title": "a again"})
    writes.append({T(a["id"])})
    toggle(client, alice, b["id"])
    writes.append({T(b["id"]), L(work)})
    call(client, "PUT", lists_url(ALICE, home), alice, {"title": "Inbox"})
    writes.append({L(home)})
    c = create(client, alice, title="c", list_id=extra)
    d = create(client, alice, title="d", parent_id=c["id"])
    writes += [{T(c["id"]), L(extra)}, {T(d["id"]), L(extra)}]
    toggle(client, alice, c["id"])  # completes c and d
    writes.append({T(c["id"]), T(d["id"]), L(extra)})

    last = {key: index for index, keys in enumerate(writes) for key in keys}
    expected = sorted(last, key=lambda key: (last[key], KIND_ORDER[key[0]], key[1]))
    for limit in (None, 1, 2, 3):
        found, _ = since(client, alice, cursor, limit)
        assert list(found) == expected, (limit, list(found), expected)


def test_poll_comes_in_pages_of_limit_in_the_same_order(client, alice):
    cursor = first_load(client, alice)
    for i in range(7):
        task = create(client, alice, title=f"t{i}")
        if i % 2:
            toggle(client, alice, task["id"])
    whole, _, _ = read_all(client, alice, cursor)
    for limit in (1, 2, 4):
        items, _, pages = read_all(client, alice, cursor, limit)
        assert items == whole
        assert all(len(page["changes"]) == limit for page in pages[:-1]), pages
        assert [page["has_more"] for page in pages][-1] is False


def test_item_changed_several_times_between_polls_comes_once_in_its_latest_state(client, alice):
    task = create(client, alice)
    cursor = first_load(client, alice)
    put_task(client, alice, task["id"], {"title": "one"})
    put_task(client, alice, task["id"], {"title": "two", "tags": ["x"]})
    toggle(client, alice, task["id"])
    toggle(client, alice, task["id"])
    latest = put_task(client, alice, task["id"], {"priority": "high"})
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(task["id"]): False, L(task["list_id"]): False}
    assert found[T(task["id"])]["data"] == latest


# --------------------------------------------------------------------------- every kind of write

# Each test: a setup, the first load's cursor, one write, then the poll, which must be
# exactly the changes the write made (docs/api.md, "Everything shows up"), each as GET
# answers it (``since``), and nothing the write left alone ("what changed since").


def test_create_comes_with_its_list_whose_open_count_changed(client, alice):
    home = default_list(client, alice)
    cursor = first_load(client, alice)
    task = create(client, alice)
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(task["id"]): False, L(home): False}
    assert found[L(home)]["data"]["open_count"] == 1


def test_create_of_a_completed_task_leaves_the_lists_open_count_and_so_the_list(client, alice):
    cursor = first_load(client, alice)
    task = create(client, alice, completed=True)
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(task["id"]): False}


@pytest.mark.parametrize(
    "body",
    [{"title": "New"}, {"description": "x", "tags": ["a", "b"]}, {"due_date": None}],
    ids=["title", "description-tags", "due-date"],
)
def test_update_comes_as_the_task(client, alice, body):
    task = create(client, alice, due_date="2026-12-24T17:00:00Z")
    cursor = first_load(client, alice)
    put_task(client, alice, task["id"], body)
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(task["id"]): False}


def test_toggle_comes_as_the_task_and_its_list(client, alice):
    task = create(client, alice)
    cursor = first_load(client, alice)
    toggle(client, alice, task["id"])
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(task["id"]): False, L(task["list_id"]): False}
    assert found[L(task["list_id"])]["data"]["open_count"] == 0


@pytest.mark.parametrize("completed", [False, True])
def test_toggle_to_the_value_it_has_changes_nothing_so_nothing_comes(client, alice, completed):
    task = create(client, alice, completed=completed)
    cursor = first_load(client, alice)
    toggle(client, alice, task["id"], completed)
    found, _ = since(client, alice, cursor)
    assert found == {}


COMPLETE_WAYS = {
    "toggle": lambda client, h, task_id: toggle(client, h, task_id),
    "set": lambda client, h, task_id: toggle(client, h, task_id, True),
    "put": lambda client, h, task_id: put_task(client, h, task_id, {"completed": True}),
}


@pytest.mark.parametrize("way", COMPLETE_WAYS)
def test_completing_a_parent_brings_each_subtask_it_completed(client, alice, way):
    """docs/api.md, "Sync": "a parent's completion completes its subtasks: each one is a
    change"; the subtask already completed did not change, nor did the other tree."""
    work = new_list(client, alice, "Work")
    tree = build(
        client,
        alice,
        {"P": {"C1": {"G1": {}, "G2*": {}}, "C2*": {}, "C3": {}}, "Q": {}},
        list_id=work,
    )
    cursor = first_load(client, alice)
    COMPLETE_WAYS[way](client, alice, tree["P"]["id"])
    found, _ = since(client, alice, cursor)
    changed = {T(i): False for i in ids_of(tree, "P C1 G1 C3")}
    assert deleted_flags(found) == {**changed, L(work): False}
    assert all(found[key]["data"]["completed"] for key in changed)
    assert found[L(work)]["data"]["open_count"] == 1  # Q


REOPEN_WAYS = {
    "toggle": lambda client, h, task_id: toggle(client, h, task_id),
    "set": lambda client, h, task_id: toggle(client, h, task_id, False),
    "put": lambda client, h, task_id: put_task(client, h, task_id, {"completed": False}),
}


@pytest.mark.parametrize("way", REOPEN_WAYS)
def test_reopening_a_subtask_brings_each_ancestor_it_reopened(client, alice, way):
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {"P*": {"C*": {"G*": {}, "H*": {}}, "D*": {}}}, list_id=work)
    cursor = first_load(client, alice)
    REOPEN_WAYS[way](client, alice, tree["G"]["id"])
    found, _ = since(client, alice, cursor)
    changed = {T(i): False for i in ids_of(tree, "G C P")}
    assert deleted_flags(found) == {**changed, L(work): False}
    assert not any(found[key]["data"]["completed"] for key in changed)
    assert found[L(work)]["data"]["open_count"] == 3


def test_open_subtask_created_under_a_completed_task_brings_each_reopened_ancestor(client, alice):
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {"P*": {"C*": {}}, "Q*": {}}, list_id=work)
    cursor = first_load(client, alice)
    sub = create(client, alice, parent_id=tree["C"]["id"])
    found, _ = since(client, alice, cursor)
    expected = {T(sub["id"]): False, **{T(i): False for i in ids_of(tree, "C P")}}
    assert deleted_flags(found) == {**expected, L(work): False}


def test_move_within_a_list_comes_as_the_task_alone(client, alice):
    tree = build(client, alice, {"A": {}, "B": {}, "C": {"C1": {}}})
    cursor = first_load(client, alice)
    moved = move_task(client, alice, tree["C"]["id"], {"after_id": tree["A"]["id"]})
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(moved["id"]): False}


def test_move_in_place_is_a_change_too(client, alice):
    """README: "a move is a change even when the task lands where it was"."""
    tree = build(client, alice, {"A": {}, "B": {}})
    cursor = first_load(client, alice)
    move_task(client, alice, tree["B"]["id"], {"after_id": tree["A"]["id"]})
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {T(tree["B"]["id"]): False}


def test_move_to_another_list_brings_its_whole_subtree_and_both_lists(client, alice):
    """docs/api.md, "Sync": every task a tree rule changes, and lists whose open_count
    changed: the subtree's tasks all get the new list_id; both lists' counts change."""
    work = new_list(client, alice, "Work")
    home = new_list(client, alice, "Home")
    tree = build(client, alice, {"P": {"C1": {"G": {}}, "C2*": {}}, "Stay": {}}, list_id=work)
    build(client, alice, {"H": {}}, list_id=home)
    cursor = first_load(client, alice)
    move_task(client, alice, tree["P"]["id"], {"list_id": home})
    found, _ = since(client, alice, cursor)
    subtree = {T(i): False for i in ids_of(tree, "P C1 G C2")}
    assert deleted_flags(found) == {**subtree, L(work): False, L(home): False}
    assert all(found[key]["data"]["list_id"] == home for key in subtree)
    assert found[L(work)]["data"]["open_count"] == 1  # Stay
    assert found[L(home)]["data"]["open_count"] == 4  # H, P, C1, G


def test_move_of_an_open_task_under_a_completed_one_brings_each_reopened_ancestor(client, alice):
    work = new_list(client, alice, "Work")
    home = new_list(client, alice, "Home")
    done = build(client, alice, {"P*": {"C*": {}}, "Other*": {}}, list_id=work)
    task = create(client, alice, list_id=home)
    cursor = first_load(client, alice)
    move_task(client, alice, task["id"], {"parent_id": done["C"]["id"]})
    found, _ = since(client, alice, cursor)
    expected = {T(task["id"]): False, **{T(i): False for i in ids_of(done, "C P")}}
    assert deleted_flags(found) == {**expected, L(work): False, L(home): False}


def test_delete_brings_the_task_and_every_descendant_deleted(client, alice):
    work = new_list(client, alice, "Work")
    tree = build(
        client, alice, {"P": {"C1": {"G": {"GG": {}}}, "C2*": {}}, "Stay": {}}, list_id=work
    )
    cursor = first_load(client, alice)
    delete_task(client, alice, tree["P"]["id"])
    found, _ = since(client, alice, cursor)
    gone = {T(i): True for i in ids_of(tree, "P C1 G GG C2")}
    assert deleted_flags(found) == {**gone, L(work): False}
    assert found[L(work)]["data"]["open_count"] == 1
    for key in gone:
        assert set(found[key]) == DELETED_KEYS


def test_clear_completed_brings_each_cleared_task_deleted(client, alice):
    work = new_list(client, alice, "Work")
    done = build(client, alice, {"P*": {"C*": {"G*": {}}}, "Open": {"Sub*": {}}})
    more = build(client, alice, {"W*": {}, "Keep": {}}, list_id=work)
    cursor = first_load(client, alice)
    assert clear_completed(client, alice) == 5
    found, _ = since(client, alice, cursor)
    expected = {T(i): True for i in ids_of(done, "P C G Sub") + ids_of(more, "W")}
    assert deleted_flags(found) == expected  # no open count changed: no list


def test_list_create_comes_as_the_list(client, alice):
    cursor = first_load(client, alice)
    made = call(client, "POST", lists_url(ALICE), alice, {"title": "New", "color": "#AABBCC"})
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {L(made["id"]): False}


@pytest.mark.parametrize(
    "body",
    [
        {"title": "Renamed"},
        {"color": "#123abc"},
        {"color": None},
        {"title": "B", "color": "#ffffff"},
    ],
)
def test_list_rename_or_recolour_comes_as_the_list(client, alice, body):
    work = call(client, "POST", lists_url(ALICE), alice, {"title": "Work", "color": "#000000"})
    create(client, alice, list_id=work["id"])
    cursor = first_load(client, alice)
    call(client, "PUT", lists_url(ALICE, work["id"]), alice, body)
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {L(work["id"]): False}


def test_list_move_comes_as_the_list(client, alice):
    home = default_list(client, alice)
    a, b = new_list(client, alice, "A"), new_list(client, alice, "B")
    cursor = first_load(client, alice)
    call(client, "POST", lists_url(ALICE, b, "/move"), alice, {"after_id": None})
    call(client, "POST", lists_url(ALICE, home, "/move"), alice, {"after_id": a})
    found, _ = since(client, alice, cursor)
    assert deleted_flags(found) == {L(b): False, L(home): False}


def test_list_delete_brings_the_list_and_each_of_its_tasks_deleted(client, alice):
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {"P": {"C": {"G*": {}}}, "Q*": {}}, list_id=work)
    other = create(client, alice)
    cursor = first_load(client, alice)
    delete_list(client, alice, work)
    found, _ = since(client, alice, cursor)
    expected = {L(work): True, **{T(i): True for i in ids_of(tree, "P C G Q")}}
    assert deleted_flags(found) == expected
    assert T(other["id"]) not in found


REFUSED_WRITES = [  # (method, url of the task "T" or list "W", body, extra headers, status)
    ("PUT", "T", {"title": "x"}, {"If-Match": '"1.99.stale"'}, 412),
    ("PATCH", "T/complete", None, {"If-Match": '"1.99.stale"'}, 412),
    ("DELETE", "T", None, {"If-Match": '"1.99.stale"'}, 412),
    ("POST", "T/move", {"after_id": "T"}, {}, 422),
    ("POST", "T/move", {"parent_id": "T"}, {}, 422),
    ("PUT", "T", {"title": " "}, {}, 422),
    ("DELETE", "W", None, {"If-Match": '"1.99.stale"'}, 412),
    ("DELETE", "D", None, {}, 409),
]


@pytest.mark.parametrize(
    ("method", "where", "body", "extra", "status"),
    REFUSED_WRITES,
    ids=[f"{m}-{w}-{s}" for m, w, _, _, s in REFUSED_WRITES],
)
def test_refused_write_changes_nothing_so_nothing_comes(
    client, alice, method, where, body, extra, status
):
    work = new_list(client, alice, "Work")
    task = create(client, alice, list_id=work)
    names = {"T": tasks_url(ALICE, task["id"]), "W": lists_url(ALICE, work)}
    names["D"] = lists_url(ALICE, default_list(client, alice))
    target, _, suffix = where.partition("/")
    url = names[target] + (f"/{suffix}" if suffix else "")
    if isinstance(body, dict):
        body = {k: task["id"] if v == "T" else v for k, v in body.items()}
    cursor = first_load(client, alice)
    kwargs = {} if body is None else {"json": body}
    resp = client.open(url, method=method, headers={**alice, **extra}, **kwargs)
    assert_error(resp, status)
    found, _ = since(client, alice, cursor)
    assert found == {}


@pytest.mark.parametrize("kind", ["task", "list"])
def test_renumbered_siblings_each_come_with_their_new_position(client, alice, kind):
    """docs/api.md, "Sync": renumbered positions show up. As tests/test_move.py does, the
    last sibling moves right after the first, 400 times: past 64 characters (some 370
    moves, README) the set gets fresh keys. After each move the poll is the moved one and
    exactly the siblings whose position changed, each with its new position."""
    if kind == "task":
        work = new_list(client, alice, "Work")
        tree = build(client, alice, {name: {} for name in "FABCDEGH"}, list_id=work)
        order = ids_of(tree, " ".join("FABCDEGH"))

        def read() -> dict[Key, str]:
            query = {"list_id": work, "parent_id": "none", "sort": "position", "page_size": 500}
            resp = client.get(tasks_url(ALICE, query=query), headers=alice)
            assert resp.status_code == 200
            return {T(task["id"]): task["position"] for task in resp.get_json()}

        def move(item_id: int, after: int) -> None:
            move_task(client, alice, item_id, {"after_id": after})
    else:
        order = [default_list(client, alice)] + [new_list(client, alice, n) for n in "ABCDEGH"]

        def read() -> dict[Key, str]:
            resp = client.get(lists_url(ALICE), headers=alice)
            assert resp.status_code == 200
            return {L(item["id"]): item["position"] for item in resp.get_json()}

        def move(item_id: int, after: int) -> None:
            call(client, "POST", lists_url(ALICE, item_id, "/move"), alice, {"after_id": after})

    key = T if kind == "task" else L
    cursor = first_load(client, alice)
    positions = read()
    renumbered = 0
    for i in range(400):
        moved = order.pop()
        order.insert(1, moved)
        move(moved, order[0])
        now = read()
        assert list(now) == [key(item_id) for item_id in order], i  # in position order
        found, cursor = since(client, alice, cursor)
        changed = {k for k in now if now[k] != positions[k]} | {key(moved)}
        assert set(found) == changed, (i, sorted(found), sorted(changed))
        assert {k: found[k]["data"]["position"] for k in found} == {k: now[k] for k in found}
        renumbered += len(changed) > 2
        positions = now
    assert renumbered >= 1, "400 moves never renumbered the set: the test proves nothing"


# --------------------------------------------------------------------------- a store in step


def test_changes_made_while_the_first_load_pages_come_with_the_first_poll(client, alice):
    """docs/sync.md, "Why nothing is skipped": what changed while the client paged has a
    seq above the first read's watermark: the first poll brings it, deletions included;
    what the load already gave in a newer state comes again, and applying it twice changes
    nothing."""
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {f"T{i}": {} for i in range(8)}, list_id=work)
    store: dict[Key, Any] = {}
    page = get_page(client, alice, limit=3)  # the three lists... and some tasks
    apply(store, page["changes"])
    delivered = {key for key in store if key[0] == "task"}
    # Meanwhile: one already delivered and one not yet are changed; one of each deleted;
    # a new task and a new list.
    put_task(client, alice, tree["T0"]["id"], {"title": "changed after it was sent"})
    put_task(client, alice, tree["T6"]["id"], {"title": "changed before it was sent"})
    delete_task(client, alice, tree["T7"]["id"])
    late = create(client, alice, list_id=work, title="late")
    new_list(client, alice, "Late list")
    pages = 1
    cursor = page["cursor"]
    while page["has_more"]:
        page = get_page(client, alice, cursor, limit=3)
        apply(store, page["changes"])
        cursor = page["cursor"]
        pages += 1
        if pages == 2:
            delete_task(client, alice, tree["T1"]["id"])  # delivered on page 1 or 2
    assert T(tree["T0"]["id"]) in delivered and T(tree["T6"]["id"]) not in delivered, delivered
    cursor = sync(client, alice, store, cursor, limit=3)
    assert_in_step(client, alice, store)
    assert T(late["id"]) in store and T(tree["T7"]["id"]) not in store
    # And every item applied once more changes nothing.
    everything, _, _ = read_all(client, alice)
    apply(store, everything)
    assert_in_step(client, alice, store)


def test_applying_every_page_twice_changes_nothing(client, alice):
    """docs/api.md, "Sync": "An item may come again ...: applying it twice changes
    nothing"."""
    base = build(client, alice, {"A": {"A1": {}}, "B": {}, "C*": {}})
    store: dict[Key, Any] = {}
    cursor = sync(client, alice, store)
    put_task(client, alice, base["A"]["id"], {"title": "A2"})
    delete_task(client, alice, base["B"]["id"])
    toggle(client, alice, base["A1"]["id"])
    items, cursor, pages = read_all(client, alice, cursor, limit=2)
    for page in pages:
        apply(store, page["changes"])
        apply(store, page["changes"])
    apply(store, items)
    assert_in_step(client, alice, store)


def test_a_store_synced_after_every_kind_of_write_equals_what_the_user_has(client, alice):
    """The promise, without concurrency: after each write, a poll applied to the store
    keeps it equal to GET /lists plus every page of GET /tasks."""
    store: dict[Key, Any] = {}
    cursor = sync(client, alice, store, limit=2)
    work = new_list(client, alice, "Work")
    home = new_list(client, alice, "Home")
    tree = build(client, alice, {"P": {"C": {"G": {}}, "D*": {}}, "Q": {}}, list_id=work)
    steps: list[Callable[[], Any]] = [
        lambda: create(client, alice, title="top"),
        lambda: put_task(client, alice, tree["Q"]["id"], {"title": "Q2", "tags": ["t"]}),
        lambda: toggle(client, alice, tree["P"]["id"]),
        lambda: toggle(client, alice, tree["G"]["id"]),
        lambda: move_task(client, alice, tree["C"]["id"], {"list_id": home}),
        lambda: move_task(client, alice, tree["Q"]["id"], {"parent_id": tree["P"]["id"]}),
        lambda: call(client, "PUT", lists_url(ALICE, work), alice, {"color": "#abcdef"}),
        lambda: call(client, "POST", lists_url(ALICE, home, "/move"), alice, {"after_id": None}),
        lambda: toggle(client, alice, tree["Q"]["id"], True),
        lambda: clear_completed(client, alice),
        lambda: create(client, alice, title="x", list_id=work),
        lambda: delete_list(client, alice, work),
        lambda: delete_task(client, alice, tree["C"]["id"]),
    ]
    for step in steps:
        step()
        cursor = sync(client, alice, store, cursor, limit=2)
        assert_in_step(client, alice, store)
    fresh: dict[Key, Any] = {}
    sync(client, alice, fresh)
    assert fresh == store


# --------------------------------------------------------------------------- the cursor


def _reencoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("latin-1")).decode().rstrip("=")


def _swap(cursor: str, old: str, new: str) -> str:
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert old in text, text
    return _reencoded(text.replace(old, new, 1))


MALFORMED_CURSORS: dict[str, Callable[[str], str]] = {  # made from a real cursor
    "garbage": lambda real: "garbage",
    "empty": lambda real: "",
    "not-base64": lambda real: "%%%***",
    "json": lambda real: _reencoded('{"seq": 1}'),
    "first-character-changed": lambda real: ("N" if real[0] != "N" else "M") + real[1:],
    "truncated": lambda real: real[: len(real) // 2],
    "version-changed": lambda real: _swap(real, "1.", "2."),
    "mode-changed": lambda real: _swap(real, "1.d.", "1.x."),
    "seq-not-a-number": lambda real: _reencoded("1.d.abc.~.0." + str(int(time.time()))),
    "seq-negative": lambda real: _reencoded("1.d.-1.~.0." + str(int(time.time()))),
    "seq-past-64-bits": lambda real: _reencoded(f"1.d.{2**63}.~.0.{int(time.time())}"),
    "kind-unknown": lambda real: _reencoded("1.d.1.note.1." + str(int(time.time()))),
    "a-field-missing": lambda real: _reencoded("1.d.1.task." + str(int(time.time()))),
    "a-field-more": lambda real: _reencoded(f"1.d.1.task.1.{int(time.time())}.7"),
    "not-ascii": lambda real: _reencoded("1.d.1.t\xe2sk.1.1796640000"),
    "too-long-padding": lambda real: real + "=" * 200,
    "too-long": lambda real: "A" * 201,
}


@pytest.mark.parametrize("name", MALFORMED_CURSORS)
def test_malformed_cursor_is_422_under_query_cursor(client, alice, name):
    create(client, alice)
    real = first_load(client, alice)
    resp = client.get(changes_url(ALICE, MALFORMED_CURSORS[name](real)), headers=alice)
    body = assert_422(resp, "query", "cursor")
    assert list(body["errors"]["query"]) == ["cursor"], body


def test_cursor_past_everything_the_user_has_written_is_422(client, alice, bob):
    """docs/api.md, "Sync": "A `cursor` that is not one the feed gave is a `422`". Bob's
    cursor, after more writes than Alice has made, is past Alice's write counter: her feed
    never gave it (a client that kept the cursor of the user who logged out, say). Taking
    it would skip Alice's next changes without a word."""
    for i in range(5):
        create(client, bob, BOB, title=f"b{i}")
    bobs = first_load(client, bob, user=BOB)
    alices = first_load(client, alice)
    resp = client.get(changes_url(ALICE, bobs), headers=alice)
    if resp.status_code == 200:  # taken: say what it costs Alice
        task = create(client, alice)
        found, _ = since(client, alice, body_of(resp)["cursor"])
        cost = "her next change was lost" if T(task["id"]) not in found else "nothing was lost"
        pytest.fail(f"Bob's cursor was taken on Alice's feed (200), and {cost}: {bobs}")
    body = assert_422(resp, "query", "cursor")
    assert list(body["errors"]["query"]) == ["cursor"], body
    assert get_page(client, alice, alices)["changes"] == []


@pytest.mark.parametrize("mode", ["first-load", "poll"])
def test_cursor_older_than_the_retention_is_410_saying_start_again_without_a_cursor(
    client, alice, make_task, mode
):
    for i in range(3):
        make_task(ALICE, f"t{i}")
    if mode == "first-load":  # a cursor in the middle of the first load
        real = get_page(client, alice, limit=1)["cursor"]
    else:
        real = first_load(client, alice)
    old = aged(real, (RETENTION_DAYS + 1) * DAY)
    resp = client.get(changes_url(ALICE, old), headers=alice)
    body = assert_error(resp, 410, "Gone", errors=False)
    assert "without a cursor" in body["message"], body
    assert str(RETENTION_DAYS) in body["message"], body
    # Not a limit problem, not a shape problem: the same cursor, younger, is taken.
    get_page(client, alice, aged(real, (RETENTION_DAYS - 1) * DAY))


def test_retention_setting_moves_the_410(client, alice, extra_app):
    """CHANGES_RETENTION_DAYS (README, "Configuration"; docs/api.md: 30 days by default)."""
    short = extra_app(CHANGES_RETENTION_DAYS=1).test_client()
    real = first_load(client, alice)
    two_days = aged(real, 2 * DAY)
    get_page(client, alice, two_days)  # 30 days: taken
    body = assert_error(short.get(changes_url(ALICE, two_days), headers=alice), 410, errors=False)
    assert "without a cursor" in body["message"], body
    get_page(short, alice, aged(real, DAY // 2))


@pytest.mark.parametrize("days", [0, -1])
def test_retention_below_one_day_refuses_to_start(database_url, days):
    with pytest.raises(ConfigError, match="CHANGES_RETENTION_DAYS"):
        make_app(database_url, CHANGES_RETENTION_DAYS=days)


# --------------------------------------------------------------------------- whose changes


def test_bob_never_sees_alices_changes(client, alice, bob):
    mine = create(client, bob, BOB, title="bob's")
    theirs = build(client, alice, {"A": {"A1": {}}, "B": {}})
    bob_cursor = first_load(client, bob, user=BOB)
    items, _, _ = read_all(client, bob, user=BOB)
    assert {(i["type"], i["id"]) for i in items} == {T(mine["id"]), L(mine["list_id"])}
    new_list(client, alice, "Alice's")
    put_task(client, alice, theirs["A"]["id"], {"title": "x"})
    delete_task(client, alice, theirs["B"]["id"])
    found, _ = since(client, bob, bob_cursor, user=BOB)
    assert found == {}
    assert all(item["data"]["user_id"] == BOB for item in items)


def test_another_users_changes_are_403_and_no_token_is_401(client, alice, bob):
    create(client, alice)
    cursor = first_load(client, alice)
    for url in (changes_url(ALICE), changes_url(ALICE, cursor)):
        assert_error(client.get(url, headers=bob), 403, errors=False)
        assert_401(client.get(url))


# --------------------------------------------------------------------------- remembered deletions


def deletion_rows(app: Flask) -> dict[Key, Any]:
    """The ``deletions`` table: (kind, id) -> deleted_at."""
    table = Deletion.__table__
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(select(table.c.kind, table.c.id, table.c.deleted_at)).all()
    return {(KINDS[row.kind], row.id): row.deleted_at for row in rows}


def age_deletions(app: Flask, ages: dict[Key, timedelta]) -> None:
    """Arrange time: make these deletions as old as given (SQL, as the brief allows)."""
    table = Deletion.__table__
    now = utcnow()
    with app.app_context(), db.engine.begin() as conn:
        for (kind, item_id), age in ages.items():
            stored = {name: number for number, name in KINDS.items()}[kind]
            stmt = update(table).where(table.c.kind == stored, table.c.id == item_id)
            assert conn.execute(stmt.values(deleted_at=now - age)).rowcount == 1


TRIGGERS = {  # the service's own deletes, each of which removes old deletions
    "delete-task": lambda client, h, victims: delete_task(client, h, victims["task"]),
    "clear-completed": lambda client, h, victims: clear_completed(client, h),
    "delete-list": lambda client, h, victims: delete_list(client, h, victims["list"]),
}


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_deletions_past_retention_and_a_day_are_removed_by_a_later_delete(
    app, client, alice, trigger, extra_app
):
    """README: "Deletions are removed a day after that [30 days], by the service's own
    deletes ... the first delete a worker serves removes a batch"; docs/sync.md:
    "Deletions are kept a day longer than cursors are accepted". One 31 days and an hour
    old goes; one 30 and a half days old (past the retention, not the margin) stays, and
    so does a recent one: seen in the table and through a cursor made before all of
    them."""
    cursor = first_load(client, alice)
    old, margin, recent = (
        create(client, alice, title=n)["id"] for n in ("old", "margin", "recent")
    )
    for task_id in (old, margin, recent):
        delete_task(client, alice, task_id)
    age_deletions(
        app, {T(old): timedelta(days=31, hours=1), T(margin): timedelta(days=30, hours=12)}
    )
    victims = {"task": create(client, alice)["id"], "list": new_list(client, alice, "Doomed")}
    toggle(client, alice, victims["task"])  # for clear completed
    worker = extra_app().test_client()  # another worker: this delete is its first
    TRIGGERS[trigger](worker, alice, victims)
    rows = deletion_rows(app)
    assert T(old) not in rows, rows
    assert {T(margin), T(recent)} <= set(rows), rows
    found, _ = since(client, alice, cursor)
    assert T(old) not in found
    assert found[T(margin)]["deleted"] is True and found[T(recent)]["deleted"] is True


def test_old_deletions_go_100_at_a_time_oldest_first(app, client, alice, make_task, extra_app):
    """README: "by the service's own deletes, 100 at a time, oldest first ... the first
    delete a worker serves removes a batch, ... and the next delete at once while batches
    come back full"."""
    work = new_list(client, alice, "Work")
    made = [make_task(ALICE, f"t{i}", list_id=work)["id"] for i in range(150)]
    delete_list(client, alice, work)
    # t0 the oldest, t149 the youngest, all past the retention and its day.
    age_deletions(
        app, {T(task_id): timedelta(days=40, seconds=-i) for i, task_id in enumerate(made)}
    )
    worker = extra_app().test_client()
    delete_task(worker, alice, create(worker, alice)["id"])
    rows = deletion_rows(app)
    assert {key for key in rows if key in {T(i) for i in made}} == {T(i) for i in made[100:]}
    assert L(work) in rows  # recent
    delete_task(worker, alice, create(worker, alice)["id"])
    assert not {T(i) for i in made} & set(deletion_rows(app))


def test_after_a_batch_that_was_not_full_a_worker_waits_a_minute(app, client, alice, extra_app):
    """README: "the first delete a worker serves removes a batch, then one delete a
    minute": a deletion that comes of age right after a worker's batch stays until the
    minute is over (or another worker's turn comes)."""
    worker = extra_app().test_client()
    delete_task(worker, alice, create(worker, alice)["id"])  # its batch: nothing yet
    late = create(client, alice)["id"]
    delete_task(client, alice, late)
    age_deletions(app, {T(late): timedelta(days=40)})
    delete_task(worker, alice, create(worker, alice)["id"])
    assert T(late) in deletion_rows(app)
    other = extra_app().test_client()
    delete_task(other, alice, create(other, alice)["id"])
    assert T(late) not in deletion_rows(app)
