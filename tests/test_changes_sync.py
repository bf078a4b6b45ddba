"""The changes feed's promise under real concurrency, through a real threaded HTTP server.

Contract: docs/api.md, "Sync: GET /api/{user_id}/changes" ("Apply each item: upsert by
`type` + `id`, or remove. An item may come again ...: applying it twice changes nothing")
and docs/sync.md, whose first paragraph is the promise: "a client that starts without a
cursor, follows the cursors and applies each item ends up with exactly the user's lists
and tasks, however the writes interleave with its reads and in whatever order concurrent
transactions commit"; "The race that breaks the naive feeds", "What the service does" and
"Why nothing is skipped" say how.

- ``test_store_synced_while_writers_race_converges_to_what_the_user_has``: writer threads
  make every kind of write for one user while a poller syncs continuously; once they stop,
  the poller's store is exactly ``GET /lists`` plus every page of ``GET /tasks``.
- ``test_write_committing_late_is_not_skipped_and_readers_do_not_wait`` (PostgreSQL): one
  write's transaction is held open; it is delivered all the same, in its place.
- ``test_one_statement_write_waits_for_the_users_write_before_locking_its_task``
  (PostgreSQL): a write made in one statement takes the user's row before its task's.

The store, ``sync`` and ``current_state`` are tests/test_changes.py's; ``Http`` gives them
``requests`` behind the test client's ``get``/``open``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from conftest import ALICE, CONCURRENT_TIMEOUT, lists_url, tasks_url
from test_changes import (
    Key,
    L,
    T,
    assert_as_get_answers,
    assert_in_step,
    current_state,
    cursor_fields,
    get_page,
    read_all,
    sync,
)

from app.auth import Identity
from app.owners import write
from app.tasks.queries import create_in

WRITERS = 4
WRITE_SECONDS = 6.0  # bounded: SQLite puts every writer in one queue
TIMEOUT = CONCURRENT_TIMEOUT
# What a writer may get for racing on what another writer deleted or changed: 404 (gone),
# 422 (a list or parent gone, a move the tree rules refuse now, too deep), 409 (the 501st
# list). Anything else, and above all a 5xx, is a failure.
RACING = {404, 409, 422}
MAX_LISTS = 12  # the writers keep well below the 500 lists


class Http:
    """``requests`` to a live server, with the Flask test client's ``get`` and ``open``
    (a path, headers, a JSON body), so that tests/test_changes.py's helpers run on it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.get(self.base + path, headers=headers, timeout=TIMEOUT)

    def open(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None, json=None
    ) -> requests.Response:
        return self.session.request(
            method, self.base + path, headers=headers, json=json, timeout=TIMEOUT
        )


# --------------------------------------------------------------------------- (a) convergence


class Pool:
    """The ids the writers know of (some already deleted by another writer: that is the
    race), shared under a lock."""

    def __init__(self, default_list: int) -> None:
        self.lock = threading.Lock()
        self.default = default_list
        self.lists: list[int] = [default_list]
        self.tasks: list[int] = []

    def pick(self, rng: random.Random, kind: str) -> int | None:
        with self.lock:
            found = self.lists if kind == "list" else self.tasks
            return rng.choice(found) if found else None

    def add(self, kind: str, item_id: int) -> None:
        with self.lock:
            (self.lists if kind == "list" else self.tasks).append(item_id)

    def drop(self, kind: str, item_id: int) -> None:
        with self.lock:
            found = self.lists if kind == "list" else self.tasks
            if item_id in found:
                found.remove(item_id)


Op = Callable[[random.Random, Pool], tuple[str, str, Any, Callable[[Any], None] | None]]


def _create_task(rng: random.Random, pool: Pool):
    body: dict[str, Any] = {"title": f"t{rng.randrange(10**6)}", "completed": rng.random() < 0.2}
    if rng.random() < 0.5:
        body["list_id"] = pool.pick(rng, "list")
    return "POST", tasks_url(ALICE), body, lambda made: pool.add("task", made["id"])


def _create_subtask(rng: random.Random, pool: Pool):
    parent = pool.pick(rng, "task")
    if parent is None:
        return _create_task(rng, pool)
    body = {"title": "sub", "parent_id": parent, "completed": rng.random() < 0.2}
    return "POST", tasks_url(ALICE), body, lambda made: pool.add("task", made["id"])


def _put(rng: random.Random, pool: Pool):
    body: dict[str, Any] = rng.choice(
        [
            {"title": f"p{rng.randrange(1000)}"},
            {
                "priority": rng.choice(["low", "medium", "high"]),
                "tags": ["x", "y"][: rng.randrange(3)],
            },
            {"completed": rng.random() < 0.5},
            {"description": None if rng.random() < 0.5 else "words"},
        ]
    )
    return "PUT", tasks_url(ALICE, pool.pick(rng, "task") or 1), body, None


def _toggle(rng: random.Random, pool: Pool):
    body = rng.choice([None, {"completed": True}, {"completed": False}])
    return "PATCH", tasks_url(ALICE, pool.pick(rng, "task") or 1, "/complete"), body, None


def _move(rng: random.Random, pool: Pool):
    body = rng.choice(
        [
            {"after_id": None},
            {"after_id": pool.pick(rng, "task")},
            {"list_id": pool.pick(rng, "list")},
            {"parent_id": pool.pick(rng, "task")},
            {"list_id": pool.pick(rng, "list"), "parent_id": None},
        ]
    )
    return "POST", tasks_url(ALICE, pool.pick(rng, "task") or 1, "/move"), body, None


def _delete_task(rng: random.Random, pool: Pool):
    task_id = pool.pick(rng, "task") or 1
    return "DELETE", tasks_url(ALICE, task_id), None, lambda _: pool.drop("task", task_id)


def _create_list(rng: random.Random, pool: Pool):
    if len(pool.lists) >= MAX_LISTS:
        return _delete_list(rng, pool)
    body = {"title": f"l{rng.randrange(1000)}", "color": rng.choice([None, "#A1B2C3"])}
    return "POST", lists_url(ALICE), body, lambda made: pool.add("list", made["id"])


def _delete_list(rng: random.Random, pool: Pool):
    list_id = pool.pick(rng, "list")
    if list_id == pool.default:  # its deletion is a 409 by rule, not a race
        return _create_task(rng, pool)
    return "DELETE", lists_url(ALICE, list_id), None, lambda _: pool.drop("list", list_id)


def _change_list(rng: random.Random, pool: Pool):
    list_id = pool.pick(rng, "list")
    if rng.random() < 0.5:
        return "PUT", lists_url(ALICE, list_id), {"title": f"r{rng.randrange(100)}"}, None
    after = rng.choice([None, pool.pick(rng, "list")])
    after = None if after == list_id else after
    return "POST", lists_url(ALICE, list_id, "/move"), {"after_id": after}, None


def _clear_completed(rng: random.Random, pool: Pool):
    return "DELETE", tasks_url(ALICE, query="status=completed"), None, None


OPS: dict[str, tuple[Op, int]] = {  # name -> (what it sends, weight)
    "create": (_create_task, 6),
    "create-subtask": (_create_subtask, 5),
    "put": (_put, 4),
    "toggle": (_toggle, 4),
    "move": (_move, 4),
    "delete": (_delete_task, 2),
    "create-list": (_create_list, 1),
    "delete-list": (_delete_list, 1),
    "change-list": (_change_list, 1),
    "clear-completed": (_clear_completed, 1),
}


def writer(base: str, headers: dict[str, str], pool: Pool, seed: int, stop: threading.Event):
    """Random writes until ``stop``; the statuses by (operation, status)."""
    rng = random.Random(seed)
    http = Http(base)
    names = list(OPS)
    weights = [OPS[name][1] for name in names]
    seen: Counter[tuple[str, int]] = Counter()
    while not stop.is_set():
        name = rng.choices(names, weights)[0]
        method, url, body, then = OPS[name][0](rng, pool)
        resp = http.open(url, method, headers, body)
        seen[(name, resp.status_code)] += 1
        assert resp.status_code < 500, (method, url, body, resp.status_code, resp.text)
        if 200 <= resp.status_code < 300:
            if then is not None:
                then(None if resp.status_code == 204 else resp.json())
        else:
            assert resp.status_code in RACING, (method, url, body, resp.status_code, resp.text)
    return seen


def poller(base: str, headers: dict[str, str], stop: threading.Event) -> dict[str, Any]:
    """From no cursor, then by cursor, over and over until ``stop``: the store, the cursor,
    and how many polls brought how many items."""
    http = Http(base)
    store: dict[Key, Any] = {}
    cursor = None
    polls = items = 0
    rng = random.Random(7)
    while not stop.is_set():
        before = dict(store)
        cursor = sync(http, headers, store, cursor, limit=rng.choice([3, 20, None]))
        polls += 1
        items += store != before
    return {"store": store, "cursor": cursor, "polls": polls, "changed_polls": items}


def test_store_synced_while_writers_race_converges_to_what_the_user_has(client, alice, live_server):
    """Four writers, six seconds of every kind of write of one user (creates, subtasks,
    PUTs, toggles, moves within and across lists, deletes, list creates, changes and
    deletes, clear completed), while a poller syncs from no cursor and then by cursor,
    pages of 3, 20 or 500. After the writers stop and one last sync, the store is the
    user's lists and tasks, field for field; and a first load made now agrees."""
    work = client.post(lists_url(ALICE), headers=alice, json={"title": "Work"}).get_json()
    home_resp = client.get(lists_url(ALICE, "default"), headers=alice)
    pool = Pool(home_resp.get_json()["id"])
    pool.add("list", work["id"])
    for i in range(6):  # something to race on from the start
        made = client.post(tasks_url(ALICE), headers=alice, json={"title": f"seed{i}"})
        pool.add("task", made.get_json()["id"])

    stop_writers, stop_poller = threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=WRITERS + 1) as threads:
        polling = threads.submit(poller, live_server, alice, stop_poller)
        writing = [
            threads.submit(writer, live_server, alice, pool, seed, stop_writers)
            for seed in range(WRITERS)
        ]
        try:
            time.sleep(WRITE_SECONDS)  # the writers write for this long
        finally:
            stop_writers.set()
            seen: Counter[tuple[str, int]] = Counter()
            try:
                for future in writing:
                    seen += future.result(timeout=2 * TIMEOUT)
            finally:
                stop_poller.set()
        polled = polling.result(timeout=2 * TIMEOUT)

    # The race was real: every kind of write succeeded while the poller was polling.
    done = {name for (name, status), n in seen.items() if 200 <= status < 300}
    assert done == set(OPS), ("never succeeded:", set(OPS) - done, seen)
    assert polled["polls"] >= 5 and polled["changed_polls"] >= 3, polled | {"store": "..."}
    http = Http(live_server)
    store = polled["store"]
    sync(http, alice, store, polled["cursor"])
    assert_in_step(http, alice, store)
    fresh: dict[Key, Any] = {}
    sync(http, alice, fresh)
    assert fresh == store
    writes = sum(n for (_, status), n in seen.items() if 200 <= status < 300)
    print(f"writes: {writes} succeeded; statuses {dict(seen)}; polls: {polled['polls']}")


# --------------------------------------------------------------------------- (b) a late commit


def test_write_committing_late_is_not_skipped_and_readers_do_not_wait(
    app, client, alice, live_server, database_url
):
    """docs/sync.md, "The race that breaks the naive feeds": writer A takes number 41,
    writer B takes 42 and commits, a reader sees 42 and moves its cursor past 41; A commits
    41 behind it, and A's change is never delivered.

    Here A is a write held open: in a thread, ``app.owners.write`` (the transaction every
    write runs in) creates a task with ``app.tasks.queries.create_in`` (the service's own
    path) and does not commit until an Event is set. B, another write of the same user
    through HTTP, must wait for A (the user's row lock: it cannot take a number while A
    holds one); readers must not: a poll and a first load answer at once, without A's task
    (not committed) or B's (not made), and their cursors stay below A's number. Once A
    commits, B answers 201, and the next poll from either cursor brings A's task, then B's.
    """
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "holds one write's transaction open while another waits on the user's row "
            "lock: PostgreSQL's row locks (this test runs in the PostgreSQL pass)"
        )
    http = Http(live_server)
    store: dict[Key, Any] = {}
    cursor = sync(http, alice, store)
    [home] = [key[1] for key in store if key[0] == "list"]
    started, release = threading.Event(), threading.Event()
    held: dict[str, int] = {}

    def hold() -> None:
        with app.app_context(), write(Identity(ALICE)) as w:
            row = create_in(w, {"title": "held"})
            held.update(id=row.id, seq=w.seq)
            started.set()
            assert release.wait(TIMEOUT), "never released"

    def other() -> requests.Response:
        return Http(live_server).open(tasks_url(ALICE), "POST", alice, {"title": "other"})

    with ThreadPoolExecutor(max_workers=2) as threads:
        holder = threads.submit(hold)
        try:
            assert started.wait(TIMEOUT), holder.exception(timeout=1)
            waiting = threads.submit(other)
            time.sleep(1.0)  # the rule needs time: B must still be waiting for A
            assert not waiting.done(), f"a second write did not wait: {waiting.result().text}"

            began = time.monotonic()
            page = get_page(http, alice, cursor)
            loaded, load_cursor, _ = read_all(http, alice)
            took = time.monotonic() - began
            assert not waiting.done(), "B answered while A was held"
        finally:
            release.set()
        holder.result(timeout=TIMEOUT)
        created = waiting.result(timeout=TIMEOUT)

    assert took < 2.0, f"readers waited for the held write: {took:.2f} s"
    assert page["changes"] == [] and page["has_more"] is False, page
    assert [(item["type"], item["id"]) for item in loaded] == [L(home)], loaded
    for during in (page["cursor"], load_cursor):
        assert cursor_fields(during).seq < held["seq"], (cursor_fields(during), held)

    assert created.status_code == 201, created.text
    other_id = created.json()["id"]
    for during in (page["cursor"], load_cursor):
        items, _, _ = read_all(http, alice, during)
        keys = [(item["type"], item["id"]) for item in items]
        assert T(held["id"]) in keys and T(other_id) in keys, keys
        assert keys.index(T(held["id"])) < keys.index(T(other_id)), keys
        assert_as_get_answers(http, alice, items)
    cursor = sync(http, alice, store, page["cursor"])
    assert_in_step(http, alice, store)
    assert {T(held["id"]), T(other_id)} <= set(current_state(http, alice))


# --------------------------------------------------------------------------- (c) lock order


@pytest.mark.parametrize(
    ("method", "suffix", "body", "answers"),
    [
        ("PATCH", "/complete", {"completed": True}, 200),
        ("PUT", "", {"title": "renamed", "completed": True}, 200),
        ("DELETE", "", None, 204),
    ],
    ids=["toggle", "put", "delete"],
)
def test_one_statement_write_waits_for_the_users_write_before_locking_its_task(
    app, client, alice, live_server, database_url, method, suffix, body, answers
):
    """docs/sync.md, "What the service does": every write of a user takes the user's row
    first, so writes of one user run one after another and never deadlock.

    A held write (``app.owners.write``) of the user starts; a completion (one that changes
    nothing), a PUT or a DELETE of a completed task X comes through HTTP and must wait for
    it; then the held write creates a subtask under X, whose tree rule reopens X (it locks
    X's row). Had the HTTP write locked X before the user's row, the two would wait on
    each other and PostgreSQL would abort one (a 503, or an error in the held write).
    Both must succeed."""
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "holds one write's transaction open while another waits on the user's row "
            "lock: PostgreSQL's row locks (this test runs in the PostgreSQL pass)"
        )
    http = Http(live_server)
    created = http.open(tasks_url(ALICE), "POST", alice, {"title": "X"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    completed = http.open(f"{tasks_url(ALICE)}/{task_id}/complete", "PATCH", alice)
    assert completed.json()["completed"] is True, completed.text
    started, go = threading.Event(), threading.Event()

    def hold() -> int:
        with app.app_context(), write(Identity(ALICE)) as w:
            started.set()
            assert go.wait(TIMEOUT), "never released"
            return create_in(w, {"title": "sub", "parent_id": task_id}).id

    def other() -> requests.Response:
        url = f"{tasks_url(ALICE)}/{task_id}{suffix}"
        return Http(live_server).open(url, method, alice, body)

    with ThreadPoolExecutor(max_workers=2) as threads:
        holder = threads.submit(hold)
        try:
            assert started.wait(TIMEOUT), holder.exception(timeout=1)
            waiting = threads.submit(other)
            time.sleep(0.5)  # the HTTP write has reached the database and waits there
            assert not waiting.done(), f"the write did not wait: {waiting.result().text}"
        finally:
            go.set()
        holder.result(timeout=TIMEOUT)
        answer = waiting.result(timeout=TIMEOUT)
    assert answer.status_code == answers, answer.text
