"""Errors that say the fix (issue 13, part 3), in-process.

Contract: docs/api.md, "Errors" (the shape: ``code``, ``status``, ``message`` and
``errors`` for validation failures), "Authentication" (401 with ``WWW-Authenticate``),
"A task" (title 1-200 characters after trimming; tags 1-50), "From a browser (CORS)"
(``CORS_ORIGINS``). Issue 13's table: each mistake a frontend developer makes gets a
message that names what to change, "without revealing anything about a token's key or
another user's data".

Each test asserts the error shape and the words the message must contain, not the
whole sentence, so rewording stays free.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from conftest import ALICE, BOB, TEST_SECRET, tasks_url
from flask import Flask
from support import assert_401, assert_error, b64url

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
ROUTE_HINT = "/api/{user_id}/tasks"


# --------------------------------------------------------------------------- helpers


def signed(claims: dict[str, Any], secret: str = TEST_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def claims(user: str = ALICE, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user, "iat": now, "exp": now + 600, **extra}


def without(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != name}


def get_with(client: Any, token: str, user: str = ALICE) -> Any:
    return client.get(tasks_url(user), headers={"Authorization": f"Bearer {token}"})


def names(message: str, claim: str) -> bool:
    """The message names the claim as a word ("iss", not the "iss" of "issuer")."""
    return re.search(rf"\b{claim}\b", message) is not None


def secret_fragments() -> list[str]:
    """Every 8-character piece of the secret: none may appear in a response."""
    return [TEST_SECRET[i : i + 8] for i in range(len(TEST_SECRET) - 7)]


def assert_reveals_no_key(response: Any, token: str) -> None:
    """Neither the body nor the challenge carries the secret, a piece of it, or the
    signature the token should have had."""
    header_part, payload_part, _ = token.split(".")
    expected = hmac.new(
        TEST_SECRET.encode(), f"{header_part}.{payload_part}".encode(), hashlib.sha256
    ).digest()
    shown = response.get_data(as_text=True) + "\n" + response.headers.get("WWW-Authenticate", "")
    for fragment in secret_fragments():
        assert fragment not in shown, f"a piece of the secret is in the response: {shown}"
    assert b64url(expected) not in shown


# ------------------------------------------------------------------------- the Authorization header


def test_authorization_without_bearer_says_bearer_token(client: Any) -> None:
    token = signed(claims())
    message = assert_401(client.get(tasks_url(), headers={"Authorization": token}))["message"]
    assert "Bearer <token>" in message, message
    assert token not in message


def test_no_authorization_header_says_authorization_bearer(client: Any) -> None:
    message = assert_401(client.get(tasks_url()))["message"]
    assert "Authorization: Bearer" in message, message


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    "])
def test_bearer_with_nothing_after_says_there_is_no_token(client: Any, value: str) -> None:
    message = assert_401(client.get(tasks_url(), headers={"Authorization": value}))["message"]
    assert "no token" in message.lower(), message


# --------------------------------------------------------------------------- claims


def test_token_without_exp_names_exp(client: Any) -> None:
    token = signed(without(claims(), "exp"))
    response = get_with(client, token)
    message = assert_401(response)["message"]
    assert names(message, "exp"), message
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert_reveals_no_key(response, token)


def test_token_without_sub_names_sub(client: Any) -> None:
    token = signed(without(claims(), "sub"))
    response = get_with(client, token)
    message = assert_401(response)["message"]
    assert names(message, "sub"), message
    assert not names(message, "exp"), message  # the claim that is missing, not another one
    assert_reveals_no_key(response, token)


def test_token_with_exp_as_a_string_names_exp_and_number(client: Any) -> None:
    token = signed(claims(exp=str(int(time.time()) + 600)))
    response = get_with(client, token)
    message = assert_401(response)["message"]
    assert names(message, "exp") and "number" in message.lower(), message
    assert_reveals_no_key(response, token)


@pytest.fixture
def issuer_app(extra_app: Callable[..., Flask]) -> Flask:
    """An app that checks iss and aud."""
    return extra_app(JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)


def test_token_with_the_configured_iss_and_aud_is_accepted(issuer_app: Flask) -> None:
    """The control for the two below: the right iss and aud pass."""
    token = signed(claims(iss=ISSUER, aud=AUDIENCE))
    assert get_with(issuer_app.test_client(), token).status_code == 200


@pytest.mark.parametrize(
    "claim, value",
    [("iss", "https://other-auth.example.com"), ("aud", "https://other-api.example.com")],
)
def test_token_with_wrong_iss_or_aud_names_the_claim(
    issuer_app: Flask, claim: str, value: str
) -> None:
    good = {"iss": ISSUER, "aud": AUDIENCE}
    token = signed(claims(**{**good, claim: value}))
    response = get_with(issuer_app.test_client(), token)
    message = assert_401(response)["message"]
    other = "aud" if claim == "iss" else "iss"
    assert names(message, claim) and not names(message, other), message
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert_reveals_no_key(response, token)


def test_bad_signature_says_the_signature_does_not_verify(client: Any) -> None:
    token = signed(claims(), secret="another-secret-0123456789-abcdefghijkl")
    response = get_with(client, token)
    message = assert_401(response)["message"]
    assert "signature" in message.lower() and "verif" in message.lower(), message
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert_reveals_no_key(response, token)


def test_tampered_payload_reveals_no_key(client: Any) -> None:
    """A token whose payload was changed after signing: its signature would be the
    service's to compute, and the answer must not show it."""
    header, _, signature = signed(claims()).split(".")
    forged_payload = b64url(f'{{"sub":"{BOB}","exp":{int(time.time()) + 600}}}'.encode())
    token = f"{header}.{forged_payload}.{signature}"
    response = get_with(client, token, BOB)
    assert "signature" in assert_401(response)["message"].lower()
    assert_reveals_no_key(response, token)


# --------------------------------------------------------------------------- titles and tags


def test_blank_title_must_not_be_blank(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.post(tasks_url(), headers=auth_headers(), json={"title": "   "})
    body = assert_error(response, 422, "Unprocessable Entity")
    assert body["errors"] == {"json": {"title": ["Must not be blank."]}}


def test_title_over_200_says_at_most_200_once_trimmed(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.post(tasks_url(), headers=auth_headers(), json={"title": "x" * 201})
    body = assert_error(response, 422, "Unprocessable Entity")
    assert body["errors"] == {"json": {"title": ["Must be at most 200 characters once trimmed."]}}
    # "once trimmed" is true: 200 characters with white space around them are accepted.
    ok = client.post(tasks_url(), headers=auth_headers(), json={"title": "  " + "x" * 200 + "  "})
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["title"] == "x" * 200


def tag_messages(body: dict[str, Any]) -> list[str]:
    """Every message under errors.json.tags, however it is keyed (by index or not)."""
    tags = body["errors"]["json"]["tags"]
    if isinstance(tags, dict):
        return [m for messages in tags.values() for m in messages]
    return list(tags)


def test_blank_tag_must_not_be_blank(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        tasks_url(), headers=auth_headers(), json={"title": "ok", "tags": ["home", "   "]}
    )
    body = assert_error(response, 422, "Unprocessable Entity")
    assert list(body["errors"]) == ["json"] and list(body["errors"]["json"]) == ["tags"], body
    assert tag_messages(body) == ["Must not be blank."], body


def test_tag_over_50_says_at_most_50_once_trimmed(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        tasks_url(), headers=auth_headers(), json={"title": "ok", "tags": ["t" * 51]}
    )
    body = assert_error(response, 422, "Unprocessable Entity")
    assert tag_messages(body) == ["Must be at most 50 characters once trimmed."], body


# --------------------------------------------------------------------------- trailing slash


def test_list_with_a_trailing_slash_is_served(
    client: Any,
    auth_headers: Callable[..., dict[str, str]],
    make_task: Callable[..., dict[str, Any]],
) -> None:
    task = make_task(title="Slash")
    response = client.get(tasks_url(suffix="/"), headers=auth_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == [task]
    assert response.get_json() == client.get(tasks_url(), headers=auth_headers()).get_json()


def test_create_with_a_trailing_slash_creates(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.post(tasks_url(suffix="/"), headers=auth_headers(), json={"title": "Slash"})
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["title"] == "Slash"
    # The canonical URL, without the slash.
    assert response.headers["Location"].endswith(f"/api/{ALICE}/tasks/{created['id']}")
    listed = client.get(tasks_url(), headers=auth_headers()).get_json()
    assert [t["id"] for t in listed] == [created["id"]]


def test_task_with_a_trailing_slash_is_the_same_task(
    client: Any,
    auth_headers: Callable[..., dict[str, str]],
    make_task: Callable[..., dict[str, Any]],
) -> None:
    task = make_task(title="Slash")
    response = client.get(tasks_url(suffix=f"/{task['id']}/"), headers=auth_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == task
    # The trailing slash is no way around ownership.
    other = client.get(tasks_url(BOB, task["id"], "/"), headers=auth_headers(BOB))
    assert_error(other, 404, "Not Found")


# --------------------------------------------------------------------------- 405 and 404


def test_patch_on_a_task_names_the_allowed_methods_and_the_complete_route(
    client: Any,
    auth_headers: Callable[..., dict[str, str]],
    make_task: Callable[..., dict[str, Any]],
) -> None:
    task = make_task(title="Toggle me")
    response = client.patch(
        tasks_url(suffix=f"/{task['id']}"), headers=auth_headers(), json={"completed": True}
    )
    body = assert_error(response, 405, "Method Not Allowed")
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allow, allow
    assert "PATCH" not in allow
    message = body["message"]
    for method in ("GET", "PUT", "DELETE"):
        assert method in message, message
    assert "/complete" in message, message
    # Nothing changed.
    again = client.get(tasks_url(suffix=f"/{task['id']}"), headers=auth_headers()).get_json()
    assert again == task


def test_wrong_method_on_the_list_names_the_allowed_methods(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.put(tasks_url(), headers=auth_headers(), json={"title": "x"})
    body = assert_error(response, 405, "Method Not Allowed")
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert {"GET", "POST", "DELETE"} <= allow and "PUT" not in allow, allow
    for method in ("GET", "POST", "DELETE"):
        assert method in body["message"], body


@pytest.mark.parametrize("path", ["/api/nothing", f"/api/{ALICE}/task", f"/api/{ALICE}/todos/1"])
def test_unknown_route_names_the_routes(
    client: Any, auth_headers: Callable[..., dict[str, str]], path: str
) -> None:
    response = client.get(path, headers=auth_headers())
    body = assert_error(response, 404, "Not Found")
    assert ROUTE_HINT in body["message"], body
    assert "errors" not in body


def test_missing_task_still_says_task_not_found(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    """The route hint is for unknown routes; a known route with no such task says so."""
    body = assert_error(
        client.get(tasks_url(suffix="/999999"), headers=auth_headers()), 404, "Not Found"
    )
    assert ROUTE_HINT not in body["message"], body


# --------------------------------------------------------------------------- refused CORS origins


ALLOWED_ORIGIN = "http://localhost:3000"
EVIL_ORIGIN = "https://evil.example"


@pytest.fixture
def cors_app(extra_app: Callable[..., Flask]) -> Flask:
    return extra_app(CORS_ORIGINS=[ALLOWED_ORIGIN])


def from_origin(
    cors_app: Flask, origin: str, method: str, token: dict[str, str], **preflight: str
) -> Any:
    """The list request (GET, with the token) or its preflight (OPTIONS, asking for POST and
    the ``preflight`` headers) from ``origin``."""
    headers = {"Origin": origin}
    if method == "OPTIONS":
        headers |= {"Access-Control-Request-Method": "POST", **preflight}
    else:
        headers |= token
    return cors_app.test_client().open(tasks_url(), method=method, headers=headers)


def cors_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "app.web" and r.levelno == logging.WARNING and "CORS_ORIGINS" in r.getMessage()
    ]


@pytest.mark.parametrize("method", ["GET", "OPTIONS"], ids=["request", "preflight"])
def test_refused_origin_gets_no_cors_headers_and_is_logged(
    cors_app: Flask,
    auth_headers: Callable[..., dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.web")
    asked = {"Access-Control-Request-Headers": "Authorization, Content-Type"}
    response = from_origin(cors_app, EVIL_ORIGIN, method, auth_headers(), **asked)
    assert response.status_code < 500
    assert "Access-Control-Allow-Origin" not in response.headers, response.headers
    warnings = cors_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    text = warnings[0].getMessage()
    assert EVIL_ORIGIN in text and "CORS_ORIGINS" in text, text
    assert ALLOWED_ORIGIN in text, text  # and what it allows today


@pytest.mark.parametrize("method", ["GET", "OPTIONS"], ids=["request", "preflight"])
def test_allowed_origin_gets_cors_headers_and_no_warning(
    cors_app: Flask,
    auth_headers: Callable[..., dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.web")
    response = from_origin(cors_app, ALLOWED_ORIGIN, method, auth_headers())
    assert response.status_code < 300, response.get_data(as_text=True)
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    assert cors_warnings(caplog) == []


def test_request_without_origin_logs_no_cors_warning(
    cors_app: Flask, auth_headers: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """curl and server-to-server calls send no Origin: nothing was refused."""
    caplog.set_level(logging.WARNING, logger="app.web")
    response = cors_app.test_client().get(tasks_url(), headers=auth_headers())
    assert response.status_code == 200
    assert cors_warnings(caplog) == []
