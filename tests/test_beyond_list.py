"""The list's new filters and sorts: q, priority, tag, due_before, due_after, overdue,
updated_since; sort=due_date|priority.

Contract: docs/api.md, "The list". Every
filter is checked at its boundary, with X-Pagination's total, combined with the others
and with paging, and never showing another user's tasks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ALICE, BOB
from test_beyond_support import assert_422, create, list_ids, tasks_url, utc_text


def ids_of(*tasks) -> list[int]:
    return [task["id"] for task in tasks]


def check(client, headers, query, expected: list[int]) -> None:
    """The list answers exactly ``expected`` (in that order) and counts exactly them."""
    assert list_ids(client, headers, query) == (expected, len(expected)), query


# --------------------------------------------------------------------------- q


@pytest.fixture
def texts(client, alice, bob):
    """Alice's tasks for the q tests, by name; Bob has look-alikes that must never show."""
    spec = {
        "milk": ("Buy MILK", None),
        "desc": ("Groceries", "get milk and bread"),
        "shake": ("milkshake", "no"),
        "none": ("Call mom", "about Sunday"),
        "pct": ("50% off", None),
        "five": ("500 things", None),
        "under": ("a_b", None),
        "axb": ("axb", "a-b too"),
        "slash": ("back\\slash", None),
        "plain": ("backslash", None),
        "cafe": ("Caf\u00e9 au lait", None),
        "long": ("a" * 200, None),
    }
    tasks = {
        name: create(client, alice, title=title, description=desc)
        for name, (title, desc) in spec.items()
    }
    for title, desc in (("milk for bob", "50% a_b back\\slash"), ("Bob's caf\u00e9", None)):
        create(client, bob, BOB, title=title, description=desc)
    return {name: task["id"] for name, task in tasks.items()}


Q_CASES = [  # q -> names found, newest first (the default sort)
    ("milk", ["shake", "desc", "milk"]),
    ("MiLk", ["shake", "desc", "milk"]),
    ("BREAD", ["desc"]),  # in the description only
    ("sunday", ["none"]),
    ("50%", ["pct"]),
    ("%", ["pct"]),
    ("0%", ["pct"]),
    ("a_b", ["under"]),
    ("_", ["under"]),
    ("\\", ["slash"]),
    ("k\\s", ["slash"]),
    ("caf\u00e9", ["cafe"]),
    ("af\u00e9 AU", ["cafe"]),
    ("a" * 200, ["long"]),
    ("x", ["axb"]),
    ("nothing like it", []),
    ("'; DROP TABLE tasks; --", []),
]


@pytest.mark.parametrize(("q", "names"), Q_CASES, ids=[str(i) for i in range(len(Q_CASES))])
def test_q_finds_title_or_description_ignoring_ascii_case(client, alice, texts, q, names):
    check(client, alice, {"q": q}, [texts[name] for name in names])


def test_q_is_combined_with_status_and_sort(client, alice, texts):
    client.patch(tasks_url(task_id=texts["desc"], suffix="/complete"), headers=alice)
    check(client, alice, {"q": "milk", "status": "pending"}, [texts["shake"], texts["milk"]])
    check(client, alice, {"q": "milk", "status": "completed"}, [texts["desc"]])
    check(
        client,
        alice,
        {"q": "milk", "sort": "title", "order": "asc"},
        [texts["milk"], texts["desc"], texts["shake"]],
    )


# --------------------------------------------------------------------------- priority, tag


@pytest.fixture
def labelled(client, alice, bob):
    """name -> id; Bob's tasks carry the same priorities and tags."""
    spec = {
        "h1": ("high", ["Home", "urgent"]),
        "m1": ("medium", ["home"]),
        "l1": ("low", ["WORK", "home"]),
        "h2": ("high", ["work"]),
        "m2": ("medium", []),
        "l2": ("low", ["home", "work", "urgent"]),
    }
    result = {}
    for name, (priority, tags) in spec.items():
        result[name] = create(client, alice, title=name, priority=priority, tags=tags)["id"]
    for priority in ("high", "medium", "low"):
        create(client, bob, BOB, title="bob", priority=priority, tags=["home", "work", "urgent"])
    return result


LABEL_CASES = [  # query pairs -> names, newest first
    ([("priority", "high")], ["h2", "h1"]),
    ([("priority", "low")], ["l2", "l1"]),
    ([("priority", "high"), ("priority", "low")], ["l2", "h2", "l1", "h1"]),
    ([("priority", "medium"), ("priority", "medium")], ["m2", "m1"]),
    ([("priority", p) for p in ("low", "medium", "high")], ["l2", "m2", "h2", "l1", "m1", "h1"]),
    ([("tag", "home")], ["l2", "l1", "m1", "h1"]),
    ([("tag", "HOME")], ["l2", "l1", "m1", "h1"]),
    ([("tag", "Work")], ["l2", "h2", "l1"]),
    ([("tag", "home"), ("tag", "work")], ["l2", "l1"]),
    ([("tag", "home"), ("tag", "WORK"), ("tag", "urgent")], ["l2"]),
    ([("tag", "home"), ("tag", "home")], ["l2", "l1", "m1", "h1"]),
    ([("tag", "hom")], []),  # a whole tag, not a substring
    ([("tag", "nowhere")], []),
    ([("tag", "home"), ("priority", "high")], ["h1"]),
    ([("tag", "work"), ("priority", "low"), ("priority", "high")], ["l2", "h2", "l1"]),
    ([("tag", "urgent"), ("status", "completed")], []),
]


@pytest.mark.parametrize(
    ("query", "names"), LABEL_CASES, ids=[str(i) for i in range(len(LABEL_CASES))]
)
def test_priority_is_any_of_and_tag_is_all_of(client, alice, labelled, query, names):
    check(client, alice, query, [labelled[name] for name in names])


def test_tag_filter_follows_tag_changes(client, alice, labelled):
    client.put(tasks_url(task_id=labelled["m1"]), headers=alice, json={"tags": ["Work"]})
    client.put(tasks_url(task_id=labelled["l1"]), headers=alice, json={"tags": []})
    check(client, alice, [("tag", "home")], [labelled["l2"], labelled["h1"]])
    check(client, alice, [("tag", "work")], [labelled["l2"], labelled["h2"], labelled["m1"]])


# --------------------------------------------------------------------------- due dates

D1, D2, D3 = "2026-12-01T08:00:00Z", "2026-12-02T08:00:00Z", "2026-12-03T08:00:00Z"


@pytest.fixture
def dated(client, alice, bob):
    """name -> id: due D1, D2, D3, none; D2 + 1 microsecond; Bob has one on every date."""
    spec = {"d1": D1, "d2": D2, "d3": D3, "none": None, "d2plus": "2026-12-02T08:00:00.000001Z"}
    result = {name: create(client, alice, due_date=due)["id"] for name, due in spec.items()}
    for due in (D1, D2, D3, None):
        create(client, bob, BOB, due_date=due)
    return result


DUE_CASES = [  # query -> names, newest first
    ({"due_before": D2}, ["d1"]),  # strictly before
    ({"due_before": "2026-12-02T10:00:00+02:00"}, ["d1"]),  # the same instant as D2
    ({"due_before": "2026-12-02T08:00:00.000001Z"}, ["d2", "d1"]),
    ({"due_before": "2026-12-02T08:00:00.000002+00:00"}, ["d2plus", "d2", "d1"]),
    ({"due_after": D2}, ["d2plus", "d3", "d2"]),  # due_date >= due_after
    ({"due_after": "2026-12-02T03:00:00-05:00"}, ["d2plus", "d3", "d2"]),
    ({"due_after": "2026-12-02T08:00:00.000001Z"}, ["d2plus", "d3"]),
    ({"due_after": D1, "due_before": D3}, ["d2plus", "d2", "d1"]),
    ({"due_after": D3, "due_before": D1}, []),
    ({"due_before": "2100-01-01T00:00:00Z"}, ["d2plus", "d3", "d2", "d1"]),  # never "none"
    ({"due_after": "1970-01-01T00:00:00Z"}, ["d2plus", "d3", "d2", "d1"]),
    ({"due_before": D1}, []),
]


@pytest.mark.parametrize(("query", "names"), DUE_CASES, ids=[str(i) for i in range(len(DUE_CASES))])
def test_due_before_is_strict_and_due_after_inclusive(client, alice, dated, query, names):
    check(client, alice, query, [dated[name] for name in names])


def test_overdue_is_pending_and_due_before_now(client, alice, bob):
    now = datetime.now(UTC)
    past, future = utc_text(now - timedelta(hours=1)), utc_text(now + timedelta(hours=1))
    late = create(client, alice, title="late", due_date=past)
    done_late = create(client, alice, title="done late", due_date=past, completed=True)
    soon = create(client, alice, title="soon", due_date=future)
    undated = create(client, alice, title="undated")
    done_undated = create(client, alice, title="done undated", completed=True)
    long_ago = create(client, alice, title="long ago", due_date="2000-01-01T00:00:00+09:00")
    create(client, bob, BOB, title="bob late", due_date=past)

    check(client, alice, {"overdue": "true"}, ids_of(long_ago, late))
    others = ids_of(done_undated, undated, soon, done_late)
    check(client, alice, {"overdue": "false"}, others)
    check(client, alice, {"overdue": "true", "status": "completed"}, [])
    done = ids_of(done_undated, done_late)
    check(client, alice, {"overdue": "false", "status": "completed"}, done)
    # Completing an overdue task takes it out; reopening brings it back.
    client.patch(tasks_url(task_id=late["id"], suffix="/complete"), headers=alice)
    check(client, alice, {"overdue": "true"}, ids_of(long_ago))
    client.put(tasks_url(task_id=late["id"]), headers=alice, json={"completed": False})
    check(client, alice, {"overdue": "true"}, ids_of(long_ago, late))


def test_updated_since_is_inclusive_and_follows_writes(client, alice, bob):
    first = create(client, alice, title="first")
    second = create(client, alice, title="second")
    third = create(client, alice, title="third")
    create(client, bob, BOB, title="bob")
    since = second["updated_at"]
    check(client, alice, {"updated_since": since}, ids_of(third, second))
    just_after = utc_text(datetime.fromisoformat(since) + timedelta(microseconds=1))
    check(client, alice, {"updated_since": just_after}, ids_of(third))
    # The same instant written with another offset.
    shifted = (datetime.fromisoformat(since).astimezone(timezone(timedelta(hours=-3)))).isoformat()
    check(client, alice, {"updated_since": shifted}, ids_of(third, second))
    # A write moves a task into the window: a polling frontend sees it.
    resp = client.put(tasks_url(task_id=first["id"]), headers=alice, json={"priority": "high"})
    assert resp.status_code == 200
    check(client, alice, {"updated_since": just_after}, ids_of(third, first))
    check(client, alice, {"updated_since": resp.get_json()["updated_at"]}, ids_of(first))
    check(client, alice, {"updated_since": "2100-01-01T00:00:00Z"}, [])


# --------------------------------------------------------------------------- sorts


@pytest.fixture
def sortable(client, alice):
    """Ties on due date and on priority; two tasks without a due date."""
    spec = [  # name, due date, priority
        ("a", D2, "low"),
        ("b", None, "high"),
        ("c", D1, "medium"),
        ("d", D2, "high"),
        ("e", None, "low"),
        ("f", D3, "medium"),
        ("g", D1, "high"),
    ]
    return {
        name: create(client, alice, title=name, due_date=due, priority=priority)["id"]
        for name, due, priority in spec
    }


SORT_CASES = [
    ({"sort": "due_date", "order": "asc"}, "cgadfbe"),
    ({"sort": "due_date", "order": "desc"}, "fdagceb"),  # still no due date last
    ({"sort": "due_date"}, "fdagceb"),  # order defaults to desc
    ({"sort": "priority", "order": "desc"}, "gdbfcea"),
    ({"sort": "priority"}, "gdbfcea"),
    ({"sort": "priority", "order": "asc"}, "aecfbdg"),
    ({"sort": "due_date", "order": "asc", "priority": "high"}, "gdb"),
    ({"sort": "priority", "order": "asc", "due_before": D3}, "acdg"),
    ({"sort": "due_date", "order": "desc", "status": "pending", "tag": "none"}, ""),
]


@pytest.mark.parametrize(("query", "names"), SORT_CASES)
def test_sort_by_due_date_and_priority_with_id_tiebreak(client, alice, sortable, query, names):
    check(client, alice, query, [sortable[name] for name in names])


def test_sorts_page_through_without_gaps_or_repeats(client, alice, sortable):
    for sort in ("due_date", "priority"):
        for order in ("asc", "desc"):
            whole, total = list_ids(client, alice, {"sort": sort, "order": order})
            paged = []
            for page in (1, 2, 3, 4):
                query = {"sort": sort, "order": order, "page_size": 2, "page": page}
                ids, page_total = list_ids(client, alice, query)
                assert page_total == total == 7
                paged += ids
            assert paged == whole, (sort, order)


# --------------------------------------------------------------------------- all together


def test_all_filters_combine_with_status_sort_and_paging(client, alice, bob):
    """Eight pending high-priority "report" tasks tagged work, due in a month, among decoys."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=30)
    wanted = []
    for i in range(8):
        due = (start + timedelta(days=i)).astimezone(timezone(timedelta(hours=1))).isoformat()
        task = create(
            client, alice, title=f"Report {i}", priority="high", tags=["work", "q4"], due_date=due
        )
        wanted.append(task)
    decoys = [
        {"title": "Report done", "priority": "high", "tags": ["work"], "completed": True},
        {"title": "Report low", "priority": "low", "tags": ["work"]},
        {"title": "Report home", "priority": "high", "tags": ["home"]},
        {"title": "Chart", "priority": "high", "tags": ["work"]},
        {"title": "Report late", "priority": "high", "tags": ["work"], "due_date": D1},
    ]
    for decoy in decoys:
        create(client, alice, due_date=decoy.pop("due_date", utc_text(start)), **decoy)
    for task in wanted[:3]:
        create(client, bob, BOB, title=task["title"], priority="high", tags=["work"], due_date=D3)

    query = [
        ("status", "pending"),
        ("q", "report"),
        ("priority", "high"),
        ("priority", "medium"),
        ("tag", "WORK"),
        ("due_after", utc_text(start - timedelta(days=1))),
        ("due_before", utc_text(start + timedelta(days=8))),
        ("overdue", "false"),
        ("updated_since", wanted[0]["updated_at"]),
        ("sort", "due_date"),
        ("order", "asc"),
        ("page_size", "3"),
    ]
    expected = ids_of(*wanted)  # due dates ascend with creation
    seen = []
    resp = client.get(tasks_url(query=query), headers=alice)
    while True:
        assert resp.status_code == 200, resp.get_data(as_text=True)
        meta = json.loads(resp.headers["X-Pagination"])
        assert (meta["total"], meta["total_pages"]) == (8, 3)
        assert {t["user_id"] for t in resp.get_json()} <= {ALICE}
        seen += [t["id"] for t in resp.get_json()]
        links = dict((rel, url) for url, rel in _links(resp.headers["Link"]))
        if "next" not in links:
            break
        next_url = urlsplit(links["next"])
        kept = parse_qs(next_url.query)
        assert kept["priority"] == ["high", "medium"] and kept["tag"] == ["WORK"]
        resp = client.get(next_url.path + "?" + next_url.query, headers=alice)
    assert seen == expected


def _links(header: str) -> list[tuple[str, str]]:
    import re

    return re.findall(r'<([^>]*)>;\s*rel="([^"]+)"', header)


def test_filters_never_show_other_users_tasks(client, alice, bob):
    create(client, bob, BOB, title="shared words", priority="low", tags=["x"], due_date=D1)
    create(client, bob, BOB, title="shared words done", completed=True, due_date=D1)
    queries = [
        {"q": "shared"},
        {"priority": "low"},
        {"tag": "x"},
        {"due_before": D3},
        {"due_after": "2000-01-01T00:00:00Z"},
        {"overdue": "true"},
        {"overdue": "false"},
        {"updated_since": "2000-01-01T00:00:00Z"},
        {"sort": "due_date"},
        {"sort": "priority", "order": "asc"},
    ]
    for query in queries:
        check(client, alice, query, [])
    assert list_ids(client, bob, {"tag": "X"}, user=BOB)[1] == 1


# --------------------------------------------------------------------------- wrong forms

INVALID_QUERIES = [
    *[([("q", v)], "q") for v in ("", "a" * 201, "a\x00b")],  # NUL: the database cannot
    ([("tag", "a\x00b")], "tag"),
    ([("due_before", "0001-01-01T00:00:00+01:00")], "due_before"),
    *[([("priority", v)], "priority") for v in ("urgent", "HIGH", "", "1", "high,low")],
    ([("priority", "high"), ("priority", "urgent")], "priority"),
    *[([("overdue", v)], "overdue") for v in ("maybe", "")],
    *[
        ([(p, v)], p)
        for p in ("due_before", "due_after", "updated_since")
        for v in (
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-12-01T10:00:00.5",
            "tomorrow",
            "",
            "2026-13-01T00:00:00Z",
        )
    ],
    *[([("sort", v)], "sort") for v in ("due", "DUE_DATE", "priority,id", "due_date ")],
    *[
        ([(p, v), (p, v)], p)
        for p, v in (
            ("q", "milk"),
            ("due_before", D1),
            ("due_after", D1),
            ("overdue", "true"),
            ("updated_since", D1),
            ("sort", "due_date"),
        )
    ],
]


@pytest.mark.parametrize(
    ("query", "param"),
    INVALID_QUERIES,
    ids=[f"{p}-{i}" for i, (_, p) in enumerate(INVALID_QUERIES)],
)
def test_wrong_form_of_a_filter_is_422_under_query(client, alice, query, param):
    create(client, alice, due_date=D1, tags=["x"])
    resp = client.get(tasks_url(query=query), headers=alice)
    assert_422(resp, "query", param)
    assert "X-Pagination" not in resp.headers


def test_q_of_one_and_of_200_characters_is_allowed(client, alice):
    task = create(client, alice, title="x" * 200)
    check(client, alice, {"q": "x"}, [task["id"]])
    check(client, alice, {"q": "x" * 200}, [task["id"]])
    check(client, alice, {"q": "x" * 199 + "y"}, [])


def test_unknown_query_parameters_are_still_ignored(client, alice):
    task = create(client, alice, priority="high")
    check(client, alice, [("priority", "high"), ("colour", "red"), ("tags", "x")], [task["id"]])


def test_other_users_path_with_bad_filters_is_403(client, bob):
    resp = client.get(tasks_url(ALICE, query={"priority": "urgent", "q": ""}), headers=bob)
    assert resp.status_code == 403
    assert "errors" not in resp.get_json()
