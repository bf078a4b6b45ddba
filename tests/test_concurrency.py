"""Concurrency: simultaneous requests on one task lose nothing (docs/api.md has no section of
its own for it; nearest: "Conditional requests (ETags)", where the check and the write are
one step).

Every test sends its requests through ``requests`` to the real threaded server
(``live_server``), all released at the same moment by a ``threading.Barrier``, so
the database, not Python, has to serialise them. They run on SQLite (WAL, 10 s
busy timeout) and on PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import requests
from conftest import ALICE, CONCURRENT_TIMEOUT, all_at_once, describe
from flask import Flask
from sqlalchemy import text

from app.models import db

N = 20
TIMEOUT = CONCURRENT_TIMEOUT


def _no_server_errors(responses: list[requests.Response]) -> None:
    errors = [r for r in responses if r.status_code >= 500]
    assert not errors, f"server errors under concurrency: {describe(errors)}"


def _task_row(app: Flask, task_id: int) -> dict[str, Any] | None:
    with app.app_context():
        try:
            row = db.session.execute(
                text("SELECT title, description, completed FROM tasks WHERE id = :id"),
                {"id": task_id},
            ).one_or_none()
            return None if row is None else dict(row._mapping)
        finally:
            db.session.remove()


def test_concurrent_toggles_lose_no_flip(
    app: Flask, live_server: str, auth_headers, make_task
) -> None:
    task = make_task(ALICE, "Toggle me")
    assert task["completed"] is False
    url = f"{live_server}/api/{ALICE}/tasks/{task['id']}/complete"
    headers = auth_headers(ALICE)

    responses = all_at_once(
        [lambda: requests.patch(url, headers=headers, timeout=TIMEOUT) for _ in range(N)]
    )

    _no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * N, describe(responses)
    returned = [r.json()["completed"] for r in responses]
    assert all(isinstance(value, bool) for value in returned)
    # Each toggle saw the result of the previous one: false->true, true->false, ... alternately.
    assert returned.count(True) == N // 2, returned
    assert returned.count(False) == N // 2, returned

    final = requests.get(
        f"{live_server}/api/{ALICE}/tasks/{task['id']}", headers=headers, timeout=TIMEOUT
    )
    assert final.status_code == 200
    assert final.json()["completed"] is (N % 2 == 1)
    row = _task_row(app, task["id"])
    assert row is not None and bool(row["completed"]) is (N % 2 == 1)


def test_concurrent_updates_of_different_fields_keep_both(
    app: Flask, live_server: str, auth_headers, make_task
) -> None:
    task = make_task(ALICE, "original title", description="original description")
    url = f"{live_server}/api/{ALICE}/tasks/{task['id']}"
    headers = auth_headers(ALICE)
    titles = [f"title from writer {i}" for i in range(N // 2)]
    descriptions = [f"description from writer {i}" for i in range(N - N // 2)]

    def put(body: dict[str, Any]) -> Callable[[], requests.Response]:
        return lambda: requests.put(url, json=body, headers=headers, timeout=TIMEOUT)

    calls = [put({"title": t}) for t in titles] + [put({"description": d}) for d in descriptions]
    responses = all_at_once(calls)

    _no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * N, describe(responses)
    for body_sent, response in zip(
        [{"title": t} for t in titles] + [{"description": d} for d in descriptions],
        responses,
        strict=True,
    ):
        for field, value in body_sent.items():
            assert response.json()[field] == value  # each writer sees its own change

    row = _task_row(app, task["id"])
    assert row is not None
    # Neither kind of update was lost to the other: both fields hold a value some writer sent.
    assert row["title"] in titles, row
    assert row["description"] in descriptions, row
    final = requests.get(url, headers=headers, timeout=TIMEOUT).json()
    assert (final["title"], final["description"]) == (row["title"], row["description"])


def test_concurrent_deletes_of_one_task(
    app: Flask, live_server: str, auth_headers, make_task
) -> None:
    task = make_task(ALICE, "Delete me")
    url = f"{live_server}/api/{ALICE}/tasks/{task['id']}"
    headers = auth_headers(ALICE)

    responses = all_at_once(
        [lambda: requests.delete(url, headers=headers, timeout=TIMEOUT) for _ in range(N)]
    )

    _no_server_errors(responses)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [204] + [404] * (N - 1), describe(responses)
    for response in responses:
        if response.status_code == 204:
            assert response.content == b""
        else:
            assert response.json()["code"] == 404
    assert _task_row(app, task["id"]) is None


def test_concurrent_first_creates_by_a_new_user(app: Flask, live_server: str, auth_headers) -> None:
    user_id = f"new-user-{uuid.uuid4().hex}"
    url = f"{live_server}/api/{user_id}/tasks"
    headers = auth_headers(user_id, email="new@example.com", name="New User")

    def post(i: int) -> Callable[[], requests.Response]:
        return lambda: requests.post(
            url, json={"title": f"first task {i}"}, headers=headers, timeout=TIMEOUT
        )

    responses = all_at_once([post(i) for i in range(N)])

    _no_server_errors(responses)
    assert [r.status_code for r in responses] == [201] * N, describe(responses)
    assert sorted(r.json()["title"] for r in responses) == sorted(
        f"first task {i}" for i in range(N)
    )
    assert len({r.json()["id"] for r in responses}) == N
    assert all(r.json()["user_id"] == user_id for r in responses)

    with app.app_context():
        try:
            users = db.session.execute(
                text("SELECT id, email, name FROM users WHERE id = :id"), {"id": user_id}
            ).all()
            tasks = db.session.execute(
                text("SELECT count(*) FROM tasks WHERE user_id = :id"), {"id": user_id}
            ).scalar_one()
        finally:
            db.session.remove()
    assert len(users) == 1, users
    assert (users[0].email, users[0].name) == ("new@example.com", "New User")
    assert tasks == N

    listed = requests.get(url, headers=headers, timeout=TIMEOUT)
    assert listed.status_code == 200
    assert len(listed.json()) == N


def test_concurrent_mixed_writes_on_one_task(
    app: Flask, live_server: str, auth_headers, make_task
) -> None:
    """Toggles and title updates interleaved on one task: no 5xx, every toggle counted."""
    rounds = 3
    task = make_task(ALICE, "Mixed")
    headers = auth_headers(ALICE)
    base = f"{live_server}/api/{ALICE}/tasks/{task['id']}"
    toggles = 0
    for round_ in range(rounds):
        calls: list[Callable[[], requests.Response]] = []
        for i in range(N):
            if i % 2:
                calls.append(
                    lambda: requests.patch(f"{base}/complete", headers=headers, timeout=TIMEOUT)
                )
            else:
                body = {"title": f"round {round_} writer {i}"}
                calls.append(
                    lambda b=body: requests.put(base, json=b, headers=headers, timeout=TIMEOUT)
                )
        responses = all_at_once(calls)
        _no_server_errors(responses)
        assert [r.status_code for r in responses] == [200] * N, describe(responses)
        toggles += N // 2
    row = _task_row(app, task["id"])
    assert row is not None
    assert bool(row["completed"]) is (toggles % 2 == 1)
    assert row["title"].startswith(f"round {rounds - 1} writer ")
