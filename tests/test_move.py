"""Moving a task: ``POST /api/{user_id}/tasks/{task_id}/move``.

Contract: docs/api.md, "Move" (every field's default, every row of its table of errors,
the subtree that follows, positions that fit in 64 characters, moves of one user applied
one after another), "Subtasks" (the 4 levels, completion following the tree), "A task"
(``position``) and "Conditional requests (ETags)" (``If-Match``, the new ``ETag``).

The expected result of a move is computed by a small model of the tree (``apply_move``:
who is where, in which order) from what the API answered before the move, and compared
with what it answers after; tests/test_tree_properties.py uses the same model. The
concurrent tests go through ``live_server`` with ``requests``, released together by a
barrier, so the service, not Python, has to put the moves one after another.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from conftest import ALICE, BOB, CONCURRENT_TIMEOUT, all_at_once, describe, lists_url, tasks_url
from support import assert_error
from test_subtasks import (
    MAX_DEPTH,
    MAX_POSITION,
    UNKNOWN_ID,
    assert_changed,
    assert_json_422,
    assert_new_etag_served,
    assert_task,
    build,
    create,
    default_list,
    etag_of,
    everything,
    fetch,
    new_list,
    position_key,
    resolve,
    siblings,
    views,
)

TIMEOUT = CONCURRENT_TIMEOUT

# --------------------------------------------------------------------------- the model

Shape = dict[int, tuple[int, "int | None", bool]]  # id -> (list_id, parent_id, completed)
Orders = dict[tuple[int, "int | None"], list[int]]  # (list_id, parent_id) -> ids in order


def shape_of(tasks: list[dict[str, Any]]) -> Shape:
    return {t["id"]: (t["list_id"], t["parent_id"], t["completed"]) for t in tasks}


def orders_of(tasks: list[dict[str, Any]]) -> Orders:
    """Every sibling set, in its manual order (position byte by byte, then id)."""
    orders: Orders = {}
    for task in sorted(tasks, key=position_key):
        orders.setdefault((task["list_id"], task["parent_id"]), []).append(task["id"])
    return orders


def assert_unique_positions(tasks: list[dict[str, Any]]) -> None:
    """No two siblings (same list, same parent) share a position; none is over 64."""
    seen: dict[tuple[int, int | None, str], int] = {}
    for task in tasks:
        key = (task["list_id"], task["parent_id"], task["position"])
        assert key not in seen, (task, seen[key])
        seen[key] = task["id"]
        assert len(task["position"]) <= MAX_POSITION, task


def children_of(shape: Shape, task_id: int) -> list[int]:
    return [i for i, (_, parent, _) in shape.items() if parent == task_id]


def subtree(shape: Shape, task_id: int) -> set[int]:
    """The task and every task below it."""
    found, todo = set(), [task_id]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children_of(shape, current)
    return found


def ancestors(shape: Shape, task_id: int | None) -> list[int]:
    """``task_id`` and the tasks above it, nearest first ([] for None)."""
    chain = []
    while task_id is not None:
        chain.append(task_id)
        task_id = shape[task_id][1]
    return chain


def level(shape: Shape, task_id: int | None) -> int:
    """1 for a top-level task, 0 for "no task" (the top level itself)."""
    return len(ancestors(shape, task_id))


def height(shape: Shape, task_id: int) -> int:
    """Levels in the task's subtree: 1 for a task without subtasks."""
    return 1 + max((height(shape, child) for child in children_of(shape, task_id)), default=0)


def reopen_upwards(shape: Shape, task_id: int | None) -> None:
    """An open task arrived under ``task_id``: it and the tasks above it are open now."""
    for above in ancestors(shape, task_id):
        list_id, parent, _ = shape[above]
        shape[above] = (list_id, parent, False)


def move_problems(
    shape: Shape, task_id: int, list_id: int, parent_id: int | None, after_id: int | None
) -> set[str]:
    """The rules of docs/api.md, "Move" that a move to (list_id, parent_id, after_id)
    breaks, all three known to be the user's: "list", "cycle", "sibling", "depth"."""
    problems = set()
    if parent_id is not None and shape[parent_id][0] != list_id:
        problems.add("list")
    if parent_id is not None and parent_id in subtree(shape, task_id):
        problems.add("cycle")
    if after_id is not None and (
        after_id == task_id or shape[after_id][:2] != (list_id, parent_id)
    ):
        problems.add("sibling")
    if level(shape, parent_id) + height(shape, task_id) > MAX_DEPTH:
        problems.add("depth")
    return problems


def destination(
    shape: Shape, task_id: int, body: dict[str, Any]
) -> tuple[int, int | None, int | None]:
    """(list_id, parent_id, after_id) a move body means, with docs/api.md's defaults:
    list_id, the parent's list when parent_id is given, else the task's; parent_id, the
    task's parent when it stays in its list, else the top level; after_id, first."""
    current_list, current_parent, _ = shape[task_id]
    parent_id = body.get("parent_id")
    if "list_id" in body:
        list_id = body["list_id"]
    elif parent_id is not None:
        list_id = shape[parent_id][0]
    else:
        list_id = current_list
    if "parent_id" not in body:
        parent_id = current_parent if list_id == current_list else None
    return list_id, parent_id, body.get("after_id")


def apply_move(
    shape: Shape,
    orders: Orders,
    task_id: int,
    list_id: int,
    parent_id: int | None,
    after_id: int | None,
) -> tuple[Shape, Orders]:
    """The tree after a valid move: the subtree in ``list_id`` (shape and order kept), the
    task under ``parent_id`` right after ``after_id`` (first when None), and an open task's
    new completed ancestors reopened."""
    shape, orders = dict(shape), {key: list(ids) for key, ids in orders.items()}
    old_list, old_parent, completed = shape[task_id]
    source = orders[(old_list, old_parent)]
    source.remove(task_id)
    if not source:
        del orders[(old_list, old_parent)]
    for member in subtree(shape, task_id):
        _, parent, done = shape[member]
        shape[member] = (list_id, parent_id if member == task_id else parent, done)
        if (old_list, member) in orders and list_id != old_list:  # its subtasks' set
            orders[(list_id, member)] = orders.pop((old_list, member))
    target = orders.setdefault((list_id, parent_id), [])
    target.insert(0 if after_id is None else target.index(after_id) + 1, task_id)
    if not completed:
        reopen_upwards(shape, parent_id)
    return shape, orders


# --------------------------------------------------------------------------- helpers


def move(client, headers, task_id, body: Any = None, user: str = ALICE, **extra_headers):
    kwargs = {} if body is None else {"json": body}
    url = tasks_url(user, task_id, "/move")
    return client.post(url, headers={**headers, **extra_headers}, **kwargs)


def moved_ok(client, headers, task_id, body: Any, user: str = ALICE) -> dict[str, Any]:
    """A move that must succeed: 200 with the moved task, whose ETag and body are what a
    GET answers right after. The task."""
    resp = move(client, headers, task_id, body, user)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    task = assert_task(resp.get_json(), id=task_id)
    fetched = fetch(client, headers, task_id, user)
    assert fetched.get_json() == task
    assert etag_of(resp) == etag_of(fetched)
    return task


def ids(tasks: list[dict[str, Any]]) -> list[int]:
    return [task["id"] for task in tasks]


def check_tree(tasks: list[dict[str, Any]], shape: Shape, orders: Orders) -> None:
    """The tasks are exactly ``shape`` (where each is, open or not) in ``orders``."""
    assert shape_of(tasks) == shape
    assert_unique_positions(tasks)
    assert orders_of(tasks) == orders


FIXED = ("id", "user_id", "title", "description", "priority", "due_date", "tags", "created_at")


def fixed_fields(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What no move changes."""
    return [{key: task[key] for key in FIXED} for task in tasks]


# --------------------------------------------------------------------------- defaults


@pytest.fixture
def board(client, alice) -> dict[str, int]:
    """Two lists of Alice's, and her (empty) default list; name -> id."""
    names = {"L1": new_list(client, alice, "L1"), "L2": new_list(client, alice, "L2")}
    names["D"] = default_list(client, alice)
    spec1 = {"A": {"A1": {"A1a": {}}, "A2": {}}, "B": {}, "C": {}}
    tree = build(client, alice, spec1, list_id=names["L1"])
    tree |= build(client, alice, {"X": {"X1": {}}, "Y": {}}, list_id=names["L2"])
    return names | {name: task["id"] for name, task in tree.items()}


MOVE_CASES = [  # (task, body, destination list, parent, the destination's siblings after)
    ("C", {}, "L1", None, "C A B"),  # stays in its list under its parent, first
    ("C", {"after_id": None}, "L1", None, "C A B"),
    ("C", {"after_id": "@A"}, "L1", None, "A C B"),
    ("A", {"after_id": "@C"}, "L1", None, "B C A"),
    ("A", {"after_id": "@B"}, "L1", None, "B A C"),
    ("C", {"after_id": "@B"}, "L1", None, "A B C"),  # where it already is
    ("A2", {}, "L1", "A", "A2 A1"),
    ("A1", {"after_id": "@A2"}, "L1", "A", "A2 A1"),
    ("A2", {"list_id": "@L1"}, "L1", "A", "A2 A1"),  # its own list: it keeps its parent
    ("A2", {"parent_id": None}, "L1", None, "A2 A B C"),
    ("A2", {"parent_id": None, "after_id": "@C"}, "L1", None, "A B C A2"),
    ("C", {"parent_id": "@A"}, "L1", "A", "C A1 A2"),
    ("C", {"parent_id": "@A1", "after_id": "@A1a"}, "L1", "A1", "A1a C"),
    ("A1", {"parent_id": "@B"}, "L1", "B", "A1"),  # with A1a below it
    ("A2", {"list_id": "@L2"}, "L2", None, "A2 X Y"),  # another list: its top level
    ("A1", {"list_id": "@L2", "after_id": "@X"}, "L2", None, "X A1 Y"),
    ("A1", {"list_id": "@L2", "parent_id": None, "after_id": "@Y"}, "L2", None, "X Y A1"),
    ("B", {"list_id": "@L2", "after_id": "@X"}, "L2", None, "X B Y"),
    ("B", {"parent_id": "@X"}, "L2", "X", "B X1"),  # the parent's list
    ("B", {"parent_id": "@X", "after_id": "@X1"}, "L2", "X", "X1 B"),
    ("B", {"list_id": "@L2", "parent_id": "@X"}, "L2", "X", "B X1"),
    ("A", {"list_id": "@L2", "parent_id": "@Y"}, "L2", "Y", "A"),  # A1a ends at level 4
    ("X1", {"list_id": "@L1", "parent_id": None}, "L1", None, "X1 A B C"),
    ("A", {"list_id": "@D"}, "D", None, "A"),
]


@pytest.mark.parametrize(("name", "body", "to_list", "to_parent", "expected"), MOVE_CASES)
def test_move_places_the_task_as_the_fields_and_defaults_say(
    client, alice, board, name, body, to_list, to_parent, expected
):
    task_id = board[name]
    before = everything(client, alice)
    resolved = resolve(body, board)
    list_id, parent_id = board[to_list], None if to_parent is None else board[to_parent]
    moved = moved_ok(client, alice, task_id, resolved)
    assert_task(moved, list_id=list_id, parent_id=parent_id)
    assert ids(siblings(client, alice, list_id, parent_id)) == [board[n] for n in expected.split()]
    # Everything else, everywhere, is where the model says: the subtree came along.
    after = everything(client, alice)
    shape, orders = shape_of(before), orders_of(before)
    assert destination(shape, task_id, resolved) == (list_id, parent_id, resolved.get("after_id"))
    expected = apply_move(shape, orders, task_id, list_id, parent_id, resolved.get("after_id"))
    check_tree(after, *expected)
    assert fixed_fields(after) == fixed_fields(before)


def test_move_answers_the_moved_task_with_its_new_etag(client, alice):
    tree = build(client, alice, {"A": {}, "B": {}, "C": {}})
    old = fetch(client, alice, tree["C"]["id"])
    resp = move(client, alice, tree["C"]["id"], {"after_id": None})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = assert_task(resp.get_json(), id=tree["C"]["id"], title="C", parent_id=None)
    assert body["position"] < tree["A"]["position"]
    assert body["updated_at"] != old.get_json()["updated_at"]
    assert etag_of(resp) != etag_of(old)
    now = fetch(client, alice, tree["C"]["id"])
    assert etag_of(now) == etag_of(resp) and now.get_json() == body
    assert_new_etag_served(client, alice, tree["C"]["id"], etag_of(old))


def test_move_takes_the_subtree_along_with_ids_shape_order_and_new_etags(client, alice):
    l1, l2 = new_list(client, alice, "L1"), new_list(client, alice, "L2")
    spec = {"T": {"T1": {"T1a": {}, "T1b": {}, "T1c": {}}, "T2": {}, "T3": {}}, "U": {"U1": {}}}
    tree = build(client, alice, spec, list_id=l1)
    build(client, alice, {"Z": {}}, list_id=l2)
    moved_ok(client, alice, tree["T1c"]["id"], {"after_id": None})  # T1c T1a T1b
    moved_ok(client, alice, tree["T3"]["id"], {"after_id": tree["T1"]["id"]})  # T1 T3 T2
    before = views(client, alice, tree)
    whole_before = everything(client, alice)

    moved_ok(client, alice, tree["T"]["id"], {"list_id": l2, "after_id": None})

    after = views(client, alice, tree)
    members = ("T", "T1", "T1a", "T1b", "T1c", "T2", "T3")
    for name in members:
        (old, old_etag), (new, new_etag) = before[name], after[name]
        assert new["id"] == old["id"] and new["list_id"] == l2, (name, new)
        assert new["parent_id"] == old["parent_id"], (name, new)  # the same shape
        assert new["updated_at"] != old["updated_at"], name
        assert new_etag != old_etag, name
        assert_new_etag_served(client, alice, new["id"], old_etag)
    for name in ("U", "U1"):  # left behind, untouched
        assert after[name] == before[name], name
    by_name = {task["id"]: name for name, task in tree.items()}
    top_l2 = siblings(client, alice, l2, None)
    assert [by_name.get(i, "Z") for i in ids(top_l2)] == ["T", "Z"]
    for parent, expected in (("T", ["T1", "T3", "T2"]), ("T1", ["T1c", "T1a", "T1b"])):
        group = siblings(client, alice, l2, tree[parent]["id"])
        assert [by_name[i] for i in ids(group)] == expected, parent
    assert ids(siblings(client, alice, l1, None)) == [tree["U"]["id"]]
    shape, orders = shape_of(whole_before), orders_of(whole_before)
    check_tree(
        everything(client, alice), *apply_move(shape, orders, tree["T"]["id"], l2, None, None)
    )


def test_create_after_moves_still_comes_last(client, alice):
    tree = build(client, alice, {"A": {}, "B": {}, "C": {}})
    moved_ok(client, alice, tree["C"]["id"], {"after_id": None})  # C A B
    moved_ok(client, alice, tree["A"]["id"], {"after_id": tree["B"]["id"]})  # C B A
    new = create(client, alice, title="new")
    order = siblings(client, alice, new["list_id"], None)
    assert ids(order) == [tree["C"]["id"], tree["B"]["id"], tree["A"]["id"], new["id"]]


# --------------------------------------------------------------------------- If-Match, 404


@pytest.mark.parametrize("kind", ["current", "star", "listed"])
def test_move_with_a_matching_if_match_succeeds(client, alice, kind):
    tree = build(client, alice, {"A": {}, "B": {}})
    etag = etag_of(fetch(client, alice, tree["B"]["id"]))
    header = {"current": etag, "star": "*", "listed": f'"other", {etag}'}[kind]
    resp = move(client, alice, tree["B"]["id"], {"after_id": None}, **{"If-Match": header})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert ids(siblings(client, alice, tree["A"]["list_id"], None)) == [
        tree["B"]["id"],
        tree["A"]["id"],
    ]


@pytest.mark.parametrize("kind", ["stale", "weak", "parents", "unknown"])
def test_move_with_a_stale_if_match_is_412_and_moves_nothing(client, alice, kind):
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {"A": {"A1": {}}, "B": {"B1": {}}})
    stale = etag_of(fetch(client, alice, tree["B"]["id"]))
    renamed = client.put(tasks_url(task_id=tree["B"]["id"]), headers=alice, json={"title": "b"})
    assert renamed.status_code == 200
    current = etag_of(fetch(client, alice, tree["B"]["id"]))
    header = {
        "stale": stale,
        "weak": "W/" + current,  # a weak tag never matches (strong comparison)
        "parents": etag_of(fetch(client, alice, tree["A"]["id"])),
        "unknown": '"no-such-etag"',
    }[kind]
    before = everything(client, alice)
    for body in ({"after_id": None}, {"list_id": work}, {"parent_id": tree["A"]["id"]}):
        resp = move(client, alice, tree["B"]["id"], body, **{"If-Match": header})
        assert "errors" not in assert_error(resp, 412)
        assert everything(client, alice) == before
    assert etag_of(fetch(client, alice, tree["B"]["id"])) == current


@pytest.mark.parametrize("kind", ["bobs", "unknown", "deleted"])
def test_move_of_a_task_that_is_not_yours_is_404(client, alice, bob, kind):
    bobs = build(client, bob, {"BA": {}, "BB": {}}, user=BOB)
    mine = build(client, alice, {"A": {}})
    gone = create(client, alice, title="gone")
    assert client.delete(tasks_url(task_id=gone["id"]), headers=alice).status_code == 204
    task_id = {"bobs": bobs["BB"]["id"], "unknown": UNKNOWN_ID, "deleted": gone["id"]}[kind]
    bob_before, alice_before = everything(client, bob, BOB), everything(client, alice)
    for body in ({}, {"after_id": None}, {"parent_id": mine["A"]["id"]}):
        resp = move(client, alice, task_id, body)
        assert "errors" not in assert_error(resp, 404)
    assert everything(client, bob, BOB) == bob_before
    assert everything(client, alice) == alice_before


@pytest.mark.parametrize("kind", ["unknown", "bobs", "deleted"])
@pytest.mark.parametrize("field", ["list_id", "parent_id", "after_id"])
def test_move_to_a_list_or_task_that_is_not_yours_is_422_under_its_field(
    client, alice, bob, field, kind
):
    bob_list = new_list(client, bob, "Bob's", user=BOB)
    bobs = build(client, bob, {"BA": {}}, list_id=bob_list, user=BOB)
    tree = build(client, alice, {"A": {}, "B": {}})
    gone_list = new_list(client, alice, "gone")
    assert client.delete(lists_url(ALICE, gone_list), headers=alice).status_code == 204
    gone = create(client, alice, title="gone")
    assert client.delete(tasks_url(task_id=gone["id"]), headers=alice).status_code == 204
    value = {
        "unknown": UNKNOWN_ID,
        "bobs": bob_list if field == "list_id" else bobs["BA"]["id"],
        "deleted": gone_list if field == "list_id" else gone["id"],
    }[kind]
    before, bob_before = everything(client, alice), everything(client, bob, BOB)
    resp = move(client, alice, tree["B"]["id"], {field: value})
    assert_json_422(resp, field)
    assert everything(client, alice) == before
    assert everything(client, bob, BOB) == bob_before


WRONG_BODIES = [  # (body, field)
    ({"position": "a0"}, "position"),
    ({"before_id": 1}, "before_id"),
    ({"parentId": 1}, "parentId"),
    ({"title": "renamed"}, "title"),
    ({"id": 5}, "id"),
    ({"after_id": None, "index": 0}, "index"),
    ({"list_id": "abc"}, "list_id"),
    ({"list_id": None}, "list_id"),
    ({"list_id": 1.5}, "list_id"),
    ({"parent_id": "x"}, "parent_id"),
    ({"parent_id": True}, "parent_id"),
    ({"after_id": [1]}, "after_id"),
    ({"after_id": "first"}, "after_id"),
]


@pytest.mark.parametrize(("body", "field"), WRONG_BODIES)
def test_move_with_unknown_or_ill_typed_fields_is_422(client, alice, body, field):
    tree = build(client, alice, {"A": {}, "B": {}})
    before = everything(client, alice)
    assert_json_422(move(client, alice, tree["B"]["id"], body), field)
    assert everything(client, alice) == before


# --------------------------------------------------------------------------- the rules


@pytest.fixture
def rules_board(client, alice) -> dict[str, int]:
    """A 3-level A, a 2-level B and a 4-level chain D1..D4 in L1; X > X1 in L2."""
    names = {"L1": new_list(client, alice, "L1"), "L2": new_list(client, alice, "L2")}
    names["D"] = default_list(client, alice)
    spec = {"A": {"A1": {"A1a": {}}}, "B": {"B1": {}}, "D1": {"D2": {"D3": {"D4": {}}}}}
    tree = build(client, alice, spec, list_id=names["L1"])
    tree |= build(client, alice, {"X": {"X1": {}}}, list_id=names["L2"])
    return names | {name: task["id"] for name, task in tree.items()}


RULE_WORDS = {  # what the message of each rule must say
    "sibling": r"sibling",
    "list": r"list",
    "cycle": r"itself|descendant|subtask|own|inside|under|below|beneath|cycle|loop",
    "depth": r"\b4\b",
}
RULE_CASES = [  # (the rules broken, task, body)
    ("sibling", "B", {"after_id": "@A1"}),  # A1 is not at the top level
    ("sibling", "A1", {"after_id": "@B"}),  # A1 stays under A: B is not its sibling
    ("sibling", "B", {"list_id": "@L2", "after_id": "@A"}),  # A is in L1
    ("sibling", "B", {"parent_id": "@X", "after_id": "@X"}),  # the parent is no sibling
    ("sibling", "B", {"parent_id": None, "after_id": "@X"}),  # X is L2's, B stays in L1
    ("list", "B", {"list_id": "@L2", "parent_id": "@A"}),
    ("list", "B", {"list_id": "@D", "parent_id": "@A"}),
    ("list", "X1", {"list_id": "@L2", "parent_id": "@D1"}),
    ("cycle", "A", {"parent_id": "@A"}),  # itself
    ("cycle", "B", {"parent_id": "@B1"}),  # its subtask
    # Under a task two levels below it: always deeper than 4 as well; either message.
    ("cycle depth", "A", {"parent_id": "@A1a"}),
    ("cycle depth", "A1", {"parent_id": "@A1a"}),
    ("depth", "B", {"parent_id": "@D3"}),  # B at level 4, B1 at 5
    ("depth", "A", {"parent_id": "@D2"}),  # A1a at 5
    ("depth", "A1", {"parent_id": "@D3"}),
    ("depth", "X", {"parent_id": "@D3"}),  # from another list
    ("depth", "B", {"parent_id": "@D4"}),
    ("depth", "D2", {"parent_id": "@A1"}),  # D4 at 5
]


@pytest.mark.parametrize(("rules", "name", "body"), RULE_CASES)
def test_move_breaking_a_rule_is_422_saying_which_and_moves_nothing(
    client, alice, rules_board, rules, name, body
):
    before = everything(client, alice)
    resolved = resolve(body, rules_board)
    shape, task_id = shape_of(before), rules_board[name]
    assert move_problems(shape, task_id, *destination(shape, task_id, resolved)) == set(
        rules.split()
    )
    resp = move(client, alice, task_id, resolved)
    err = assert_error(resp, 422)
    words = "|".join(RULE_WORDS[rule] for rule in rules.split())
    assert re.search(words, err["message"], re.I), err
    assert everything(client, alice) == before


def test_move_rules_have_messages_of_their_own(client, alice, rules_board):
    """ "422 saying so", for each rule: four rules, four messages."""
    messages = {}
    for rules, name, body in RULE_CASES:
        if rules not in messages and rules in RULE_WORDS:
            resp = move(client, alice, rules_board[name], resolve(body, rules_board))
            messages[rules] = assert_error(resp, 422)["message"]
    assert len(set(messages.values())) == len(RULE_WORDS), messages


@pytest.mark.parametrize(
    ("name", "parent"), [("B", "D2"), ("A", "D1"), ("A1", "D2"), ("X", "D2"), ("D4", "D3")]
)
def test_move_to_exactly_4_levels_is_accepted(client, alice, rules_board, name, parent):
    before = everything(client, alice)
    moved = moved_ok(client, alice, rules_board[name], {"parent_id": rules_board[parent]})
    assert_task(moved, parent_id=rules_board[parent], list_id=rules_board["L1"])
    shape, orders = shape_of(before), orders_of(before)
    expected = apply_move(
        shape, orders, rules_board[name], rules_board["L1"], rules_board[parent], None
    )
    check_tree(everything(client, alice), *expected)
    deepest = max(level(expected[0], i) for i in subtree(expected[0], rules_board[name]))
    assert deepest == MAX_DEPTH


# --------------------------------------------------------------------------- completion


@pytest.mark.parametrize("from_list", ["same-list", "other-list"])
@pytest.mark.parametrize("top_completed", [True, False], ids=["all-completed", "top-open"])
def test_moving_an_open_task_under_a_completed_one_reopens_it_and_its_ancestors(
    client, alice, top_completed, from_list
):
    l1 = new_list(client, alice, "L1")
    l2 = l1 if from_list == "same-list" else new_list(client, alice, "L2")
    top = "P1*" if top_completed else "P1"
    tree = build(client, alice, {top: {"P2*": {"P3*": {}}}, "Other*": {}}, list_id=l1)
    tree |= build(client, alice, {"T": {"T1*": {}}}, list_id=l2)
    before = views(client, alice, tree)
    moved = moved_ok(client, alice, tree["T"]["id"], {"parent_id": tree["P2"]["id"]})
    assert_task(moved, parent_id=tree["P2"]["id"], list_id=l1, completed=False)
    after = views(client, alice, tree)
    reopened = {"P2"} | ({"P1"} if top_completed else set())
    for name in reopened:
        assert_changed(before[name], after[name], completed=False)
        assert_new_etag_served(client, alice, tree[name]["id"], before[name][1])
    unchanged = {"P3", "Other"} | ({"P1"} if not top_completed else set())
    if from_list == "same-list":
        unchanged.add("T1")  # its list and parent stay: nothing of it changes
    for name in unchanged:
        assert after[name] == before[name], name
    t1_before, t1_after = before["T1"][0], after["T1"][0]
    assert (t1_after["completed"], t1_after["completed_at"]) == (True, t1_before["completed_at"])
    assert (t1_after["parent_id"], t1_after["list_id"]) == (tree["T"]["id"], l1)


@pytest.mark.parametrize(
    "spec",
    [
        {"P": {"P1": {}}, "T*": {"T1*": {}}},  # completed under open
        {"P*": {"P1*": {}}, "T*": {"T1*": {}}},  # completed under completed
        {"P": {"P1": {}}, "T": {"T1*": {}}},  # open under open
    ],
    ids=["completed-under-open", "completed-under-completed", "open-under-open"],
)
def test_moving_a_task_that_breaks_no_completion_rule_changes_nothing_else(client, alice, spec):
    tree = build(client, alice, spec)
    before = views(client, alice, tree)
    body = {"parent_id": tree["P"]["id"], "after_id": tree["P1"]["id"]}
    moved = moved_ok(client, alice, tree["T"]["id"], body)
    old_t = before["T"][0]
    assert_task(moved, parent_id=tree["P"]["id"], completed=old_t["completed"])
    assert moved["completed_at"] == old_t["completed_at"]
    after = views(client, alice, tree)
    for name in ("P", "P1", "T1"):
        assert after[name] == before[name], name


# --------------------------------------------------------------------------- positions


@pytest.mark.parametrize("count", [300, 500])
def test_moves_right_after_the_same_first_sibling_keep_order_and_short_positions(
    client, alice, count
):
    """Each move puts the last task right after the first one, F: always between F and
    the task moved just before, the gap that halves at every move in fractional indexing.
    300 moves fit in 64 characters only with keys that grow slowly; 500 pass that in any
    scheme that halves the gap (about 6 bits a character in base 62), so the service has
    to lay the set out again (docs/api.md, "Move"). After every move the order is exactly
    what the moves say, positions are distinct and at most 64 characters; every few moves
    each task whose body changed (moved, or renumbered) has a new ETag."""
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {name: {} for name in "FABCDEGH"}, list_id=work)
    first = tree["F"]["id"]
    order = ids(siblings(client, alice, work, None))
    assert order == [tree[name]["id"] for name in "FABCDEGH"]
    seen = {}
    for task_id in order:
        resp = fetch(client, alice, task_id)
        seen[task_id] = (resp.get_json(), etag_of(resp))
    for i in range(count):
        task_id = order[-1]
        resp = move(client, alice, task_id, {"after_id": first})
        assert resp.status_code == 200, (i, resp.get_data(as_text=True))
        order.remove(task_id)
        order.insert(1, task_id)
        now = siblings(client, alice, work, None)  # strictly increasing positions
        assert ids(now) == order, i
        assert all(len(t["position"]) <= MAX_POSITION for t in now), (i, now)
        assert resp.get_json()["position"] == now[1]["position"], i
        if i % 25 == 0 or i == count - 1:
            for task_id in order:
                resp = fetch(client, alice, task_id)
                old_body, old_etag = seen[task_id]
                body = resp.get_json()
                if body != old_body:  # moved, or laid out again: a new ETag
                    assert etag_of(resp) != old_etag, (i, old_body, body)
                seen[task_id] = (body, etag_of(resp))


def serial_orders(initial: list[int], moves: list[tuple[int, int | None]]) -> set[tuple[int, ...]]:
    """Every order that applying ``moves`` (task, after_id) one after another, in any of
    their orders, can give from ``initial``."""
    results = set()
    for sequence in itertools.permutations(moves):
        order = list(initial)
        for task_id, after_id in sequence:
            order.remove(task_id)
            order.insert(0 if after_id is None else order.index(after_id) + 1, task_id)
        results.add(tuple(order))
    return results


def test_serial_orders_of_two_moves_is_both_orders():
    """The checker itself: two moves that interfere give two results, not one or four."""
    assert serial_orders([1, 2, 3], [(3, None), (1, 3)]) == {(3, 1, 2), (3, 2, 1)}
    assert serial_orders([1, 2, 3], [(1, 2)]) == {(2, 1, 3)}


CONCURRENT_PLANS = {  # each move: (task index, after which index, or None: first)
    "mixed": [(0, None), (1, 5), (2, 0), (3, None), (4, 7), (5, 2), (6, 1), (7, 3)],
    "all-after-the-first": [(i, 0) for i in range(1, 9)],
}


@pytest.mark.parametrize("plan", CONCURRENT_PLANS)
def test_concurrent_moves_in_one_sibling_set_match_some_serial_order(
    client, alice, live_server, plan
):
    """Eight moves of eight different tasks of one sibling set, all at once, three rounds.

    Every move is valid whatever order they run in (each places a task of the set after
    another task of the set, or first), so every one must be acknowledged (200). docs/api.md,
    "Move": moves of one user are applied one after another, never equal positions, never a
    lost move. So afterwards the positions are distinct (and at most 64 characters) and the
    order is one of those that applying the eight moves serially gives; 8! = 40320 serial
    orders, few enough to compute them all and check membership exactly. A move computed
    from a stale read of its neighbours (two moves taking the same gap, or one undoing
    another) gives equal positions or an order outside that set.
    """
    work = new_list(client, alice, "Work")
    count = 1 + max(max(task, after or 0) for task, after in CONCURRENT_PLANS[plan])
    tasks = build(client, alice, {f"T{i}": {} for i in range(count)}, list_id=work)
    index = [tasks[f"T{i}"]["id"] for i in range(count)]
    moves = [(index[t], None if a is None else index[a]) for t, a in CONCURRENT_PLANS[plan]]
    headers = {**alice}

    def call(task_id: int, after_id: int | None) -> Callable[[], requests.Response]:
        url = f"{live_server}{tasks_url(ALICE, task_id, '/move')}"
        return lambda: requests.post(
            url, json={"after_id": after_id}, headers=headers, timeout=TIMEOUT
        )

    for round_ in range(3):
        initial = ids(siblings(client, alice, work, None))
        responses = all_at_once([call(task_id, after_id) for task_id, after_id in moves])
        assert [r.status_code for r in responses] == [200] * len(moves), describe(responses)
        final = siblings(client, alice, work, None)  # strictly increasing: distinct
        assert all(len(t["position"]) <= MAX_POSITION for t in final), final
        assert tuple(ids(final)) in serial_orders(initial, moves), (round_, initial, ids(final))
        for response in responses:  # each answer is the moved task, in this set
            assert_task(response.json(), list_id=work, parent_id=None)
