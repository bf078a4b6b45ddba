"""Conditional requests: strong ETags, If-None-Match (304), If-Match (412), atomically.

Contract: docs/api.md, "Conditional requests (ETags)", and the 412 line under "Errors".
The concurrent tests go through ``live_server`` with ``requests``, released together by a
barrier, so the database has to decide.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from conftest import ALICE, BOB, CONCURRENT_TIMEOUT, all_at_once, describe
from support import assert_error
from test_beyond_support import STRONG_ETAG_RE, create, tasks_url

TIMEOUT = CONCURRENT_TIMEOUT


def etag_of(resp) -> str:
    etag = resp.headers.get("ETag")
    assert etag is not None, dict(resp.headers)
    assert STRONG_ETAG_RE.match(etag), etag  # strong: quoted, no W/
    return etag


def get(client, headers, task_id, **extra):
    return client.get(tasks_url(task_id=task_id), headers={**headers, **extra})


def weak(etag: str) -> str:
    return "W/" + etag


def stale_etag(client, alice) -> str:
    """A real ETag this task had once, before a change."""
    task = create(client, alice, title="old")
    old = etag_of(get(client, alice, task["id"]))
    client.put(tasks_url(task_id=task["id"]), headers=alice, json={"title": "new"})
    return old


def assert_304(resp, etag: str) -> None:
    assert resp.status_code == 304, resp.get_data(as_text=True)
    assert resp.get_data() == b""
    assert resp.headers.get("ETag") == etag


# --------------------------------------------------------------------------- ETag presence


def test_get_task_and_list_carry_strong_etag_stable_on_repeat(client, alice):
    task = create(client, alice)
    first, again = get(client, alice, task["id"]), get(client, alice, task["id"])
    assert first.status_code == again.status_code == 200
    assert etag_of(first) == etag_of(again)
    listed = client.get(tasks_url(), headers=alice)
    assert listed.status_code == 200
    assert etag_of(listed) == etag_of(client.get(tasks_url(), headers=alice))


def test_write_responses_carry_the_etag_a_get_then_returns(client, alice):
    created = client.post(tasks_url(), headers=alice, json={"title": "a"})
    assert created.status_code == 201
    task_id = created.get_json()["id"]
    assert etag_of(created) == etag_of(get(client, alice, task_id))
    url = tasks_url(task_id=task_id)
    writes = [
        ("PUT", "", {"title": "b", "tags": ["x"]}),
        ("PATCH", "/complete", None),
        ("PATCH", "/complete", {"completed": True}),
        ("PUT", "", {"priority": "high"}),
    ]
    for method, suffix, body in writes:
        kwargs = {} if body is None else {"json": body}
        resp = client.open(url + suffix, method=method, headers=alice, **kwargs)
        assert resp.status_code == 200
        fetched = get(client, alice, task_id)
        assert etag_of(resp) == etag_of(fetched)
        assert resp.get_json() == fetched.get_json()


def test_task_etag_changes_exactly_when_the_task_does(client, alice):
    task = create(client, alice, title="t")
    url = tasks_url(task_id=task["id"])
    seen = [etag_of(get(client, alice, task["id"]))]
    writes = [
        ("PUT", {"title": "t2"}),
        ("PUT", {"priority": "low"}),
        ("PUT", {"tags": ["a"]}),
        ("PUT", {"tags": ["A"]}),  # only the case of a tag
        ("PUT", {"due_date": "2030-01-01T00:00:00Z"}),
        ("PUT", {"due_date": None}),
        ("PATCH", None),  # toggle
        ("PATCH", None),
    ]
    for method, body in writes:
        suffix = "/complete" if method == "PATCH" else ""
        kwargs = {} if body is None else {"json": body}
        resp = client.open(url + suffix, method=method, headers=alice, **kwargs)
        assert resp.status_code == 200
        assert etag_of(resp) not in seen, (method, body)
        seen.append(etag_of(resp))
        assert etag_of(get(client, alice, task["id"])) == seen[-1]


@pytest.mark.parametrize("value", [True, False])
def test_explicit_toggle_no_op_keeps_the_etag(client, alice, value):
    task = create(client, alice, completed=value)
    before = get(client, alice, task["id"])
    resp = client.patch(
        tasks_url(task_id=task["id"], suffix="/complete"), headers=alice, json={"completed": value}
    )
    assert resp.status_code == 200
    assert resp.get_json() == before.get_json()
    assert etag_of(resp) == etag_of(before) == etag_of(get(client, alice, task["id"]))


# --------------------------------------------------------------------------- list ETag


def test_list_etag_follows_the_page_content(client, alice, bob):
    create(client, alice, title="old")
    new = create(client, alice, title="new")
    query = {"page_size": 1}  # newest first: page 1 is "new" only
    page1 = etag_of(client.get(tasks_url(query=query), headers=alice))
    page2 = etag_of(client.get(tasks_url(query={**query, "page": 2}), headers=alice))
    assert page1 != page2
    by_priority = client.get(tasks_url(query={"priority": "high"}), headers=alice)
    assert etag_of(by_priority) not in (page1, page2)

    # Another user's writes and a no-op toggle leave Alice's page as it was.
    create(client, bob, BOB, title="bob's")
    client.patch(
        tasks_url(task_id=new["id"], suffix="/complete"), headers=alice, json={"completed": False}
    )
    assert etag_of(client.get(tasks_url(query=query), headers=alice)) == page1

    # A change of a task on the page changes it.
    client.put(tasks_url(task_id=new["id"]), headers=alice, json={"tags": ["x"]})
    page1_b = etag_of(client.get(tasks_url(query=query), headers=alice))
    assert page1_b != page1
    # A new task that lands on the page changes it too.
    newest = create(client, alice, title="newest")
    page1_c = etag_of(client.get(tasks_url(query=query), headers=alice))
    assert page1_c not in (page1, page1_b)
    # Deleting it brings back the page as it was before it came: the same content, same ETag.
    assert client.delete(tasks_url(task_id=newest["id"]), headers=alice).status_code == 204
    assert etag_of(client.get(tasks_url(query=query), headers=alice)) == page1_b
    # Page 2 ("old") was never touched.
    assert etag_of(client.get(tasks_url(query={**query, "page": 2}), headers=alice)) == page2


def test_list_etag_stays_when_a_task_off_the_page_changes(client, alice):
    """It changes "whenever what that response would contain changes, and only then"."""
    old = create(client, alice, title="old")
    create(client, alice, title="new")
    query = {"page_size": 1}  # sort by creation: "old" stays on page 2 whatever its title
    before = client.get(tasks_url(query=query), headers=alice)
    resp = client.put(tasks_url(task_id=old["id"]), headers=alice, json={"title": "x"})
    assert resp.status_code == 200
    after = client.get(tasks_url(query=query), headers=alice)
    assert after.get_data() == before.get_data()
    assert after.headers["X-Pagination"] == before.headers["X-Pagination"]
    assert etag_of(after) == etag_of(before)


def test_list_if_none_match_gives_304_then_200_after_a_change(client, alice):
    task = create(client, alice)
    etag = etag_of(client.get(tasks_url(), headers=alice))
    assert_304(client.get(tasks_url(), headers={**alice, "If-None-Match": etag}), etag)
    client.put(tasks_url(task_id=task["id"]), headers=alice, json={"title": "changed"})
    resp = client.get(tasks_url(), headers={**alice, "If-None-Match": etag})
    assert resp.status_code == 200
    assert resp.get_json()[0]["title"] == "changed"
    assert etag_of(resp) != etag


# --------------------------------------------------------------------------- If-None-Match


def test_if_none_match_current_etag_is_304_with_empty_body(client, alice):
    task = create(client, alice)
    etag = etag_of(get(client, alice, task["id"]))
    assert_304(get(client, alice, task["id"], **{"If-None-Match": etag}), etag)
    assert_304(get(client, alice, task["id"], **{"If-None-Match": f'"nope", {etag}'}), etag)
    assert_304(get(client, alice, task["id"], **{"If-None-Match": "*"}), etag)


def test_if_none_match_stale_etag_is_200_with_the_task(client, alice):
    old = stale_etag(client, alice)
    task_id = client.get(tasks_url(), headers=alice).get_json()[0]["id"]
    resp = get(client, alice, task_id, **{"If-None-Match": old})
    assert resp.status_code == 200
    assert resp.get_json()["title"] == "new"
    assert etag_of(resp) != old


@pytest.mark.parametrize("value", ["*", '"anything"'])
def test_if_none_match_on_missing_or_foreign_task_is_404(client, alice, bob, value):
    bobs = create(client, bob, BOB)
    bob_etag = etag_of(client.get(tasks_url(BOB, bobs["id"]), headers=bob))
    for header in (value, bob_etag):
        for task_id in (bobs["id"], bobs["id"] + 1000):
            resp = get(client, alice, task_id, **{"If-None-Match": header})
            assert "errors" not in assert_error(resp, 404)


# --------------------------------------------------------------------------- If-Match

WRITES = [  # method, suffix, body
    ("PUT", "", {"title": "changed"}),
    ("PATCH", "/complete", None),
    ("PATCH", "/complete", {"completed": True}),
    ("DELETE", "", None),
]
WRITE_IDS = ["put", "toggle", "set", "delete"]


def _write(client, headers, task_id, method, suffix, body, if_match=None, user=ALICE):
    if if_match is not None:
        headers = {**headers, "If-Match": if_match}
    kwargs = {} if body is None else {"json": body}
    return client.open(tasks_url(user, task_id, suffix), method=method, headers=headers, **kwargs)


def _expect_success(resp, method):
    if method == "DELETE":
        assert resp.status_code == 204, resp.get_data(as_text=True)
        assert resp.get_data() == b""
    else:
        assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(
    "header",
    ["{etag}", "*", '"x", {etag}', '{etag},"y"', '"a" , {etag} , "b"'],
    ids=["exact", "star", "listed-last", "listed-first", "spaced"],
)
def test_if_match_with_current_etag_succeeds(client, alice, method, suffix, body, header):
    task = create(client, alice)
    etag = etag_of(get(client, alice, task["id"]))
    resp = _write(client, alice, task["id"], method, suffix, body, header.format(etag=etag))
    _expect_success(resp, method)
    after = get(client, alice, task["id"])
    if method == "DELETE":
        assert after.status_code == 404
    else:
        assert etag_of(resp) == etag_of(after)
        assert resp.get_json() == after.get_json()


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("kind", ["stale", "weak", "unknown", "stale-list", "weak-in-list"])
def test_if_match_not_current_is_412_and_changes_nothing(client, alice, method, suffix, body, kind):
    old = stale_etag(client, alice)
    task = client.get(tasks_url(), headers=alice).get_json()[0]
    current = get(client, alice, task["id"])
    etag = etag_of(current)
    header = {
        "stale": old,
        "weak": weak(etag),  # a weak tag never matches (strong comparison)
        "unknown": '"not-an-etag-of-this-task"',
        "stale-list": f'{old}, "other"',
        "weak-in-list": f"{old}, {weak(etag)}",
    }[kind]
    resp = _write(client, alice, task["id"], method, suffix, body, header)
    err = assert_error(resp, 412)
    assert "errors" not in err
    after = get(client, alice, task["id"])
    assert after.status_code == 200
    assert after.get_json() == current.get_json()
    assert etag_of(after) == etag


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("header", ["*", "bobs", '"whatever"'])
def test_if_match_on_missing_or_foreign_task_is_404(
    client, alice, bob, method, suffix, body, header
):
    bobs = create(client, bob, BOB, title="bob's")
    bob_view = client.get(tasks_url(BOB, bobs["id"]), headers=bob)
    value = etag_of(bob_view) if header == "bobs" else header
    for task_id in (bobs["id"], bobs["id"] + 1000):
        resp = _write(client, alice, task_id, method, suffix, body, value)
        assert "errors" not in assert_error(resp, 404)
    after = client.get(tasks_url(BOB, bobs["id"]), headers=bob)
    assert after.get_json() == bob_view.get_json()
    assert etag_of(after) == etag_of(bob_view)


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES, ids=WRITE_IDS)
def test_if_match_on_another_users_path_is_403_and_without_token_401(
    client, alice, bob, method, suffix, body
):
    task = create(client, alice)
    etag = etag_of(get(client, alice, task["id"]))
    resp = _write(client, bob, task["id"], method, suffix, body, etag)
    assert "errors" not in assert_error(resp, 403)
    resp = _write(client, {}, task["id"], method, suffix, body, etag)
    assert_error(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert etag_of(get(client, alice, task["id"])) == etag


def test_if_match_explicit_toggle_no_op_keeps_etag_and_succeeds_again(client, alice):
    task = create(client, alice, completed=True)
    etag = etag_of(get(client, alice, task["id"]))
    url = tasks_url(task_id=task["id"], suffix="/complete")
    for _ in range(2):  # safe to retry: the ETag it was sent with is still current
        resp = client.patch(url, headers={**alice, "If-Match": etag}, json={"completed": True})
        assert resp.status_code == 200
        assert etag_of(resp) == etag


def test_if_match_chain_of_writes_each_with_the_previous_etag(client, alice):
    """How a careful frontend edits: each write sends the ETag the last one returned."""
    task = create(client, alice)
    url = tasks_url(task_id=task["id"])
    created = client.get(url, headers=alice)
    etag = etag_of(created)
    for title in ("one", "two", "three"):
        resp = client.put(url, headers={**alice, "If-Match": etag}, json={"title": title})
        assert resp.status_code == 200
        stale, etag = etag, etag_of(resp)
        assert stale != etag
        late = client.put(url, headers={**alice, "If-Match": stale}, json={"title": "lost"})
        assert_error(late, 412)
    assert client.get(url, headers=alice).get_json()["title"] == "three"


# --------------------------------------------------------------------------- atomic If-Match

N = 8


def test_concurrent_puts_with_same_if_match_exactly_one_wins(client, alice, live_server):
    task = create(client, alice, title="start")
    url = f"{live_server}{tasks_url(task_id=task['id'])}"
    etag = requests.get(url, headers=alice, timeout=TIMEOUT).headers["ETag"]
    headers = {**alice, "If-Match": etag}

    def put(i: int) -> Callable[[], requests.Response]:
        return lambda: requests.put(url, headers=headers, json={"title": f"w{i}"}, timeout=TIMEOUT)

    responses = all_at_once([put(i) for i in range(N)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (N - 1), describe(responses)
    [winner] = [r for r in responses if r.status_code == 200]
    for loser in (r for r in responses if r.status_code == 412):
        assert_error(loser, 412, "Precondition Failed")
    final = requests.get(url, headers=alice, timeout=TIMEOUT)
    assert final.json()["title"] == winner.json()["title"]
    assert final.headers["ETag"] == winner.headers["ETag"] != etag


def test_concurrent_toggles_with_same_if_match_exactly_one_wins(client, alice, live_server):
    task = create(client, alice)
    url = f"{live_server}{tasks_url(task_id=task['id'])}"
    etag = requests.get(url, headers=alice, timeout=TIMEOUT).headers["ETag"]
    headers = {**alice, "If-Match": etag}
    responses = all_at_once(
        [lambda: requests.patch(url + "/complete", headers=headers, timeout=TIMEOUT)] * N
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * (N - 1), describe(responses)
    for loser in (r for r in responses if r.status_code == 412):
        assert_error(loser, 412, "Precondition Failed")
    assert requests.get(url, headers=alice, timeout=TIMEOUT).json()["completed"] is True


def test_concurrent_deletes_with_same_if_match_exactly_one_wins(client, alice, live_server):
    task = create(client, alice)
    url = f"{live_server}{tasks_url(task_id=task['id'])}"
    etag = requests.get(url, headers=alice, timeout=TIMEOUT).headers["ETag"]
    headers = {**alice, "If-Match": etag}
    responses = all_at_once([lambda: requests.delete(url, headers=headers, timeout=TIMEOUT)] * N)
    statuses = [r.status_code for r in responses]
    assert statuses.count(204) == 1, describe(responses)
    assert set(statuses) <= {204, 404, 412}, describe(responses)
    for resp in responses:
        if resp.status_code == 412:
            assert_error(resp, 412, "Precondition Failed")
        elif resp.status_code == 404:
            assert resp.json()["code"] == 404
    assert requests.get(url, headers=alice, timeout=TIMEOUT).status_code == 404
