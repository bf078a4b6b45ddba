"""The tree rules hold after any sequence of writes: a hypothesis state machine through the
HTTP API.

Contract: docs/api.md, "Subtasks" (4 levels; a subtask in its parent's list; completion and
deletion follow the tree: "a completed task never has an open subtask"), "Move" (defaults,
errors, the subtree that follows), "A task" (``position``: unique among siblings, at most
64 characters; "Create", "Toggle", "Update", "Delete", "Clear completed"), "Lists"
(``open_count``; deleting a list deletes its tasks; the default list cannot be deleted).

Each example is a new user (a uuid), so examples never see each other's data; the
tables are cleaned after the test as after any other. Each step is one write: create (top
level or under a random task, in a random list, open or completed, sometimes in the wrong
list, under a task 4 levels deep, or with a deleted id), toggle / set / ``PUT completed``,
move (random destination, valid or not), delete a task, create or delete a list (the
default one too), clear completed. After each step everything is read back (``GET
/lists`` and every page of ``GET /tasks``) and compared with what the step must have
done, computed from what was read before it (the model of tests/test_move.py: where each
task is, whether it is completed, each sibling set's order); a refused step (``422``,
``409``) must have changed nothing at all. Then the invariants are checked on what was
read: no completed task has an open descendant, a subtask is in its parent's list, depth
at most 4, positions unique per sibling set and at most 64 characters, no parent_id points
at a missing task, every task is in one of the user's lists, and each list's ``open_count``
is the number of its tasks not completed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from conftest import lists_url, tasks_url
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import assert_error
from test_move import (
    Orders,
    Shape,
    ancestors,
    apply_move,
    destination,
    level,
    move_problems,
    orders_of,
    reopen_upwards,
    shape_of,
    subtree,
)
from test_subtasks import (
    MAX_DEPTH,
    MAX_POSITION,
    UNKNOWN_ID,
    assert_json_422,
    assert_task,
    listing,
)

SETTINGS = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
MAX_LISTS = 5  # the machine's own bound, far below the service's 500
PAGE_SIZE = 10  # small pages: the read-back goes through several


def remove(shape: Shape, orders: Orders, gone: set[int]) -> None:
    """Take the tasks ``gone`` out of the model (their sibling sets with them)."""
    for task_id in gone:
        del shape[task_id]
    for key in list(orders):
        if key[1] in gone:
            del orders[key]
            continue
        orders[key] = [i for i in orders[key] if i not in gone]
        if not orders[key]:
            del orders[key]


class TreeMachine(RuleBasedStateMachine):
    """One user's lists and tasks, driven through the API. ``client`` and
    ``make_headers`` are set by the test (a subclass per test run)."""

    client: Any = None
    make_headers: Callable[[str], dict[str, str]]

    def __init__(self) -> None:
        super().__init__()
        self.user = f"prop-{uuid.uuid4().hex}"
        self.headers = self.make_headers(self.user)
        self.gone_tasks: list[int] = []
        self.gone_lists: list[int] = []
        self.read()
        [self.default] = [i for i, lst in self.lists.items() if lst["is_default"]]
        assert self.tasks == {}

    # ------------------------------------------------------------------ reading back

    def read(self) -> None:
        """Everything the user has, through the API: GET /lists, every page of GET /tasks."""
        resp = self.client.get(lists_url(self.user), headers=self.headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        lists = resp.get_json()
        assert isinstance(lists, list), lists
        self.lists = {lst["id"]: lst for lst in lists}
        assert len(self.lists) == len(lists), lists
        assert sum(1 for lst in lists if lst["is_default"] is True) == 1, lists
        tasks = listing(self.client, self.headers, {"page_size": PAGE_SIZE}, self.user)
        self.tasks = {task["id"]: task for task in tasks}
        assert all(t["user_id"] == self.user for t in tasks), tasks

    def model(self) -> tuple[Shape, Orders]:
        tasks = list(self.tasks.values())
        return shape_of(tasks), orders_of(tasks)

    def expect(self, shape: Shape, orders: Orders, lists: set[int] | None = None) -> None:
        """Read back: the tasks are exactly ``shape`` in ``orders``; the lists ``lists``."""
        expected_lists = set(self.lists) if lists is None else lists
        self.read()
        tasks = list(self.tasks.values())
        assert shape_of(tasks) == shape
        assert orders_of(tasks) == orders
        assert set(self.lists) == expected_lists

    def expect_nothing_changed(self) -> None:
        tasks, lists = self.tasks, self.lists
        self.read()
        assert self.tasks == tasks
        assert self.lists == lists

    def some_task(self, data: st.DataObject, label: str) -> int:
        return data.draw(st.sampled_from(sorted(self.tasks)), label=label)

    def missing(self, data: st.DataObject, gone: list[int], label: str) -> int:
        """An id that is none of the user's: one deleted earlier, or one never made."""
        return data.draw(st.sampled_from([*gone, UNKNOWN_ID]), label=label)

    # ------------------------------------------------------------------ the steps

    @initialize(
        extra_lists=st.integers(0, 2),
        plan=st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=4, max_size=12),
    )
    def seed(self, extra_lists: int, plan: list[tuple[int, bool]]) -> None:
        """A first tree, so that every example has one to work on (Hypothesis tries the
        simplest examples first: few steps, the rules with the fewest arguments). Each
        task goes under the ``pick``-th newest task (the newest when 0: the simplest plan
        is a chain, down to 4 levels), or at the top level of a list when ``pick`` is 7 or
        the parent is 4 levels deep already."""
        for _ in range(extra_lists):
            self.create_list()
        lists = sorted(self.lists)
        for pick, completed in plan:
            shape, _ = self.model()
            ids = sorted(shape)
            parent_id = ids[-1 - pick % len(ids)] if ids and pick != 7 else None
            if parent_id is not None and level(shape, parent_id) >= MAX_DEPTH:
                parent_id = None
            body: dict[str, Any] = {"title": "seed", "completed": completed}
            if parent_id is None:
                list_id = body["list_id"] = lists[pick % len(lists)]
            else:
                list_id, body["parent_id"] = shape[parent_id][0], parent_id
            self.create(body, list_id, parent_id, refused=False)

    # Hypothesis picks among the rules that apply, evenly: creates and moves come in
    # several rules so that trees grow deep enough between deletions.

    @rule(data=st.data(), completed=st.booleans(), name_the_list=st.booleans())
    def create_top_level_task(self, data: st.DataObject, completed: bool, name_the_list: bool):
        body: dict[str, Any] = {"title": "top", "completed": completed}
        list_id = self.default
        if name_the_list:
            list_id = body["list_id"] = data.draw(st.sampled_from(sorted(self.lists)))
        self.create(body, list_id, None, refused=False)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), completed=st.booleans(), name_the_list=st.booleans())
    def create_subtask(self, data: st.DataObject, completed: bool, name_the_list: bool):
        shape, _ = self.model()
        parent_id = self.some_task(data, "parent")
        list_id = shape[parent_id][0]
        body = {"title": "sub", "completed": completed, "parent_id": parent_id}
        if name_the_list:
            body["list_id"] = list_id
        self.create(body, list_id, parent_id, refused=level(shape, parent_id) >= MAX_DEPTH)

    @rule(data=st.data(), kind=st.sampled_from(["other-list", "gone-list", "gone-parent"]))
    def create_refused(self, data: st.DataObject, kind: str) -> None:
        shape, _ = self.model()
        body: dict[str, Any] = {"title": "refused", "completed": data.draw(st.booleans())}
        if kind == "other-list" and self.tasks and len(self.lists) > 1:
            body["parent_id"] = self.some_task(data, "parent")
            others = sorted(set(self.lists) - {shape[body["parent_id"]][0]})
            body["list_id"] = data.draw(st.sampled_from(others), label="other list")
        elif kind == "gone-parent":
            body["parent_id"] = self.missing(data, self.gone_tasks, "gone parent")
        else:
            body["list_id"] = self.missing(data, self.gone_lists, "gone list")
        self.create(body, None, None, refused=True)

    def create(
        self, body: dict[str, Any], list_id: int | None, parent_id: int | None, refused: bool
    ) -> None:
        """POST the task; refused: a 422 under ``json`` that changed nothing; else 201, the
        task last among its siblings, its completed ancestors reopened if it is open."""
        shape, orders = self.model()
        resp = self.client.post(tasks_url(self.user), headers=self.headers, json=body)
        if refused:
            assert_json_422(resp)
            self.expect_nothing_changed()
            return
        assert resp.status_code == 201, (body, resp.get_data(as_text=True))
        task = assert_task(resp.get_json(), list_id=list_id, parent_id=parent_id)
        assert_task(task, completed=body["completed"])
        assert list_id is not None
        shape[task["id"]] = (list_id, parent_id, body["completed"])
        orders.setdefault((list_id, parent_id), []).append(task["id"])  # last of its siblings
        if not body["completed"]:
            reopen_upwards(shape, parent_id)
        self.expect(shape, orders)

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        way=st.sampled_from(["toggle", "set-true", "set-false", "put-true", "put-false"]),
    )
    def complete(self, data: st.DataObject, way: str) -> None:
        shape, orders = self.model()
        task_id = self.some_task(data, "task")
        current = shape[task_id][2]
        value = (not current) if way == "toggle" else way.endswith("true")
        if way == "toggle":
            method, suffix, body = "PATCH", "/complete", None
        else:
            method = "PATCH" if way.startswith("set") else "PUT"
            suffix = "/complete" if method == "PATCH" else ""
            body = {"completed": value}
        kwargs = {} if body is None else {"json": body}
        url = tasks_url(self.user, task_id, suffix)
        resp = self.client.open(url, method=method, headers=self.headers, **kwargs)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert_task(resp.get_json(), id=task_id, completed=value)
        if value != current:
            changed = subtree(shape, task_id) if value else set(ancestors(shape, task_id))
            for other in changed:
                list_id, parent, _ = shape[other]
                shape[other] = (list_id, parent, value)
        self.expect(shape, orders)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), into_a_task=st.booleans())
    def move_within_the_list(self, data: st.DataObject, into_a_task: bool) -> None:
        """Mostly valid: the task's own sibling set, or under another task of its list;
        right after one of the destination's tasks, or first."""
        shape, orders = self.model()
        task_id = self.some_task(data, "moved")
        body: dict[str, Any] = {}
        same_list = sorted(i for i in shape if shape[i][0] == shape[task_id][0])
        if into_a_task:
            body["parent_id"] = data.draw(st.sampled_from(same_list), label="parent")
        list_id, parent_id, _ = destination(shape, task_id, body)
        candidates = [i for i in orders.get((list_id, parent_id), []) if i != task_id]
        body["after_id"] = data.draw(st.sampled_from([None, *candidates]), label="after")
        self.move(task_id, body, [])

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        list_choice=st.sampled_from(["absent", "list", "gone"]),
        parent_choice=st.sampled_from(["absent", "null", "task", "gone"]),
        after_choice=st.sampled_from(["absent", "null", "sibling", "task", "gone"]),
    )
    def move_anywhere(
        self, data: st.DataObject, list_choice: str, parent_choice: str, after_choice: str
    ) -> None:
        """Any destination, often an invalid one."""
        shape, orders = self.model()
        task_id = self.some_task(data, "moved")
        body: dict[str, Any] = {}
        gone_fields = []
        if list_choice == "list":
            body["list_id"] = data.draw(st.sampled_from(sorted(self.lists)), label="list")
        elif list_choice == "gone":
            body["list_id"] = self.missing(data, self.gone_lists, "gone list")
            gone_fields.append("list_id")
        if parent_choice == "null":
            body["parent_id"] = None
        elif parent_choice == "task":
            body["parent_id"] = self.some_task(data, "parent")  # itself too, at times
        elif parent_choice == "gone":
            body["parent_id"] = self.missing(data, self.gone_tasks, "gone parent")
            gone_fields.append("parent_id")
        others = sorted(set(self.tasks) - {task_id})
        if after_choice == "null":
            body["after_id"] = None
        elif after_choice == "task" and others:
            body["after_id"] = data.draw(st.sampled_from(others), label="after")
        elif after_choice == "gone":
            body["after_id"] = self.missing(data, self.gone_tasks, "gone after")
            gone_fields.append("after_id")
        elif after_choice == "sibling" and not gone_fields:
            list_id, parent_id, _ = destination(shape, task_id, body)
            candidates = [i for i in orders.get((list_id, parent_id), []) if i != task_id]
            body["after_id"] = data.draw(st.sampled_from([None, *candidates]), label="sibling")
        self.move(task_id, body, gone_fields)

    def move(self, task_id: int, body: dict[str, Any], gone_fields: list[str]) -> None:
        """POST the move; a reference that is not the user's: 422 under its field; a broken
        rule: 422; either changes nothing. Else 200 and the tree ``apply_move`` gives."""
        shape, orders = self.model()
        resp = self.client.post(
            tasks_url(self.user, task_id, "/move"), headers=self.headers, json=body
        )
        if gone_fields:
            # Keyed under the field when nothing else in the body is wrong; with another
            # task named too (itself as parent, say), any of the 422s docs/api.md lists.
            others = [v for k, v in body.items() if k not in gone_fields and v is not None]
            if others:
                assert_error(resp, 422)
            else:
                assert_json_422(resp, *gone_fields)
            self.expect_nothing_changed()
            return
        list_id, parent_id, after_id = destination(shape, task_id, body)
        problems = move_problems(shape, task_id, list_id, parent_id, after_id)
        if problems:
            assert_error(resp, 422)
            self.expect_nothing_changed()
            return
        assert resp.status_code == 200, (body, resp.get_data(as_text=True))
        assert_task(resp.get_json(), id=task_id, list_id=list_id, parent_id=parent_id)
        self.expect(*apply_move(shape, orders, task_id, list_id, parent_id, after_id))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def delete_task(self, data: st.DataObject) -> None:
        shape, orders = self.model()
        task_id = self.some_task(data, "deleted")
        resp = self.client.delete(tasks_url(self.user, task_id), headers=self.headers)
        assert resp.status_code == 204, resp.get_data(as_text=True)
        gone = subtree(shape, task_id)
        remove(shape, orders, gone)
        self.gone_tasks += sorted(gone)
        self.expect(shape, orders)

    @precondition(lambda self: len(self.lists) < MAX_LISTS)
    @rule()
    def create_list(self) -> None:
        shape, orders = self.model()
        resp = self.client.post(lists_url(self.user), headers=self.headers, json={"title": "L"})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        created = resp.get_json()
        assert created["open_count"] == 0 and created["is_default"] is False, created
        self.expect(shape, orders, set(self.lists) | {created["id"]})

    @rule(data=st.data())
    def delete_list(self, data: st.DataObject) -> None:
        shape, orders = self.model()
        list_id = data.draw(st.sampled_from(sorted(self.lists)), label="deleted list")
        resp = self.client.delete(lists_url(self.user, list_id), headers=self.headers)
        if list_id == self.default:
            assert_error(resp, 409)
            self.expect_nothing_changed()
            return
        assert resp.status_code == 204, resp.get_data(as_text=True)
        gone = {i for i, (in_list, _, _) in shape.items() if in_list == list_id}
        remove(shape, orders, gone)
        self.gone_tasks += sorted(gone)
        self.gone_lists.append(list_id)
        self.expect(shape, orders, set(self.lists) - {list_id})

    @rule()
    def clear_completed(self) -> None:
        shape, orders = self.model()
        url = tasks_url(self.user, query="status=completed")
        resp = self.client.delete(url, headers=self.headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        gone = {i for i, (_, _, completed) in shape.items() if completed}
        assert resp.get_json() == {"deleted": len(gone)}
        remove(shape, orders, gone)
        self.gone_tasks += sorted(gone)
        self.expect(shape, orders)

    # ------------------------------------------------------------------ the invariants

    @invariant()
    def no_completed_task_has_an_open_subtask(self) -> None:
        for task in self.tasks.values():
            parent = self.tasks.get(task["parent_id"]) if task["parent_id"] else None
            if parent is not None and parent["completed"]:
                assert task["completed"], (parent, task)

    @invariant()
    def every_parent_exists_and_holds_its_subtasks_in_its_list(self) -> None:
        for task in self.tasks.values():
            assert task["list_id"] in self.lists, task
            if task["parent_id"] is not None:
                assert task["parent_id"] in self.tasks, task
                assert self.tasks[task["parent_id"]]["list_id"] == task["list_id"], task

    @invariant()
    def no_task_is_deeper_than_4_levels(self) -> None:
        shape = shape_of(list(self.tasks.values()))
        for task_id in shape:
            assert level(shape, task_id) <= MAX_DEPTH, task_id

    @invariant()
    def positions_are_unique_among_siblings_and_short(self) -> None:
        seen: set[tuple[int, int | None, str]] = set()
        for task in self.tasks.values():
            key = (task["list_id"], task["parent_id"], task["position"])
            assert key not in seen, task
            seen.add(key)
            assert len(task["position"]) <= MAX_POSITION, task

    @invariant()
    def open_count_is_the_lists_open_tasks(self) -> None:
        for list_id, lst in self.lists.items():
            open_tasks = [
                t for t in self.tasks.values() if t["list_id"] == list_id and not t["completed"]
            ]
            assert lst["open_count"] == len(open_tasks), (lst, open_tasks)


def test_tree_rules_hold_after_any_sequence_of_writes(client, auth_headers):
    class Machine(TreeMachine):
        pass

    Machine.client = client
    Machine.make_headers = staticmethod(auth_headers)
    run_state_machine_as_test(Machine, settings=SETTINGS)
