"""Every error the application answers is one JSON shape: {code, status, message[, errors]}.

Contract: docs/api.md, "Errors". Never HTML, never a traceback, never a 500
for bad input; 503 + Retry-After when the database is unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ALICE, make_app
from flask import Flask
from support import assert_error

from app.models import db

MAX_BODY = 64 * 1024


@pytest.fixture
def task(make_task: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_task(ALICE, title="Existing")


@pytest.fixture
def headers(auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers(ALICE)


def body_route(method: str, task_id: int) -> str:
    return {
        "POST": f"/api/{ALICE}/tasks",
        "PUT": f"/api/{ALICE}/tasks/{task_id}",
        "PATCH": f"/api/{ALICE}/tasks/{task_id}/complete",
    }[method]


BODY_METHODS = ["POST", "PUT", "PATCH"]


def send_body(
    client: Any,
    method: str,
    task: dict[str, Any],
    data: str | bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> Any:
    """``data`` as the body of ``method`` on the route that takes it (``task``'s own)."""
    route = body_route(method, task["id"])
    return client.open(route, method=method, data=data, content_type=content_type, headers=headers)


def json_of_size(prefix: str, size: int) -> str:
    """``prefix`` (opening a string value) padded with "a" and closed: ``size`` bytes."""
    body = prefix + "a" * (size - len(prefix) - 2) + '"}'
    assert len(body.encode()) == size
    return body


# --------------------------------------------------------------------------- 404 / 405


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api",
        f"/api/{ALICE}",
        f"/api/{ALICE}/task",
        f"/api/{ALICE}/tasks/1/extra",
        f"/api/{ALICE}/tasks/1/complete/again",
        "/static/../../etc/passwd",
    ],
)
@pytest.mark.parametrize("accept", ["application/json", "text/html", "*/*"])
def test_unknown_route_is_json_404(client: Any, path: str, accept: str) -> None:
    resp = client.get(path, headers={"Accept": accept})
    assert_error(resp, 404, errors=False)


def test_unknown_route_with_token_is_json_404(client: Any, headers: dict[str, str]) -> None:
    assert_error(client.post("/api/tasks", headers=headers, json={"title": "x"}), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # DELETE on the list clears completed tasks (docs/api.md, "Clear completed").
        ("PATCH", f"/api/{ALICE}/tasks", {"GET", "POST", "DELETE"}),
        ("PUT", f"/api/{ALICE}/tasks", {"GET", "POST", "DELETE"}),
        ("POST", f"/api/{ALICE}/tasks/1", {"GET", "PUT", "DELETE"}),
        ("PATCH", f"/api/{ALICE}/tasks/1", {"GET", "PUT", "DELETE"}),
        ("GET", f"/api/{ALICE}/tasks/1/complete", {"PATCH"}),
        ("PUT", f"/api/{ALICE}/tasks/1/complete", {"PATCH"}),
        ("POST", "/openapi.json", {"GET"}),
    ],
)
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "with-token"])
def test_wrong_method_is_json_405_with_allow(
    client: Any,
    headers: dict[str, str],
    method: str,
    path: str,
    allowed: set[str],
    authenticated: bool,
) -> None:
    resp = client.open(path, method=method, headers=headers if authenticated else {})
    assert_error(resp, 405, errors=False)
    allow = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, allow
    assert method not in allow


# --------------------------------------------------------------------------- 413


@pytest.mark.parametrize("method", BODY_METHODS)
@pytest.mark.parametrize("extra", [1, 1024 * 1024], ids=["64KiB+1", "1MiB"])
def test_body_over_64_kib_is_json_413(
    client: Any, task: dict[str, Any], headers: dict[str, str], method: str, extra: int
) -> None:
    body = json_of_size('{"title": "x", "description": "', MAX_BODY + extra)
    resp = send_body(client, method, task, body, headers)
    assert_error(resp, 413, errors=False)


@pytest.mark.parametrize("method", BODY_METHODS)
def test_body_of_exactly_64_kib_is_read(
    client: Any, task: dict[str, Any], headers: dict[str, str], method: str
) -> None:
    # Exactly at the limit: read and validated (description too long -> 422), not 413.
    body = json_of_size('{"completed": true, "description": "', MAX_BODY)
    resp = send_body(client, method, task, body, headers)
    if method == "PATCH":  # the toggle schema has no description field: unknown -> 422
        assert_error(resp, 422, errors=True)
    else:
        body_json = assert_error(resp, 422, errors=True)
        assert "description" in body_json["errors"]["json"]


# --------------------------------------------------------------------------- 415


@pytest.mark.parametrize("method", BODY_METHODS)
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"title": "x", "completed": true}', "text/plain"),
        ("title=x&completed=true", "application/x-www-form-urlencoded"),
        ("<task><title>x</title></task>", "application/xml"),
    ],
    ids=["text-plain", "form", "xml"],
)
def test_non_json_body_is_json_415(
    client: Any,
    task: dict[str, Any],
    headers: dict[str, str],
    method: str,
    data: str,
    content_type: str,
) -> None:
    resp = send_body(client, method, task, data, headers, content_type)
    assert_error(resp, 415, errors=False)
    # Nothing was changed by the refused request.
    after = client.get(f"/api/{ALICE}/tasks", headers=headers).get_json()
    assert [(t["id"], t["title"], t["completed"]) for t in after] == [
        (task["id"], "Existing", False)
    ]


# --------------------------------------------------------------------------- 400

DEPTH = 32_000  # balanced [[[...]]] that still fits in 64 KiB
DIGITS = 60_000  # an integer literal that still fits in 64 KiB

UNREADABLE = {
    "truncated": b'{"title": "x"',
    "single quotes": b"{'title': 'x'}",
    "trailing comma": b'{"title": "x",}',
    "bare word": b"hello",
    "nan-ish garbage": b'{"title": "x", "completed": tru}',
    "invalid utf-8": b'{"title": "caf\xe9 \xff\xfe"}',
    "invalid utf-8 continuation": b'{"title": "\xc3\x28"}',
    "deeply nested 32k": b"[" * DEPTH + b"]" * DEPTH,
    "deeply nested in a field": (
        b'{"title": "x", "description": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    ),
    "deeply nested 50k unterminated": b"[" * 50_000,
    "number with 60k digits": b"1" * DIGITS,
    "number with 60k digits in a field": b'{"title": "x", "completed": ' + b"9" * DIGITS + b"}",
}


@pytest.mark.parametrize("method", BODY_METHODS)
@pytest.mark.parametrize("case", list(UNREADABLE), ids=list(UNREADABLE))
def test_unreadable_json_is_json_400(
    client: Any, task: dict[str, Any], headers: dict[str, str], method: str, case: str
) -> None:
    data = UNREADABLE[case]
    assert len(data) <= MAX_BODY
    resp = send_body(client, method, task, data, headers)
    body = assert_error(resp, 400)
    assert "json" in body["message"].lower() or "json" in body.get("errors", {})


OVERSIZED_PATHOLOGICAL = {
    # The brief's literal sizes exceed the 64 KiB limit, so the size check answers first.
    "deeply nested 50k levels": b"[" * 50_000 + b"]" * 50_000,
    "number with 100k digits": b"1" * 100_000,
}


@pytest.mark.parametrize("case", list(OVERSIZED_PATHOLOGICAL), ids=list(OVERSIZED_PATHOLOGICAL))
def test_pathological_json_over_the_limit_is_413_not_500(
    client: Any, headers: dict[str, str], case: str
) -> None:
    resp = client.post(
        f"/api/{ALICE}/tasks",
        data=OVERSIZED_PATHOLOGICAL[case],
        content_type="application/json",
        headers=headers,
    )
    assert_error(resp, 413, errors=False)


# --------------------------------------------------------------------------- 422


@pytest.mark.parametrize(
    ("method", "payload", "field"),
    [
        ("POST", {}, "title"),
        ("POST", {"title": ""}, "title"),
        ("POST", {"title": "   "}, "title"),
        ("POST", {"title": "x" * 201}, "title"),
        ("POST", {"title": 5}, "title"),
        ("POST", {"title": "a\u0000b"}, "title"),
        ("POST", {"title": "x", "description": "d" * 1001}, "description"),
        ("POST", {"title": "x", "description": "nul \u0000 here"}, "description"),
        ("POST", {"title": "x", "completed": "true"}, "completed"),
        ("POST", {"title": "x", "completed": 1}, "completed"),
        ("POST", {"title": "x", "id": 7}, "id"),
        ("POST", {"title": "x", "user_id": "bob"}, "user_id"),
        ("POST", {"title": "x", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ("PUT", {"title": None}, "title"),
        ("PUT", {"completed": "yes"}, "completed"),
        ("PUT", {"id": 1}, "id"),
        ("PATCH", {"completed": "true"}, "completed"),
        ("PATCH", {"completed": None}, "completed"),
    ],
)
def test_invalid_json_input_is_422_keyed_by_location_and_field(
    client: Any,
    task: dict[str, Any],
    headers: dict[str, str],
    method: str,
    payload: dict[str, Any],
    field: str,
) -> None:
    resp = client.open(body_route(method, task["id"]), method=method, json=payload, headers=headers)
    body = assert_error(resp, 422, errors=True)
    assert set(body["errors"]) == {"json"}
    assert field in body["errors"]["json"], body
    messages = body["errors"]["json"][field]
    assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)


def test_put_with_empty_object_is_422(
    client: Any, task: dict[str, Any], headers: dict[str, str]
) -> None:
    resp = client.put(f"/api/{ALICE}/tasks/{task['id']}", json={}, headers=headers)
    body = assert_error(resp, 422, errors=True)
    assert set(body["errors"]) == {"json"}


@pytest.mark.parametrize("payload", [[], [1, 2], "title", 42, True], ids=repr)
def test_json_that_is_not_an_object_is_422(
    client: Any, headers: dict[str, str], payload: Any
) -> None:
    resp = client.post(f"/api/{ALICE}/tasks", json=payload, headers=headers)
    body = assert_error(resp, 422, errors=True)
    assert set(body["errors"]) == {"json"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("sort=DROP TABLE tasks", "sort"),
        ("order=sideways", "order"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
    ],
)
def test_invalid_query_is_422_keyed_by_query(
    client: Any, headers: dict[str, str], query: str, field: str
) -> None:
    resp = client.get(f"/api/{ALICE}/tasks?{query}", headers=headers)
    body = assert_error(resp, 422, errors=True)
    assert set(body["errors"]) == {"query"}
    assert field in body["errors"]["query"]


def test_validation_error_example_matches_contract(client: Any, headers: dict[str, str]) -> None:
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": ""}, headers=headers)
    body = assert_error(resp, 422, errors=True)
    assert body["code"] == 422
    assert body["status"] == "Unprocessable Entity"
    assert body["message"] == "Validation failed"
    assert list(body["errors"]) == ["json"]
    assert list(body["errors"]["json"]) == ["title"]


@pytest.mark.parametrize(
    "raw_id", ["abc", "0", "-1", "1.5", "99999999999999999999999", "%E2%91%A0"]
)
def test_bad_task_id_is_404_or_422_json_not_500(
    client: Any, headers: dict[str, str], raw_id: str
) -> None:
    resp = client.get(f"/api/{ALICE}/tasks/{raw_id}", headers=headers)
    assert resp.status_code in (404, 422)
    assert_error(resp, resp.status_code)


# --------------------------------------------------------------------------- 500


def test_exception_in_a_view_is_generic_json_500(
    extra_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    buggy = extra_app(PROPAGATE_EXCEPTIONS=False)

    @buggy.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR):
        resp = buggy.test_client().get("/boom", headers={"Accept": "text/html"})
    body = assert_error(resp, 500, errors=False)
    text = resp.get_data(as_text=True)
    assert "secret detail" not in text
    assert "RuntimeError" not in text
    assert body["message"] == "An internal error occurred."
    # The detail goes to the log instead.
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records), (
        caplog.records
    )


def test_exception_in_an_api_route_is_generic_json_500(
    extra_app: Callable[..., Flask],
    auth_headers: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.tasks import queries

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail: SELECT * FROM tasks")

    monkeypatch.setattr(queries, "count_tasks", explode)
    buggy = extra_app(PROPAGATE_EXCEPTIONS=False)
    resp = buggy.test_client().get(f"/api/{ALICE}/tasks", headers=auth_headers(ALICE))
    assert_error(resp, 500, errors=False)
    assert "secret detail" not in resp.get_data(as_text=True)
    assert "SELECT" not in resp.get_data(as_text=True)


# --------------------------------------------------------------------------- 503

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nope"  # port 1: connection refused


@pytest.fixture
def down_client(extra_app: Callable[..., Flask]) -> Any:
    pytest.importorskip("psycopg2")
    return extra_app(UNREACHABLE, PROPAGATE_EXCEPTIONS=False).test_client()


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", f"/api/{ALICE}/tasks", None),
        ("POST", f"/api/{ALICE}/tasks", {"title": "x"}),
        ("GET", f"/api/{ALICE}/tasks/1", None),
        ("PUT", f"/api/{ALICE}/tasks/1", {"title": "y"}),
        ("DELETE", f"/api/{ALICE}/tasks/1", None),
        ("PATCH", f"/api/{ALICE}/tasks/1/complete", None),
    ],
)
def test_unreachable_database_is_json_503_with_retry_after(
    down_client: Any,
    auth_headers: Callable[..., dict[str, str]],
    method: str,
    path: str,
    payload: Any,
) -> None:
    kwargs: dict[str, Any] = {"headers": auth_headers(ALICE)}
    if payload is not None:
        kwargs["json"] = payload
    resp = down_client.open(path, method=method, **kwargs)
    assert_error(resp, 503, errors=False)
    retry_after = resp.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) > 0, retry_after
    text = resp.get_data(as_text=True)
    for leak in ("127.0.0.1", "psycopg2", "OperationalError", "Connection refused", "nope"):
        assert leak not in text


def test_unreachable_database_still_authenticates_first(down_client: Any) -> None:
    resp = down_client.get(f"/api/{ALICE}/tasks")
    assert resp.status_code == 401
    assert_error(resp, 401)


def test_exhausted_connection_pool_is_503_with_retry_after(database_url, token):
    """Every pooled connection busy past pool_timeout: 503 + Retry-After, not a 500."""
    app = make_app(
        database_url,
        PROPAGATE_EXCEPTIONS=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.3},
    )
    with app.app_context():
        held = db.engine.connect()
        try:
            resp = app.test_client().get(
                f"/api/{ALICE}/tasks", headers={"Authorization": f"Bearer {token(ALICE)}"}
            )
        finally:
            held.close()
            db.engine.dispose()
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    body = resp.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
