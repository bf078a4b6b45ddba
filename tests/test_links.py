"""Absolute ``Location`` and ``Link`` URLs, and task ids that are never given out twice.

Contract: issue 13, part 4 ("Absolute Link and Location, correct behind the trusted proxy;
ids never reused on SQLite (as PostgreSQL's sequences already do)"), and
docs/api.md, "Routes" (201 with ``Location``; absolute URLs) and "The list" (its ``Link``
header, RFC 8288, with first and last, and next/prev where such a page exists).

- ``Location`` and every ``Link`` target are absolute URLs built from the request
  (``http://localhost`` with Flask's test client); a ``Link`` keeps every other query
  parameter as sent (repeated ones included) and changes only ``page``.
- Behind ``TRUSTED_PROXY_COUNT=1`` the scheme comes from ``X-Forwarded-Proto``; without
  it, the same headers change nothing.
- A deleted task's id is never given to a new task, on both databases.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import ALICE, BOB, tasks_url
from flask import Flask

LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]+)"')
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


# --------------------------------------------------------------------------- helpers


def links(response: Any) -> dict[str, str]:
    """The Link header as {rel: URL}; each rel at most once."""
    header = response.headers.get("Link", "")
    found = LINK_RE.findall(header)
    assert found, f"no Link header: {response.headers}"
    rels = [rel for _, rel in found]
    assert len(rels) == len(set(rels)), header
    return {rel: url for url, rel in found}


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Query pairs by name, each name's values in order (names may come in any order)."""
    result: dict[str, list[str]] = {}
    for name, value in pairs:
        result.setdefault(name, []).append(value)
    return result


def create(client: Any, headers: dict[str, str], user: str = ALICE, **fields: Any) -> Any:
    response = client.post(tasks_url(user), headers=headers, json={"title": "A task", **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


# --------------------------------------------------------------------------- Location


def test_location_of_a_created_task_is_absolute(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = create(client, auth_headers())
    task_id = response.get_json()["id"]
    location = response.headers["Location"]
    assert location == f"http://localhost/api/{ALICE}/tasks/{task_id}"
    # And it is where the task is.
    got = client.get(urlsplit(location).path, headers=auth_headers())
    assert got.status_code == 200
    assert got.get_json() == response.get_json()


def test_location_follows_the_host_of_the_request(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    """Built from the request, not from a fixed setting."""
    response = client.post(
        tasks_url(),
        headers=auth_headers(),
        json={"title": "A task"},
        base_url="http://api.example.test:8080",
    )
    assert response.status_code == 201
    task_id = response.get_json()["id"]
    assert (
        response.headers["Location"] == f"http://api.example.test:8080/api/{ALICE}/tasks/{task_id}"
    )


def test_location_of_an_idempotent_replay_is_absolute(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = {**auth_headers(), "Idempotency-Key": f"links-{uuid.uuid4().hex}"}
    first = create(client, headers)
    again = create(client, headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    task_id = first.get_json()["id"]
    expected = f"http://localhost/api/{ALICE}/tasks/{task_id}"
    assert first.headers["Location"] == expected
    assert again.headers["Location"] == expected


# --------------------------------------------------------------------------- Link


@pytest.fixture
def five_tagged(client: Any, auth_headers: Callable[..., dict[str, str]]) -> list[int]:
    """Five pending tasks tagged a and b, one completed, and one with only tag a."""
    ids = [
        create(client, auth_headers(), title=f"T{i}", tags=["a", "b"]).get_json()["id"]
        for i in range(5)
    ]
    create(client, auth_headers(), title="done", tags=["a", "b"], completed=True)
    create(client, auth_headers(), title="only a", tags=["a"])
    return ids


def test_link_urls_are_absolute_and_keep_the_other_parameters(
    client: Any, auth_headers: Callable[..., dict[str, str]], five_tagged: list[int]
) -> None:
    sent = [
        ("status", "pending"),
        ("tag", "a"),
        ("page_size", "2"),
        ("tag", "b"),
        ("sort", "title"),
        ("order", "asc"),
    ]
    qs = "&".join(f"{k}={v}" for k, v in sent)
    response = client.get(f"{tasks_url()}?{qs}&page=2", headers=auth_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [t["title"] for t in response.get_json()] == ["T2", "T3"]
    found = links(response)
    assert set(found) == {"first", "prev", "next", "last"}, found
    expected_pages = {"first": "1", "prev": "1", "next": "3", "last": "3"}
    for rel, url in found.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("http", "localhost", tasks_url()), url
        params = query(url)
        pages = [v for k, v in params if k == "page"]
        assert pages == [expected_pages[rel]], (rel, url)
        # Every other parameter, repeated ones with their values in the order sent.
        assert grouped([(k, v) for k, v in params if k != "page"]) == grouped(sent), (rel, url)
        # Following the link gives that page of the same filtered list.
        followed = client.get(f"{parts.path}?{parts.query}", headers=auth_headers())
        assert followed.status_code == 200
        assert len(followed.get_json()) == (1 if expected_pages[rel] == "3" else 2)
        assert {t["title"] for t in followed.get_json()} <= {f"T{i}" for i in range(5)}


@pytest.mark.parametrize(
    "page, rels", [(1, {"first", "next", "last"}), (3, {"first", "prev", "last"})]
)
def test_first_and_last_pages_have_only_the_links_that_exist(
    client: Any,
    auth_headers: Callable[..., dict[str, str]],
    five_tagged: list[int],
    page: int,
    rels: set[str],
) -> None:
    response = client.get(
        f"{tasks_url()}?status=pending&tag=a&tag=b&page_size=2&page={page}", headers=auth_headers()
    )
    found = links(response)
    assert set(found) == rels, found
    for url in found.values():
        assert url.startswith(f"http://localhost/api/{ALICE}/tasks?"), url
        assert [v for k, v in query(url) if k == "tag"] == ["a", "b"], url


def test_link_without_a_page_parameter_adds_one(
    client: Any, auth_headers: Callable[..., dict[str, str]], five_tagged: list[int]
) -> None:
    response = client.get(f"{tasks_url()}?page_size=3", headers=auth_headers())
    found = links(response)
    assert set(found) == {"first", "next", "last"}
    assert query(found["next"]) == [("page_size", "3"), ("page", "2")]
    assert query(found["last"]) == [("page_size", "3"), ("page", "3")]


def test_link_keeps_characters_that_need_encoding(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    """A search text with &, = and a space survives the round trip through the link."""
    for i in range(3):
        create(client, auth_headers(), title=f"milk & eggs = {i}")
    response = client.get(
        f"{tasks_url()}?q=milk%20%26%20eggs%20%3D&page_size=1", headers=auth_headers()
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    found = links(response)
    assert found["next"].startswith(f"http://localhost/api/{ALICE}/tasks?"), found["next"]
    assert ("q", "milk & eggs =") in query(found["next"]), found["next"]
    parts = urlsplit(found["next"])
    followed = client.get(f"{parts.path}?{parts.query}", headers=auth_headers())
    assert followed.status_code == 200 and len(followed.get_json()) == 1


# --------------------------------------------------------------------------- behind a proxy


@pytest.mark.parametrize(
    ("proxies", "scheme"),
    [(1, "https"), (0, "http")],
    ids=["behind a trusted proxy the forwarded scheme is used", "without one it is ignored"],
)
def test_location_and_link_urls_take_the_scheme_only_from_a_trusted_proxy(
    extra_app: Callable[..., Flask],
    auth_headers: Callable[..., dict[str, str]],
    proxies: int,
    scheme: str,
) -> None:
    client = extra_app(TRUSTED_PROXY_COUNT=proxies).test_client()
    headers = {**auth_headers(), **PROXY_HEADERS}
    for i in range(3):
        response = client.post(tasks_url(), headers=headers, json={"title": f"P{i}"})
        assert response.status_code == 201
        task_id = response.get_json()["id"]
        assert response.headers["Location"] == f"{scheme}://localhost/api/{ALICE}/tasks/{task_id}"
    listed = client.get(f"{tasks_url()}?page_size=1&page=2", headers=headers)
    assert listed.status_code == 200
    found = links(listed)
    assert set(found) == {"first", "prev", "next", "last"}
    for url in found.values():
        assert url.startswith(f"{scheme}://localhost/api/{ALICE}/tasks?"), url


def test_behind_a_trusted_proxy_the_forwarded_host_is_not_trusted(
    extra_app: Callable[..., Flask], auth_headers: Callable[..., dict[str, str]]
) -> None:
    """Only X-Forwarded-For and -Proto are trusted (issue 12, part 1): a client's
    X-Forwarded-Host cannot point Location elsewhere."""
    headers = {**auth_headers(), **PROXY_HEADERS, "X-Forwarded-Host": "evil.example"}
    proxied = extra_app(TRUSTED_PROXY_COUNT=1).test_client()
    response = proxied.post(tasks_url(), headers=headers, json={"title": "x"})
    assert response.status_code == 201
    assert urlsplit(response.headers["Location"]).netloc == "localhost", response.headers[
        "Location"
    ]


# --------------------------------------------------------------------------- ids never reused


def test_ids_are_never_reused(client: Any, auth_headers: Callable[..., dict[str, str]]) -> None:
    def new_id() -> int:
        return int(create(client, auth_headers()).get_json()["id"])

    def delete(task_id: int) -> None:
        response = client.delete(tasks_url(suffix=f"/{task_id}"), headers=auth_headers())
        assert response.status_code == 204, response.get_data(as_text=True)

    given = [new_id() for _ in range(3)]
    assert len(set(given)) == 3
    delete(max(given))
    fourth = new_id()
    assert fourth > max(given), (given, fourth)
    given.append(fourth)

    for task_id in given:
        if task_id != max(given[:3]):  # already deleted
            delete(task_id)
    assert client.get(tasks_url(), headers=auth_headers()).get_json() == []
    fifth = new_id()
    assert fifth > max(given), (given, fifth)


def test_ids_are_not_reused_across_users(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    """Bob's new task never gets the id Alice's deleted task had (a stale cache or
    ETag keyed by id must not point at another task)."""
    alice_id = int(create(client, auth_headers(ALICE), ALICE).get_json()["id"])
    response = client.delete(tasks_url(ALICE, alice_id), headers=auth_headers(ALICE))
    assert response.status_code == 204
    bob_id = int(create(client, auth_headers(BOB), BOB).get_json()["id"])
    assert bob_id > alice_id


def test_clearing_completed_tasks_does_not_free_their_ids(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    ids = [int(create(client, auth_headers(), completed=True).get_json()["id"]) for _ in range(3)]
    cleared = client.delete(f"{tasks_url()}?status=completed", headers=auth_headers())
    assert cleared.status_code == 200 and cleared.get_json() == {"deleted": 3}
    assert int(create(client, auth_headers()).get_json()["id"]) > max(ids)
