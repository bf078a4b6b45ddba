"""Clear completed: ``DELETE /api/{user_id}/tasks?status=completed``.

Contract: docs/api.md, "A task", "Clear completed". It removes
exactly the user's completed tasks, answers ``{"deleted": N}``, and anything but that
exact filter is a 422 that deletes nothing.
"""

from __future__ import annotations

import json

import pytest
from conftest import ALICE, BOB
from support import assert_error
from test_beyond_support import create, list_ids, tasks_url


@pytest.fixture
def lists(client, alice, bob):
    """Alice: 3 completed, 2 pending; Bob: 2 completed, 1 pending. Ids by owner and state."""
    made = {"alice_done": [], "alice_pending": [], "bob_done": [], "bob_pending": []}
    for i in range(5):
        done = i % 2 == 0
        task = create(client, alice, title=f"a{i}", completed=done, tags=["home"], priority="high")
        made["alice_done" if done else "alice_pending"].append(task["id"])
    for i in range(3):
        done = i < 2
        task = create(client, bob, BOB, title=f"b{i}", completed=done, tags=["home"])
        made["bob_done" if done else "bob_pending"].append(task["id"])
    return made


def clear(client, headers, query="status=completed", user=ALICE):
    url = tasks_url(user) + (f"?{query}" if query is not None else "")
    return client.delete(url, headers=headers)


def everything(client, alice, bob) -> tuple[list[int], list[int]]:
    return list_ids(client, alice)[0], list_ids(client, bob, user=BOB)[0]


def test_clear_completed_removes_only_this_users_completed_tasks(client, alice, bob, lists):
    resp = clear(client, alice)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"deleted": 3}
    assert list_ids(client, alice) == (sorted(lists["alice_pending"], reverse=True), 2)
    assert list_ids(client, alice, {"status": "completed"}) == ([], 0)
    assert list_ids(client, alice, {"status": "pending"})[1] == 2
    for task_id in lists["alice_done"]:
        assert client.get(tasks_url(task_id=task_id), headers=alice).status_code == 404
    bobs = sorted(lists["bob_done"] + lists["bob_pending"], reverse=True)
    assert list_ids(client, bob, user=BOB) == (bobs, 3)
    assert list_ids(client, bob, {"status": "completed"}, user=BOB) == (
        sorted(lists["bob_done"], reverse=True),
        2,
    )


def test_clear_completed_keeps_filters_exact_afterwards(client, alice, bob, lists):
    assert clear(client, alice).get_json() == {"deleted": 3}
    assert list_ids(client, alice, {"tag": "home"})[1] == 2
    assert list_ids(client, alice, {"priority": "high"})[1] == 2
    assert list_ids(client, bob, {"tag": "home"}, user=BOB)[1] == 3


def test_clear_completed_again_or_with_none_deletes_zero(client, alice, bob, lists):
    assert clear(client, alice).get_json() == {"deleted": 3}
    again = clear(client, alice)
    assert again.status_code == 200
    assert again.get_json() == {"deleted": 0}
    assert list_ids(client, alice)[1] == 2


def test_clear_completed_for_a_user_with_no_tasks_is_zero(client, auth_headers):
    newcomer = "newcomer-" + "x" * 20
    resp = clear(client, auth_headers(newcomer), user=newcomer)
    assert resp.status_code == 200
    assert resp.get_json() == {"deleted": 0}


def test_clear_completed_after_toggles_counts_the_current_state(client, alice, bob, lists):
    # Reopen one completed task and complete one pending task, then clear.
    reopened, finished = lists["alice_done"][0], lists["alice_pending"][0]
    client.patch(tasks_url(task_id=reopened, suffix="/complete"), headers=alice)
    client.put(tasks_url(task_id=finished), headers=alice, json={"completed": True})
    assert clear(client, alice).get_json() == {"deleted": 3}
    left = sorted([reopened, lists["alice_pending"][1]], reverse=True)
    assert list_ids(client, alice) == (left, 2)


REFUSED = [
    None,
    "",
    "status=all",
    "status=pending",
    "status=COMPLETED",
    "status=completed%20",
    "status=",
    "status=completed&status=completed",
    "status=completed&priority=high",
    "status=completed&page=1",
    "status=completed&page_size=10",
    "status=completed&sort=title",
    "status=completed&q=a",
    "status=completed&tag=home",
    "status=completed&overdue=true",
    "status=completed&foo=bar",
    "priority=high",
    "tag=home",
]


@pytest.mark.parametrize("query", REFUSED, ids=[repr(q) for q in REFUSED])
def test_anything_but_exactly_status_completed_is_422(client, alice, bob, lists, query):
    before = everything(client, alice, bob)
    resp = clear(client, alice, query)
    body = assert_error(resp, 422)
    assert list(body.get("errors", {})) == ["query"], body
    assert body["errors"]["query"], body
    assert everything(client, alice, bob) == before


@pytest.mark.parametrize("query", ["status=completed", None, "status=all&foo=1"])
def test_clear_on_another_users_path_is_403_and_deletes_nothing(client, alice, bob, lists, query):
    before = everything(client, alice, bob)
    resp = clear(client, bob, query)  # Bob's token, Alice's path
    assert "errors" not in assert_error(resp, 403)
    assert everything(client, alice, bob) == before


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWxpY2U6c2VjcmV0"],
    ids=["none", "bad", "basic"],
)
def test_clear_without_valid_token_is_401_and_deletes_nothing(
    client, alice, bob, lists, authorization
):
    before = everything(client, alice, bob)
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = clear(client, headers)
    assert_error(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert everything(client, alice, bob) == before


def test_clear_completed_then_list_pagination_totals_are_exact(client, alice, lists):
    assert clear(client, alice).get_json() == {"deleted": 3}
    resp = client.get(tasks_url(query={"page_size": 1}), headers=alice)
    meta = json.loads(resp.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["last_page"]) == (2, 2, 2)
