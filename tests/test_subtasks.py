"""Tasks in lists, and subtasks: the new fields, the tree rules and the list's new filters.

Contract: docs/api.md, "A task" (the fields ``list_id``, ``parent_id``, ``position``, and
"Create", "Update", "Toggle", "Clear completed", "Delete"), "The list" (``list_id``,
``parent_id``, ``sort=position`` and "A list in its manual order"), "Subtasks", and
"Conditional requests (ETags)" for the ETags the tree rules change.

Everything goes through the HTTP API. The helpers at the top (a task with the new fields,
building a tree from a nested dict, reading a sibling set in its order) are shared with
tests/test_move.py and tests/test_tree_properties.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from conftest import ALICE, BOB, lists_url, tasks_url
from support import TIMESTAMP_RE, assert_error, assert_task

# --------------------------------------------------------------------------- helpers

MAX_DEPTH = 4  # docs/api.md, "Subtasks": down to 4 levels, a top-level task is level 1
MAX_POSITION = 64  # docs/api.md, "A task": position, at most 64 characters
UNKNOWN_ID = 10**12  # an id no test creates


def position_key(task: dict[str, Any]) -> tuple[bytes, int]:
    """The manual order: position byte by byte (UTF-8 bytes compare as code points, as
    Python's ``<`` on str does), then id."""
    return task["position"].encode("utf-8"), task["id"]


def assert_positions_increase(tasks: list[dict[str, Any]]) -> None:
    """Strictly increasing positions, by both orders docs/api.md names: byte by byte, and
    JavaScript's ``<`` (UTF-16 code units). Equal positions fail too."""
    for before, after in zip(tasks, tasks[1:], strict=False):
        a, b = before["position"], after["position"]
        assert a.encode("utf-8") < b.encode("utf-8"), (before, after)
        assert a.encode("utf-16-be") < b.encode("utf-16-be"), (before, after)


def etag_of(resp: Any) -> str:
    etag = resp.headers.get("ETag")
    assert etag, dict(resp.headers)
    assert not etag.startswith("W/"), etag
    return etag


def new_list(client: Any, headers: dict[str, str], title: str = "List", user: str = ALICE) -> int:
    """Create a list through the API; its id."""
    resp = client.post(lists_url(user), headers=headers, json={"title": title})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["id"]


def default_list(client: Any, headers: dict[str, str], user: str = ALICE) -> int:
    resp = client.get(lists_url(user, "default"), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["is_default"] is True, body
    return body["id"]


def create(client: Any, headers: dict[str, str], user: str = ALICE, **fields: Any) -> dict:
    """Create a task through the API (title "A task" unless given); its JSON, checked."""
    fields.setdefault("title", "A task")
    resp = client.post(tasks_url(user), headers=headers, json=fields)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return assert_task(resp.get_json())


def build(
    client: Any,
    headers: dict[str, str],
    spec: dict[str, Any],
    *,
    list_id: int | None = None,
    parent: dict[str, Any] | None = None,
    user: str = ALICE,
) -> dict[str, dict[str, Any]]:
    """Create the tree ``spec`` ({name: {child name: {...}}}, a name ending in ``*`` is a
    completed task), parents first, siblings in the order written, top-level tasks in
    ``list_id`` (the default list when None). Returns name (without ``*``) -> task."""
    made: dict[str, dict[str, Any]] = {}
    for raw_name, children in spec.items():
        name = raw_name.rstrip("*")
        fields: dict[str, Any] = {"title": name, "completed": raw_name.endswith("*")}
        if parent is not None:
            fields["parent_id"] = parent["id"]
        elif list_id is not None:
            fields["list_id"] = list_id
        made[name] = create(client, headers, user, **fields)
        made.update(build(client, headers, children, parent=made[name], user=user))
    return made


def fetch(client: Any, headers: dict[str, str], task_id: int, user: str = ALICE) -> Any:
    """GET one task: the response, 200 and a well-formed task."""
    resp = client.get(tasks_url(user, task_id), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_task(resp.get_json())
    return resp


def views(client: Any, headers: dict[str, str], tasks: dict[str, dict], user: str = ALICE):
    """name -> (body, ETag) of each task, read now."""
    result = {}
    for name, task in tasks.items():
        resp = fetch(client, headers, task["id"], user)
        result[name] = (resp.get_json(), etag_of(resp))
    return result


def is_gone(client: Any, headers: dict[str, str], task_id: int, user: str = ALICE) -> bool:
    resp = client.get(tasks_url(user, task_id), headers=headers)
    if resp.status_code == 404:
        assert_error(resp, 404)
        return True
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return False


def listing(client: Any, headers: dict[str, str], query: Any = None, user: str = ALICE):
    """Every task the list answers for ``query``, all pages, in order (the list must be
    200 and its pages agree with X-Pagination's total)."""
    query = dict(query or {})
    query.setdefault("page_size", 500)
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = client.get(tasks_url(user, query={**query, "page": page}), headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        meta = json.loads(resp.headers["X-Pagination"])
        tasks += [assert_task(task) for task in resp.get_json()]
        if page >= meta["last_page"]:
            break
        page += 1
    assert meta["total"] == len(tasks), (meta, len(tasks))
    assert len({task["id"] for task in tasks}) == len(tasks), "a task listed twice"
    return tasks


def siblings(client: Any, headers: dict[str, str], list_id: int, parent_id: int | None, user=ALICE):
    """One sibling set in its manual order (``list_id`` + ``parent_id`` + sort=position)."""
    query = {"list_id": list_id, "parent_id": "none" if parent_id is None else parent_id}
    tasks = listing(client, headers, {**query, "sort": "position"}, user)
    assert all(t["list_id"] == list_id and t["parent_id"] == parent_id for t in tasks), tasks
    assert_positions_increase(tasks)
    return tasks


def everything(client: Any, headers: dict[str, str], user: str = ALICE) -> list[dict[str, Any]]:
    """Every task of the user, by id: to show that a refused write changed nothing."""
    return sorted(listing(client, headers, None, user), key=lambda task: task["id"])


def write(client, headers, task_id, method, suffix, body, user=ALICE, **extra_headers):
    kwargs = {} if body is None else {"json": body}
    headers = {**headers, **extra_headers}
    return client.open(tasks_url(user, task_id, suffix), method=method, headers=headers, **kwargs)


def error_text(body: dict[str, Any]) -> str:
    """The message and the errors of an error body, as one string to search."""
    return body["message"] + " " + json.dumps(body.get("errors", {}))


def assert_json_422(resp: Any, *fields: str) -> dict[str, Any]:
    """A 422 whose errors are under ``json`` only, with one of ``fields`` among them (any
    field when none is named)."""
    body = assert_error(resp, 422)
    errors = body.get("errors")
    assert isinstance(errors, dict) and list(errors) == ["json"], body
    assert isinstance(errors["json"], dict) and errors["json"], body
    if fields:
        assert any(errors["json"].get(field) for field in fields), (fields, body)
    return body


def parse_time(text: str) -> datetime:
    assert TIMESTAMP_RE.match(text), text
    return datetime.fromisoformat(text)


def assert_changed(before: tuple[dict, str], after: tuple[dict, str], completed: bool) -> None:
    """A task the tree rules changed: the new ``completed``, a new ``updated_at``,
    ``completed_at`` and ETag (docs/api.md, "Subtasks": "Every task that changes gets a new
    ``updated_at``, ``completed_at`` and ETag")."""
    (old, old_etag), (new, new_etag) = before, after
    assert old["completed"] is not completed, old
    assert new["completed"] is completed, new
    assert new["updated_at"] != old["updated_at"], (old, new)
    assert parse_time(new["updated_at"]) >= parse_time(old["updated_at"]), (old, new)
    assert new["completed_at"] != old["completed_at"], (old, new)
    assert new_etag != old_etag, (old, new)
    # Everything else about the task is as it was.
    untouched = ("id", "title", "description", "tags", "list_id", "parent_id", "position")
    assert {k: new[k] for k in untouched} == {k: old[k] for k in untouched}, (old, new)


def assert_new_etag_served(client, headers, task_id: int, old_etag: str, user=ALICE) -> None:
    """``If-None-Match`` with the old ETag: 200 with the task (not 304); with the new: 304."""
    resp = client.get(tasks_url(user, task_id), headers={**headers, "If-None-Match": old_etag})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_task(resp.get_json(), id=task_id)
    current = etag_of(resp)
    again = client.get(tasks_url(user, task_id), headers={**headers, "If-None-Match": current})
    assert again.status_code == 304, again.get_data(as_text=True)


def resolve(query: dict[str, Any], names: dict[str, int]) -> dict[str, Any]:
    """``{"list_id": "@L1"}`` -> ``{"list_id": <L1's id>}``; other values as they are."""
    return {
        key: names[value[1:]] if isinstance(value, str) and value.startswith("@") else value
        for key, value in query.items()
    }


# --------------------------------------------------------------------------- the fields


def test_every_task_has_list_id_parent_id_and_position_in_order(client, alice):
    default = default_list(client, alice)
    top = create(client, alice, title="top")
    assert_task(top, list_id=default, parent_id=None, title="top")
    child = create(client, alice, title="child", parent_id=top["id"])
    assert_task(child, list_id=default, parent_id=top["id"])
    explicit_null = create(client, alice, title="null parent", parent_id=None)
    assert_task(explicit_null, list_id=default, parent_id=None)
    # Every answer that carries a task carries the three fields in their place.
    for task in (top, child):
        assert fetch(client, alice, task["id"]).get_json() == task
    for task in listing(client, alice):
        assert_task(task)
    put = client.put(tasks_url(task_id=child["id"]), headers=alice, json={"title": "renamed"})
    assert put.status_code == 200
    assert_task(put.get_json(), list_id=default, parent_id=top["id"], position=child["position"])
    toggled = client.patch(tasks_url(task_id=child["id"], suffix="/complete"), headers=alice)
    assert toggled.status_code == 200
    assert_task(toggled.get_json(), list_id=default, parent_id=top["id"], completed=True)


def test_create_in_a_list_puts_the_task_there(client, alice):
    groceries = new_list(client, alice, "Groceries")
    task = create(client, alice, title="milk", list_id=groceries)
    assert_task(task, list_id=groceries, parent_id=None)
    assert fetch(client, alice, task["id"]).get_json()["list_id"] == groceries


@pytest.mark.parametrize("position", ["a0", "", None, 5])
def test_create_with_position_is_422(client, alice, position):
    resp = client.post(tasks_url(), headers=alice, json={"title": "a", "position": position})
    assert_json_422(resp, "position")
    assert everything(client, alice) == []


# --------------------------------------------------------------------------- create a subtask


def test_create_subtask_without_list_id_goes_to_the_parents_list(client, alice):
    groceries = new_list(client, alice, "Groceries")
    parent = create(client, alice, title="parent", list_id=groceries)
    child = create(client, alice, title="child", parent_id=parent["id"])
    assert_task(child, list_id=groceries, parent_id=parent["id"])
    grandchild = create(client, alice, title="grandchild", parent_id=child["id"])
    assert_task(grandchild, list_id=groceries, parent_id=child["id"])


def test_create_subtask_with_the_parents_list_id_is_accepted(client, alice):
    groceries = new_list(client, alice, "Groceries")
    parent = create(client, alice, title="parent", list_id=groceries)
    child = create(client, alice, title="child", parent_id=parent["id"], list_id=groceries)
    assert_task(child, list_id=groceries, parent_id=parent["id"])


@pytest.mark.parametrize("other", ["another-list", "default-list"])
def test_create_subtask_in_another_list_than_the_parents_is_422(client, alice, other):
    groceries = new_list(client, alice, "Groceries")
    if other == "another-list":
        elsewhere = new_list(client, alice, "Work")
    else:
        elsewhere = default_list(client, alice)
    parent = create(client, alice, title="parent", list_id=groceries)
    before = everything(client, alice)
    resp = client.post(
        tasks_url(),
        headers=alice,
        json={"title": "c", "parent_id": parent["id"], "list_id": elsewhere},
    )
    assert_json_422(resp, "list_id", "parent_id")
    assert "Location" not in resp.headers
    assert everything(client, alice) == before


@pytest.mark.parametrize("kind", ["unknown", "bobs", "deleted"])
def test_create_with_a_parent_id_not_yours_is_422_under_parent_id(client, alice, bob, kind):
    bobs = create(client, bob, BOB, title="bob's")
    mine = create(client, alice, title="mine")
    gone = create(client, alice, title="gone")
    assert client.delete(tasks_url(task_id=gone["id"]), headers=alice).status_code == 204
    parent_id = {"unknown": UNKNOWN_ID, "bobs": bobs["id"], "deleted": gone["id"]}[kind]
    before = everything(client, alice)
    resp = client.post(tasks_url(), headers=alice, json={"title": "c", "parent_id": parent_id})
    assert_json_422(resp, "parent_id")
    assert everything(client, alice) == before == [mine]
    assert [t["id"] for t in listing(client, bob, user=BOB)] == [bobs["id"]]


@pytest.mark.parametrize("kind", ["unknown", "bobs", "deleted"])
def test_create_with_a_list_id_not_yours_is_422_under_list_id(client, alice, bob, kind):
    bobs = new_list(client, bob, "Bob's", user=BOB)
    gone = new_list(client, alice, "gone")
    assert client.delete(lists_url(ALICE, gone), headers=alice).status_code == 204
    list_id = {"unknown": UNKNOWN_ID, "bobs": bobs, "deleted": gone}[kind]
    resp = client.post(tasks_url(), headers=alice, json={"title": "c", "list_id": list_id})
    assert_json_422(resp, "list_id")
    assert everything(client, alice) == []


@pytest.mark.parametrize("value", ["abc", 1.5, True, [1], {"id": 1}, ""])
@pytest.mark.parametrize("field", ["list_id", "parent_id"])
def test_create_with_a_tree_field_of_the_wrong_type_is_422(client, alice, field, value):
    create(client, alice, title="existing")
    before = everything(client, alice)
    resp = client.post(tasks_url(), headers=alice, json={"title": "c", field: value})
    assert_json_422(resp, field)
    assert everything(client, alice) == before


def test_create_levels_1_to_4_succeed_and_a_5th_is_422_saying_4_levels(client, alice):
    groceries = new_list(client, alice, "Groceries")
    chain = [create(client, alice, title="level 1", list_id=groceries)]
    for level in range(2, MAX_DEPTH + 1):
        task = create(client, alice, title=f"level {level}", parent_id=chain[-1]["id"])
        assert_task(task, list_id=groceries, parent_id=chain[-1]["id"])
        chain.append(task)
    before = everything(client, alice)
    resp = client.post(
        tasks_url(), headers=alice, json={"title": "level 5", "parent_id": chain[-1]["id"]}
    )
    body = assert_json_422(resp)  # docs/api.md, "Create": a 422 under errors.json
    message = body["message"]
    assert re.search(r"\b4\b", message) and re.search(r"level|deep|depth", message, re.I), body
    assert everything(client, alice) == before
    # A sibling at level 4 is still fine: the limit is on depth, not on the chain's size.
    assert_task(create(client, alice, title="4b", parent_id=chain[-2]["id"]), list_id=groceries)


def test_a_new_task_comes_last_among_its_siblings(client, alice):
    """Each create lands after every sibling it has (same list, same parent), whatever
    was created in the meantime elsewhere."""
    groceries, work = new_list(client, alice, "Groceries"), new_list(client, alice, "Work")
    default = default_list(client, alice)
    parent = create(client, alice, title="parent", list_id=groceries)
    plan = [  # (list_id, parent_id) of each create, interleaved
        (groceries, None),
        (groceries, parent["id"]),
        (work, None),
        (default, None),
        (groceries, None),
        (groceries, parent["id"]),
        (work, None),
        (groceries, parent["id"]),
        (groceries, None),
        (default, None),
        (groceries, None),
    ]
    for i, (list_id, parent_id) in enumerate(plan):
        before = siblings(client, alice, list_id, parent_id)
        fields = {"parent_id": parent_id} if parent_id else {"list_id": list_id}
        task = create(client, alice, title=f"task {i}", **fields)
        after = siblings(client, alice, list_id, parent_id)
        assert [t["id"] for t in after] == [t["id"] for t in before] + [task["id"]]
        assert after[-1]["position"] == task["position"]
        assert_positions_increase([*before, task])


# --------------------------------------------------------------------------- update


PUT_TREE_FIELDS = [  # (body, field refused)
    ({"list_id": "@other_list"}, "list_id"),
    ({"list_id": "@same_list"}, "list_id"),
    ({"parent_id": "@other_task"}, "parent_id"),
    ({"parent_id": None}, "parent_id"),
    ({"position": "a0"}, "position"),
    ({"position": "@own_position"}, "position"),
    ({"title": "renamed", "parent_id": "@other_task"}, "parent_id"),
    ({"completed": True, "list_id": "@other_list"}, "list_id"),
]


@pytest.mark.parametrize(("body", "field"), PUT_TREE_FIELDS)
def test_put_with_list_id_parent_id_or_position_is_422_saying_use_move(client, alice, body, field):
    groceries, other_list = new_list(client, alice, "Groceries"), new_list(client, alice, "Work")
    tree = build(client, alice, {"P": {"C": {}}, "O": {}}, list_id=groceries)
    task = tree["C"]
    names = {
        "other_list": other_list,
        "same_list": groceries,
        "other_task": tree["O"]["id"],
        "own_position": task["position"],
    }
    before_all = everything(client, alice)
    before = fetch(client, alice, task["id"])
    resp = client.put(tasks_url(task_id=task["id"]), headers=alice, json=resolve(body, names))
    err = assert_json_422(resp, field)
    assert "move" in error_text(err).lower(), err
    after = fetch(client, alice, task["id"])
    assert after.get_json() == before.get_json()
    assert etag_of(after) == etag_of(before)
    assert everything(client, alice) == before_all


# --------------------------------------------------------------------------- completion


COMPLETE_WAYS = {  # how to complete a task: method, suffix, body
    "toggle": ("PATCH", "/complete", None),
    "set": ("PATCH", "/complete", {"completed": True}),
    "put": ("PUT", "", {"completed": True}),
}
REOPEN_WAYS = {
    "toggle": ("PATCH", "/complete", None),
    "set": ("PATCH", "/complete", {"completed": False}),
    "put": ("PUT", "", {"completed": False}),
}


@pytest.mark.parametrize("way", COMPLETE_WAYS)
def test_completing_a_task_completes_every_open_descendant(client, alice, way):
    spec = {
        "R": {"A": {"A1": {"A1a": {}, "A1b*": {}}}, "B*": {"B1*": {}}, "C": {}},
        "S": {"S1": {}},
    }
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    method, suffix, body = COMPLETE_WAYS[way]
    resp = write(client, alice, tree["R"]["id"], method, suffix, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_task(resp.get_json(), id=tree["R"]["id"], completed=True)
    after = views(client, alice, tree)
    assert etag_of(resp) == after["R"][1]
    assert resp.get_json() == after["R"][0]
    changed = {"R", "A", "A1", "A1a", "C"}
    for name in tree:
        if name in changed:
            assert_changed(before[name], after[name], completed=True)
            assert_new_etag_served(client, alice, tree[name]["id"], before[name][1])
        else:  # already completed below R (keep their completed_at), or outside R's subtree
            assert after[name] == before[name], name


@pytest.mark.parametrize("top_completed", [True, False], ids=["all-completed", "top-open"])
@pytest.mark.parametrize("way", REOPEN_WAYS)
def test_reopening_a_task_reopens_every_completed_ancestor_only(client, alice, way, top_completed):
    spec = {
        ("L1*" if top_completed else "L1"): {
            "L2*": {"L3*": {"L4*": {}, "L4b*": {}}, "L3b*": {}},
            "L2b*": {},
        },
        "Other*": {"Other1*": {}},
    }
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    method, suffix, body = REOPEN_WAYS[way]
    resp = write(client, alice, tree["L3"]["id"], method, suffix, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_task(resp.get_json(), id=tree["L3"]["id"], completed=False, completed_at=None)
    after = views(client, alice, tree)
    assert etag_of(resp) == after["L3"][1]
    changed = {"L3", "L2"} | ({"L1"} if top_completed else set())
    for name in tree:
        if name in changed:
            assert_changed(before[name], after[name], completed=False)
            assert after[name][0]["completed_at"] is None
            assert_new_etag_served(client, alice, tree[name]["id"], before[name][1])
        else:  # descendants (L4, L4b), siblings (L3b, L2b), an open L1, another tree
            assert after[name] == before[name], name


@pytest.mark.parametrize("top_completed", [True, False], ids=["all-completed", "top-open"])
def test_open_subtask_created_under_a_completed_task_reopens_it_and_its_ancestors(
    client, alice, top_completed
):
    spec = {
        ("L1*" if top_completed else "L1"): {"L2*": {"L3*": {"L3a*": {}}}, "L2b*": {}},
        "Other*": {},
    }
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    new = create(client, alice, title="new", parent_id=tree["L3"]["id"])
    assert_task(new, completed=False, parent_id=tree["L3"]["id"], list_id=tree["L3"]["list_id"])
    after = views(client, alice, tree)
    changed = {"L3", "L2"} | ({"L1"} if top_completed else set())
    for name in tree:
        if name in changed:
            assert_changed(before[name], after[name], completed=False)
            assert_new_etag_served(client, alice, tree[name]["id"], before[name][1])
        else:
            assert after[name] == before[name], name


@pytest.mark.parametrize(
    ("spec", "parent", "completed"),
    [
        ({"L1*": {"L2*": {"L3*": {}}}}, "L2", True),
        ({"L1": {"L2": {}}}, "L2", True),
        ({"L1": {"L2": {}}}, "L2", False),
        ({"L1": {"L2*": {}}}, "L2", True),
    ],
    ids=["completed-under-completed", "completed-under-open", "open-under-open", "completed-mixed"],
)
def test_subtask_that_breaks_no_rule_changes_nothing_above(client, alice, spec, parent, completed):
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    new = create(client, alice, title="new", parent_id=tree[parent]["id"], completed=completed)
    assert_task(new, completed=completed, parent_id=tree[parent]["id"])
    assert views(client, alice, tree) == before


# --------------------------------------------------------------------------- delete, clear


def test_deleting_a_task_deletes_every_level_below_and_leaves_the_rest(client, alice):
    spec = {"L1": {"L2": {"L3": {"L4": {}}, "L3b": {}}, "L2b": {"X": {}}}, "Other": {}}
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    resp = client.delete(tasks_url(task_id=tree["L2"]["id"]), headers=alice)
    assert resp.status_code == 204, resp.get_data(as_text=True)
    assert resp.get_data() == b""
    deleted = {"L2", "L3", "L4", "L3b"}
    for name in deleted:
        assert is_gone(client, alice, tree[name]["id"]), name
    kept = {name: tree[name] for name in tree if name not in deleted}
    assert views(client, alice, kept) == {name: before[name] for name in kept}
    assert {t["id"] for t in listing(client, alice)} == {t["id"] for t in kept.values()}


def test_delete_if_match_is_the_named_tasks_etag(client, alice):
    """docs/api.md, "Delete": If-Match applies to the task named in the path."""
    tree = build(client, alice, {"P": {"C": {}}})
    child_etag = etag_of(fetch(client, alice, tree["C"]["id"]))
    url = tasks_url(task_id=tree["P"]["id"])
    assert_error(client.delete(url, headers={**alice, "If-Match": child_etag}), 412)
    assert not is_gone(client, alice, tree["P"]["id"])
    assert not is_gone(client, alice, tree["C"]["id"])
    parent_etag = etag_of(fetch(client, alice, tree["P"]["id"]))
    assert client.delete(url, headers={**alice, "If-Match": parent_etag}).status_code == 204
    assert is_gone(client, alice, tree["P"]["id"]) and is_gone(client, alice, tree["C"]["id"])


def test_clear_completed_removes_completed_tasks_and_leaves_no_orphan(client, alice):
    work = new_list(client, alice, "Work")
    tree = build(
        client,
        alice,
        {
            "A*": {"A1*": {"A1a*": {}}},
            "B": {"B1*": {"B1a*": {}}, "B2": {"B2a*": {}, "B2b": {}}},
            "C": {"C1": {}},
        },
    )
    tree |= build(client, alice, {"W*": {"W1*": {}}, "V": {"V1*": {}}}, list_id=work)
    completed = {name for name, task in tree.items() if task["completed"]}
    resp = client.delete(tasks_url(query="status=completed"), headers=alice)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"deleted": len(completed)}
    remaining = listing(client, alice)
    assert {t["id"] for t in remaining} == {tree[n]["id"] for n in tree if n not in completed}
    ids = {t["id"] for t in remaining}
    assert all(t["parent_id"] is None or t["parent_id"] in ids for t in remaining), remaining
    for name in completed:
        assert is_gone(client, alice, tree[name]["id"]), name


# --------------------------------------------------------------------------- the list's filters


@pytest.fixture
def forest(client, alice, bob) -> dict[str, int]:
    """Alice's tasks in three lists, and Bob's look-alikes; name -> id (lists too)."""
    names = {"L1": new_list(client, alice, "L1"), "L2": new_list(client, alice, "L2")}
    names["D"] = default_list(client, alice)
    tree = build(
        client, alice, {"P": {"P1": {"P1a*": {}}, "P2*": {}}, "Q*": {}}, list_id=names["L1"]
    )
    tree |= build(client, alice, {"R": {"R1": {}}}, list_id=names["L2"])
    tree |= build(client, alice, {"S": {"S1*": {}}})
    names |= {name: task["id"] for name, task in tree.items()}
    names["BL"] = new_list(client, bob, "Bob's", user=BOB)
    bobs = build(client, bob, {"BT": {"BT1": {}}}, list_id=names["BL"], user=BOB)
    names |= {name: task["id"] for name, task in bobs.items()}
    return names


FILTER_CASES = [  # (query, names found), newest first (the default sort)
    ({"list_id": "@L1"}, ["Q", "P2", "P1a", "P1", "P"]),
    ({"list_id": "@L2"}, ["R1", "R"]),
    ({"list_id": "@D"}, ["S1", "S"]),
    ({"list_id": "@BL"}, []),  # Bob's list: matches nothing
    ({"list_id": UNKNOWN_ID}, []),
    ({"parent_id": "@P"}, ["P2", "P1"]),  # direct subtasks only: not P1a
    ({"parent_id": "@P1"}, ["P1a"]),
    ({"parent_id": "@Q"}, []),
    ({"parent_id": "none"}, ["S", "R", "Q", "P"]),  # every list's top level
    ({"parent_id": "@BT"}, []),  # Bob's task: matches nothing
    ({"list_id": "@L1", "parent_id": "none"}, ["Q", "P"]),
    ({"list_id": "@L1", "parent_id": "@P"}, ["P2", "P1"]),
    ({"list_id": "@L2", "parent_id": "@P"}, []),  # P is in L1
    ({"list_id": "@L1", "status": "completed"}, ["Q", "P2", "P1a"]),
    ({"list_id": "@L1", "status": "pending"}, ["P1", "P"]),
    ({"parent_id": "none", "status": "completed"}, ["Q"]),
    ({"parent_id": "none", "status": "pending"}, ["S", "R", "P"]),
    ({"parent_id": "@P", "status": "pending"}, ["P1"]),
    ({"list_id": "@L1", "parent_id": "none", "status": "pending"}, ["P"]),
    ({"list_id": "@L1", "sort": "title", "order": "asc"}, ["P", "P1", "P1a", "P2", "Q"]),
]


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
def test_list_id_and_parent_id_filters_combine_and_count_exactly(
    client, alice, forest, query, expected
):
    wanted = [forest[name] for name in expected]
    resolved = resolve(query, forest)
    resp = client.get(tasks_url(query=resolved), headers=alice)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [assert_task(t)["id"] for t in resp.get_json()] == wanted
    assert json.loads(resp.headers["X-Pagination"])["total"] == len(wanted)
    # On a page smaller than the set, total still counts the whole filtered set.
    small = client.get(tasks_url(query={**resolved, "page_size": 1}), headers=alice)
    assert small.status_code == 200
    assert [t["id"] for t in small.get_json()] == wanted[:1]
    assert json.loads(small.headers["X-Pagination"])["total"] == len(wanted)


def test_list_id_filter_returns_every_level_of_the_list(client, alice, forest):
    tasks = listing(client, alice, {"list_id": forest["L1"]})
    assert {t["id"] for t in tasks} == {forest[n] for n in ("P", "P1", "P1a", "P2", "Q")}
    assert {t["list_id"] for t in tasks} == {forest["L1"]}
    assert {t["parent_id"] for t in tasks} == {None, forest["P"], forest["P1"]}


def reorder(client, headers, task_id: int, after_id: int | None) -> None:
    """Move a task among its siblings (docs/api.md, "Move"), to give positions an order
    that is not the ids' order."""
    resp = client.post(
        tasks_url(task_id=task_id, suffix="/move"), headers=headers, json={"after_id": after_id}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_sort_position_is_ascending_by_default_and_descending_with_order_desc(client, alice):
    groceries = new_list(client, alice, "Groceries")
    tree = build(client, alice, {"A": {}, "B": {}, "C": {}, "D": {}}, list_id=groceries)
    reorder(client, alice, tree["D"]["id"], None)  # D A B C
    reorder(client, alice, tree["B"]["id"], tree["C"]["id"])  # D A C B
    manual = [tree[n]["id"] for n in "DACB"]
    base = {"list_id": groceries, "sort": "position"}
    for query, expected in (
        (base, manual),
        ({**base, "order": "asc"}, manual),
        ({**base, "order": "desc"}, manual[::-1]),
    ):
        resp = client.get(tasks_url(query=query), headers=alice)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert [t["id"] for t in resp.get_json()] == expected, query
        assert json.loads(resp.headers["X-Pagination"])["total"] == 4


def test_sort_position_across_lists_breaks_ties_by_id(client, alice):
    """Without ``list_id`` several sibling sets mix (each list's first task may well have
    the same key): the order is position byte by byte, then id; desc reverses both."""
    lists = [new_list(client, alice, f"List {i}") for i in range(4)]
    for list_id in lists:
        build(client, alice, {"first": {"sub": {}}, "second": {}}, list_id=list_id)
    build(client, alice, {"x": {}, "y": {}})
    asc = listing(client, alice, {"sort": "position"})
    assert [t["id"] for t in asc] == [t["id"] for t in sorted(asc, key=position_key)]
    desc = listing(client, alice, {"sort": "position", "order": "desc"})
    assert [t["id"] for t in desc] == [t["id"] for t in asc][::-1]
    paged = []
    for page in range(1, 5):
        query = {"sort": "position", "page_size": 4, "page": page}
        resp = client.get(tasks_url(query=query), headers=alice)
        assert resp.status_code == 200
        paged += [t["id"] for t in resp.get_json()]
    assert paged == [t["id"] for t in asc]


def test_list_id_with_sort_position_is_the_lists_manual_order(client, alice):
    """docs/api.md, "A list in its manual order": the list's tasks, subtasks included, each
    set of siblings in order; grouped by parent_id they draw the tree."""
    groceries = new_list(client, alice, "Groceries")
    spec = {"A": {"A1": {"A1a": {}, "A1b": {}}, "A2": {}, "A3": {}}, "B": {}, "C": {"C1": {}}}
    tree = build(client, alice, spec, list_id=groceries)
    build(client, alice, {"elsewhere": {"e1": {}}})  # the default list: not in the answer
    reorder(client, alice, tree["C"]["id"], None)  # C A B
    reorder(client, alice, tree["A3"]["id"], tree["A1"]["id"])  # A1 A3 A2
    reorder(client, alice, tree["A1b"]["id"], None)  # A1b A1a
    expected = {  # parent name -> children names in manual order
        None: ["C", "A", "B"],
        "A": ["A1", "A3", "A2"],
        "A1": ["A1b", "A1a"],
        "C": ["C1"],
    }
    tasks = listing(client, alice, {"list_id": groceries, "sort": "position"})
    assert {t["id"] for t in tasks} == {t["id"] for t in tree.values()}
    assert [t["id"] for t in tasks] == [t["id"] for t in sorted(tasks, key=position_key)]
    for parent, children in expected.items():
        parent_id = None if parent is None else tree[parent]["id"]
        group = [t for t in tasks if t["parent_id"] == parent_id]
        assert [t["id"] for t in group] == [tree[n]["id"] for n in children], parent
        assert_positions_increase(group)
        # The same as asking for that sibling set alone.
        assert [t["id"] for t in siblings(client, alice, groceries, parent_id)] == [
            t["id"] for t in group
        ]
    for name in ("A1a", "A2", "B", "C1"):  # leaves: nobody's parent
        assert not [t for t in tasks if t["parent_id"] == tree[name]["id"]]


MALFORMED_QUERIES = [
    *[({"list_id": v}, "list_id") for v in ("abc", "1.5", "", "none", "1e3", "0x10", "[1]")],
    *[({"parent_id": v}, "parent_id") for v in ("abc", "1.5", "", "null", "1e3", "nil")],
    ({"list_id": "1", "parent_id": "x"}, "parent_id"),
]


@pytest.mark.parametrize(("query", "param"), MALFORMED_QUERIES)
def test_malformed_list_id_or_parent_id_is_422_under_query(client, alice, query, param):
    create(client, alice, title="a")
    resp = client.get(tasks_url(query=query), headers=alice)
    body = assert_error(resp, 422)
    assert list(body["errors"]) == ["query"], body
    assert body["errors"]["query"].get(param), body
    assert "X-Pagination" not in resp.headers


@pytest.mark.parametrize(
    ("query", "param"),
    [("list_id=1&list_id=2", "list_id"), ("parent_id=none&parent_id=none", "parent_id")],
)
def test_list_id_or_parent_id_given_twice_is_422(client, alice, query, param):
    resp = client.get(tasks_url(query=query), headers=alice)
    body = assert_error(resp, 422)
    assert list(body["errors"]) == ["query"] and body["errors"]["query"].get(param), body
