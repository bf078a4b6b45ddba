"""Authentication and authorisation: the shared-secret (HS256) bearer token.

Contract: docs/api.md, "Authentication" and "Errors".
Tokens are built by hand here (not with the app's own helper) so that every
malformed, mis-signed or mis-claimed variant can be produced exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ALICE, BOB, TEST_SECRET, stored_user
from flask import Flask
from support import DROP, assert_401, assert_error, b64url, bearer, with_claims

OTHER_SECRET = "another-secret-0123456789-abcdefghijklmn"  # 40 characters, not TEST_SECRET
assert len(OTHER_SECRET) == 40
LEEWAY = 30  # the documented default

HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


# --------------------------------------------------------------------------- helpers


def claims(user_id: str = ALICE, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return with_claims({"sub": user_id, "iat": now, "exp": now + 3600}, overrides)


def jws(
    payload: Any,
    *,
    key: str = TEST_SECRET,
    alg: str = "HS256",
    header: dict[str, Any] | None = None,
    raw_payload: bytes | None = None,
) -> str:
    """A compact JWS signed with HMAC, built by hand (no key-length warnings, any header)."""
    head = {"alg": alg, "typ": "JWT"} if header is None else header
    signing_input = (
        b64url(json.dumps(head))
        + "."
        + b64url(raw_payload if raw_payload is not None else json.dumps(payload))
    )
    digest = HASHES.get(alg, hashlib.sha256)
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    """``alg: none``: base64url header + payload + an empty signature."""
    return b64url(json.dumps({"alg": alg})) + "." + b64url(json.dumps(payload)) + "."


def assert_403(resp: Any) -> None:
    assert_error(resp, 403, "Forbidden", errors=False)


# --------------------------------------------------------------------------- the six routes


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {u} and {id}
    body: Any
    success: int

    def url(self, user_id: str = ALICE, task_id: Any = 1) -> str:
        return self.path.format(u=user_id, id=task_id)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/api/{u}/tasks", None, 200),
    Route("POST", "/api/{u}/tasks", {"title": "Buy milk"}, 201),
    Route("GET", "/api/{u}/tasks/{id}", None, 200),
    Route("PUT", "/api/{u}/tasks/{id}", {"title": "Buy oat milk"}, 200),
    Route("DELETE", "/api/{u}/tasks/{id}", None, 204),
    Route("PATCH", "/api/{u}/tasks/{id}/complete", None, 200),
]
ROUTE_IDS = [str(r) for r in ROUTES]


def call(
    client: Any,
    route: Route,
    headers: dict[str, str] | None,
    *,
    user_id: str = ALICE,
    task_id: Any = 1,
) -> Any:
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if route.body is not None:
        kwargs["json"] = route.body
    return client.open(route.url(user_id, task_id), method=route.method, **kwargs)


# --------------------------------------------------------------------------- the bad-token matrix

# Each case builds the Authorization header value (None: no header) when the test runs.
BadAuth = Callable[[], "str | None"]

NO_CREDENTIALS: dict[str, BadAuth] = {
    "missing header": lambda: None,
    "basic scheme": lambda: "Basic " + base64.b64encode(b"alice:password").decode(),
    "basic scheme carrying a valid jwt": lambda: "Basic " + jws(claims()),
    "token scheme": lambda: "Token " + jws(claims()),
}

EMPTY_BEARER: dict[str, BadAuth] = {
    "bearer with empty token": lambda: "Bearer ",
    "bearer alone": lambda: "Bearer",
    "bearer with blanks only": lambda: "Bearer    ",
}

INVALID_TOKENS: dict[str, BadAuth] = {
    # malformed
    "malformed abc": lambda: "Bearer abc",
    "malformed a.b.c": lambda: "Bearer a.b.c",
    "malformed four segments": lambda: "Bearer " + jws(claims()) + ".extra",
    "malformed bad base64": lambda: "Bearer !!!.@@@.###",
    "malformed bad base64 payload": lambda: "Bearer " + jws(claims()).split(".")[0] + ".%%%%.abc",
    "malformed non-ascii": lambda: "Bearer \u00e9\u00e9.\u00e9.\u00e9",
    "header not an object": lambda: "Bearer " + b64url("[1]") + "." + b64url("{}") + ".sig",
    "header not json": lambda: "Bearer " + b64url("not json") + "." + b64url("{}") + ".sig",
    "header deeply nested": lambda: "Bearer " + b64url("[" * 3000) + "." + b64url("{}") + ".x",
    "header alg not a string": lambda: "Bearer " + jws(claims(), header={"alg": 256}),
    "header without alg": lambda: "Bearer " + jws(claims(), header={"typ": "JWT"}),
    "payload not an object": lambda: "Bearer " + jws(None, raw_payload=b"[1, 2]"),
    "payload not json": lambda: "Bearer " + jws(None, raw_payload=b"{nope"),
    "token too long": lambda: "Bearer " + jws(claims(pad="x" * 9000)),
    # signature
    "wrong signature (other 40-char secret)": lambda: "Bearer " + jws(claims(), key=OTHER_SECRET),
    "signature stripped": lambda: "Bearer " + jws(claims()).rsplit(".", 1)[0] + ".",
    "signature tampered": lambda: "Bearer " + _tampered_signature(),
    "payload swapped after signing": lambda: "Bearer " + _swapped_payload(),
    # algorithms
    "alg none": lambda: "Bearer " + unsigned(claims()),
    "alg None": lambda: "Bearer " + unsigned(claims(), alg="None"),
    "alg NONE": lambda: "Bearer " + unsigned(claims(), alg="NONE"),
    "alg none with a real signature": lambda: "Bearer " + jws(claims(), header={"alg": "none"}),
    "alg HS384 (only HS256 allowed)": lambda: "Bearer " + jws(claims(), alg="HS384"),
    "alg HS512 (only HS256 allowed)": lambda: "Bearer " + jws(claims(), alg="HS512"),
    "alg RS256 signed with the secret (confusion)": lambda: (
        "Bearer " + jws(claims(), header={"alg": "RS256", "typ": "JWT"})
    ),
    "alg EdDSA without jwks": lambda: (
        "Bearer " + jws(claims(), header={"alg": "EdDSA", "kid": "k1"})
    ),
    # time claims
    "expired beyond leeway": lambda: (
        "Bearer " + jws(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - LEEWAY - 60))
    ),
    "nbf in the future beyond leeway": lambda: (
        "Bearer " + jws(claims(nbf=int(time.time()) + LEEWAY + 60))
    ),
    "iat in the future beyond leeway": lambda: (
        "Bearer " + jws(claims(iat=int(time.time()) + LEEWAY + 60))
    ),
    "exp wrong type": lambda: "Bearer " + jws(claims(exp="tomorrow")),
    "exp null": lambda: "Bearer " + jws(claims(exp=None)),
    "iat wrong type": lambda: "Bearer " + jws(claims(iat="yesterday")),
    "nbf wrong type": lambda: "Bearer " + jws(claims(nbf="soon")),
    "missing exp": lambda: "Bearer " + jws(claims(exp=DROP)),
    # RFC 7519 §2: NumericDate is a JSON number, not a string of digits or a boolean.
    "exp numeric string": lambda: "Bearer " + jws(claims(exp=str(int(time.time()) + 3600))),
    "exp boolean": lambda: "Bearer " + jws(claims(exp=True)),
    "nbf numeric string": lambda: "Bearer " + jws(claims(nbf=str(int(time.time()) - 60))),
    "iat numeric string": lambda: "Bearer " + jws(claims(iat=str(int(time.time()) - 60))),
    # subject
    "missing sub": lambda: "Bearer " + jws(claims(sub=DROP)),
    "sub null": lambda: "Bearer " + jws(claims(sub=None)),
    "sub integer 123": lambda: "Bearer " + jws(claims(sub=123)),
    "sub list": lambda: "Bearer " + jws(claims(sub=[ALICE])),
    "sub empty string": lambda: "Bearer " + jws(claims(sub="")),
    "sub 300 characters": lambda: "Bearer " + jws(claims(sub="a" * 300)),
    "sub with a NUL": lambda: "Bearer " + jws(claims(sub=ALICE + "\x00")),
    "sub with a newline": lambda: "Bearer " + jws(claims(sub=ALICE + "\n")),
    "sub with a lone surrogate": lambda: "Bearer " + jws(claims(sub=ALICE + "\ud800")),
}


def _tampered_signature() -> str:
    token = jws(claims())
    head, payload, sig = token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return f"{head}.{payload}.{flipped}"


def _swapped_payload() -> str:
    head, _, sig = jws(claims(BOB)).split(".")
    return f"{head}.{b64url(json.dumps(claims()))}.{sig}"


BAD_AUTH: list[Any] = [
    *(pytest.param(f, False, id=name) for name, f in NO_CREDENTIALS.items()),
    *(pytest.param(f, None, id=name) for name, f in EMPTY_BEARER.items()),
    *(pytest.param(f, True, id=name) for name, f in INVALID_TOKENS.items()),
]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(("authorization", "invalid"), BAD_AUTH)
def test_bad_token_is_401_on_every_route(
    client: Any, route: Route, authorization: BadAuth, invalid: bool | None
) -> None:
    value = authorization()
    headers = {} if value is None else {"Authorization": value}
    resp = call(client, route, headers)
    assert_401(resp, invalid=invalid)


ACCEPTED: dict[str, Callable[[], dict[str, Any]]] = {
    "expired within leeway": lambda: claims(
        iat=int(time.time()) - 3600, exp=int(time.time()) - LEEWAY + 15
    ),
    "nbf in the future within leeway": lambda: claims(nbf=int(time.time()) + LEEWAY - 15),
    "iat in the future within leeway": lambda: claims(iat=int(time.time()) + LEEWAY - 15),
    "no iat": lambda: claims(iat=DROP),
    "iss and aud when none configured": lambda: claims(
        iss="https://somewhere.example", aud="https://elsewhere.example"
    ),
    "lower-case bearer scheme": lambda: claims(),
}


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_acceptable_token_succeeds_on_every_route(
    client: Any, make_task: Callable[..., dict[str, Any]], route: Route, case: str
) -> None:
    task = make_task(ALICE)
    token = jws(ACCEPTED[case]())
    scheme = "bearer" if case == "lower-case bearer scheme" else "Bearer"
    resp = call(client, route, {"Authorization": f"{scheme} {token}"}, task_id=task["id"])
    assert resp.status_code == route.success, resp.get_data(as_text=True)
    if route.success == 204:
        assert resp.get_data() == b""
    elif route.path.endswith("/tasks") and route.method == "GET":
        assert [t["id"] for t in resp.get_json()] == [task["id"]]
    else:
        body = resp.get_json()
        assert body["user_id"] == ALICE
        if route.method != "POST":
            assert body["id"] == task["id"]


def test_non_integer_numeric_exp_is_accepted(client: Any) -> None:
    # NumericDate may be non-integer (RFC 7519 §2).
    token = jws(claims(exp=time.time() + 3600.5))
    resp = client.get(f"/api/{ALICE}/tasks", headers=bearer(token))
    assert resp.status_code == 200
    assert resp.get_json() == []


# ---------------------------------------------------------------- 401 before anything else

HUGE_JSON = json.dumps({"title": "x", "description": "y" * (70 * 1024)})

UNAUTH_REQUESTS = {
    "POST invalid body": ("POST", "/api/{u}/tasks", {"json": {"title": 5, "id": 1, "x": None}}),
    "POST huge body": (
        "POST",
        "/api/{u}/tasks",
        {"data": HUGE_JSON, "content_type": "application/json"},
    ),
    "POST non-json body": (
        "POST",
        "/api/{u}/tasks",
        {"data": "title=x", "content_type": "text/plain"},
    ),
    "POST unreadable json": (
        "POST",
        "/api/{u}/tasks",
        {"data": "{", "content_type": "application/json"},
    ),
    "GET list bad query": ("GET", "/api/{u}/tasks?status=bogus&page_size=0&sort=x", {}),
    "GET nonexistent id": ("GET", "/api/{u}/tasks/987654321", {}),
    "GET non-numeric id": ("GET", "/api/{u}/tasks/abc", {}),
    "GET id zero": ("GET", "/api/{u}/tasks/0", {}),
    "GET id out of range": ("GET", "/api/{u}/tasks/99999999999999999999999", {}),
    "PUT non-numeric id invalid body": ("PUT", "/api/{u}/tasks/abc", {"json": {"nope": 1}}),
    "PUT huge body": (
        "PUT",
        "/api/{u}/tasks/1",
        {"data": HUGE_JSON, "content_type": "application/json"},
    ),
    "DELETE nonexistent id": ("DELETE", "/api/{u}/tasks/987654321", {}),
    "PATCH non-json body": (
        "PATCH",
        "/api/{u}/tasks/abc/complete",
        {"data": "yes", "content_type": "text/plain"},
    ),
    "GET another user's path": ("GET", "/api/" + BOB + "/tasks", {}),
}

UNAUTH_HEADERS = {
    "no token": (lambda: {}, False),
    "garbage token": (lambda: {"Authorization": "Bearer abc"}, True),
    "expired token": (
        lambda: bearer(jws(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))),
        True,
    ),
}


@pytest.mark.parametrize("who", list(UNAUTH_HEADERS), ids=list(UNAUTH_HEADERS))
@pytest.mark.parametrize("case", list(UNAUTH_REQUESTS), ids=list(UNAUTH_REQUESTS))
def test_401_comes_before_body_and_id_checks(client: Any, case: str, who: str) -> None:
    method, path, kwargs = UNAUTH_REQUESTS[case]
    make_headers, invalid = UNAUTH_HEADERS[who]
    resp = client.open(path.format(u=ALICE), method=method, headers=make_headers(), **kwargs)
    assert_401(resp, invalid=invalid)


def test_unauthenticated_request_on_existing_task_reveals_nothing(
    client: Any, make_task: Callable[..., dict[str, Any]]
) -> None:
    task = make_task(ALICE, title="secret plans")
    existing = client.get(f"/api/{ALICE}/tasks/{task['id']}")
    missing = client.get(f"/api/{ALICE}/tasks/{task['id'] + 1000}")
    assert_401(existing, invalid=False)
    assert_401(missing, invalid=False)
    assert existing.get_json() == missing.get_json()
    assert "secret plans" not in existing.get_data(as_text=True)


# ---------------------------------------------------------------- 403: someone else's path


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_other_users_path_is_403_and_changes_nothing(
    client: Any,
    make_task: Callable[..., dict[str, Any]],
    auth_headers: Callable[..., dict[str, str]],
    route: Route,
) -> None:
    bobs = make_task(BOB, title="Bob's task")
    resp = call(client, route, auth_headers(ALICE), user_id=BOB, task_id=bobs["id"])
    assert_403(resp)
    # Bob's data is untouched and Alice got nothing created under Bob.
    listed = client.get(f"/api/{BOB}/tasks", headers=auth_headers(BOB))
    assert listed.status_code == 200
    assert [(t["id"], t["title"], t["completed"]) for t in listed.get_json()] == [
        (bobs["id"], "Bob's task", False)
    ]


FORBIDDEN_REQUESTS = {
    "POST invalid body": ("POST", "/api/{u}/tasks", {"json": {"title": 5, "user_id": ALICE}}),
    "POST huge body": (
        "POST",
        "/api/{u}/tasks",
        {"data": HUGE_JSON, "content_type": "application/json"},
    ),
    "POST non-json body": ("POST", "/api/{u}/tasks", {"data": "x", "content_type": "text/plain"}),
    "POST unreadable json": (
        "POST",
        "/api/{u}/tasks",
        {"data": "{", "content_type": "application/json"},
    ),
    "GET list bad query": ("GET", "/api/{u}/tasks?status=bogus&page=0", {}),
    "GET non-numeric id": ("GET", "/api/{u}/tasks/abc", {}),
    "GET nonexistent id": ("GET", "/api/{u}/tasks/987654321", {}),
    "GET id out of range": ("GET", "/api/{u}/tasks/99999999999999999999999", {}),
    "PUT non-numeric id invalid body": ("PUT", "/api/{u}/tasks/abc", {"json": {}}),
    "PUT non-json body": ("PUT", "/api/{u}/tasks/1", {"data": "x", "content_type": "text/plain"}),
    "DELETE non-numeric id": ("DELETE", "/api/{u}/tasks/-1", {}),
    "PATCH invalid body": ("PATCH", "/api/{u}/tasks/abc/complete", {"json": {"completed": "yes"}}),
    "PATCH huge body": (
        "PATCH",
        "/api/{u}/tasks/1/complete",
        {"data": HUGE_JSON, "content_type": "application/json"},
    ),
}


@pytest.mark.parametrize("case", list(FORBIDDEN_REQUESTS), ids=list(FORBIDDEN_REQUESTS))
def test_403_comes_before_body_and_id_checks(
    client: Any, auth_headers: Callable[..., dict[str, str]], case: str
) -> None:
    method, path, kwargs = FORBIDDEN_REQUESTS[case]
    resp = client.open(path.format(u=BOB), method=method, headers=auth_headers(ALICE), **kwargs)
    assert_403(resp)


def test_403_is_not_a_401_challenge(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    resp = client.get(f"/api/{BOB}/tasks", headers=auth_headers(ALICE))
    assert_403(resp)
    assert "invalid_token" not in resp.headers.get("WWW-Authenticate", "")


# --------------------------------------------------------------------------- configuration


ISSUER = "https://auth.example.com"
AUDIENCE = "https://app.example.com"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({}, 401, id="neither"),
        pytest.param({"iss": ISSUER}, 401, id="iss only"),
        pytest.param({"aud": AUDIENCE}, 401, id="aud only"),
        pytest.param({"iss": "https://evil.example.com", "aud": AUDIENCE}, 401, id="wrong iss"),
        pytest.param({"iss": ISSUER, "aud": "https://evil.example.com"}, 401, id="wrong aud"),
        pytest.param({"iss": ISSUER + "/", "aud": AUDIENCE}, 401, id="iss trailing slash"),
        pytest.param({"iss": ISSUER, "aud": AUDIENCE}, 200, id="right iss and aud"),
        pytest.param({"iss": ISSUER, "aud": [AUDIENCE, "x"]}, 200, id="aud list containing it"),
    ],
)
def test_configured_issuer_and_audience_are_enforced(
    extra_app: Callable[..., Flask], extra: dict[str, Any], expected: int
) -> None:
    checked = extra_app(JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    resp = checked.test_client().get(f"/api/{ALICE}/tasks", headers=bearer(jws(claims(**extra))))
    if expected == 401:
        assert_401(resp, invalid=True)
    else:
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json() == []


def test_issuer_only_configuration(extra_app: Callable[..., Flask]) -> None:
    checked = extra_app(JWT_ISSUER=ISSUER).test_client()
    url = f"/api/{ALICE}/tasks"
    assert checked.get(url, headers=bearer(jws(claims(iss=ISSUER)))).status_code == 200
    assert (
        checked.get(url, headers=bearer(jws(claims(iss=ISSUER, aud="anything")))).status_code == 200
    )
    assert_401(checked.get(url, headers=bearer(jws(claims()))), invalid=True)
    assert_401(checked.get(url, headers=bearer(jws(claims(iss="https://x.example")))), invalid=True)


def test_audience_only_configuration(extra_app: Callable[..., Flask]) -> None:
    checked = extra_app(JWT_AUDIENCE=AUDIENCE).test_client()
    url = f"/api/{ALICE}/tasks"
    assert checked.get(url, headers=bearer(jws(claims(aud=AUDIENCE)))).status_code == 200
    assert_401(checked.get(url, headers=bearer(jws(claims()))), invalid=True)
    assert_401(checked.get(url, headers=bearer(jws(claims(aud="https://x.example")))), invalid=True)


def test_iss_and_aud_accepted_when_not_configured(client: Any) -> None:
    token = jws(claims(iss="https://whoever.example", aud=["a", "b"]))
    resp = client.get(f"/api/{ALICE}/tasks", headers=bearer(token))
    assert resp.status_code == 200
    assert resp.get_json() == []


# 64 characters: the RFC 7518 minimum key size for HS512 (a shorter key only draws a warning).
HS512_SECRET = "hs512-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLM"
assert len(HS512_SECRET) == 64


def test_secret_algorithms_hs512_only(extra_app: Callable[..., Flask]) -> None:
    hs512 = extra_app(BETTER_AUTH_SECRET=HS512_SECRET, JWT_SECRET_ALGORITHMS=["HS512"])
    client = hs512.test_client()
    url = f"/api/{ALICE}/tasks"
    ok = client.get(url, headers=bearer(jws(claims(), key=HS512_SECRET, alg="HS512")))
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json() == []
    for alg in ("HS256", "HS384"):
        resp = client.get(url, headers=bearer(jws(claims(), key=HS512_SECRET, alg=alg)))
        assert_401(resp, invalid=True)
    # HS512 with the wrong key is still a bad signature.
    resp = client.get(url, headers=bearer(jws(claims(), key=OTHER_SECRET * 2, alg="HS512")))
    assert_401(resp, invalid=True)


def test_secret_algorithms_default_is_hs256_only(client: Any) -> None:
    url = f"/api/{ALICE}/tasks"
    assert client.get(url, headers=bearer(jws(claims()))).status_code == 200
    assert_401(client.get(url, headers=bearer(jws(claims(), alg="HS512"))), invalid=True)


def test_leeway_is_configurable(extra_app: Callable[..., Flask]) -> None:
    strict = extra_app(JWT_LEEWAY=0).test_client()
    url = f"/api/{ALICE}/tasks"
    now = int(time.time())
    late = jws(claims(iat=now - 3600, exp=now - 10))
    early = jws(claims(nbf=now + 10))
    assert_401(strict.get(url, headers=bearer(late)), invalid=True)
    assert_401(strict.get(url, headers=bearer(early)), invalid=True)
    generous = extra_app(JWT_LEEWAY=120).test_client()
    ninety_seconds_late = jws(claims(iat=now - 3600, exp=now - 90))
    assert generous.get(url, headers=bearer(ninety_seconds_late)).status_code == 200


# --------------------------------------------------------------------------- the users row


def test_email_and_name_claims_are_stored_on_first_task(app: Flask, client: Any) -> None:
    token = jws(claims(email="alice@example.com", name="Alice Liddell"))
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": "First"}, headers=bearer(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    user = stored_user(app, ALICE)
    assert user == {"id": ALICE, "email": "alice@example.com", "name": "Alice Liddell"}


def test_users_row_without_claims(app: Flask, client: Any) -> None:
    assert stored_user(app, BOB) is None
    resp = client.post(
        f"/api/{BOB}/tasks", json={"title": "First"}, headers=bearer(jws(claims(BOB)))
    )
    assert resp.status_code == 201
    user = stored_user(app, BOB)
    assert user is not None
    assert (user["email"], user["name"]) == (None, None)


@pytest.mark.parametrize(
    ("email", "name"),
    [("a\x00b@example.com", "Alice"), ("alice@example.com", "Al\ud800ice"), ("x" * 400, "n" * 400)],
    ids=["nul in email", "lone surrogate in name", "over-long claims"],
)
def test_unstorable_claims_never_cause_a_500(
    app: Flask, client: Any, email: str, name: str
) -> None:
    token = jws(claims(email=email, name=name))
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": "First"}, headers=bearer(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["user_id"] == ALICE
    user = stored_user(app, ALICE)
    assert user is not None
    assert user["email"] in (None, email) and "\x00" not in (user["email"] or "")
    assert user["name"] in (None, name) and "\ud800" not in (user["name"] or "")
    assert len(user["email"] or "") <= 320 and len(user["name"] or "") <= 255


def test_reading_does_not_create_a_user(app: Flask, client: Any) -> None:
    token = jws(claims(email="alice@example.com"))
    assert client.get(f"/api/{ALICE}/tasks", headers=bearer(token)).status_code == 200
    assert stored_user(app, ALICE) is None


def test_a_verified_token_is_not_trusted_past_its_exp(extra_app: Callable[..., Flask]) -> None:
    """Verified tokens are cached for speed, but never beyond exp (+ leeway)."""
    import time as _time

    import jwt as _jwt

    client = extra_app(JWT_LEEWAY=0).test_client()
    token = _jwt.encode({"sub": ALICE, "exp": int(_time.time()) + 2}, TEST_SECRET, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/{ALICE}/tasks", headers=headers).status_code == 200
    assert client.get(f"/api/{ALICE}/tasks", headers=headers).status_code == 200  # cached
    _time.sleep(max(0.0, int(_time.time()) + 2 - _time.time()) + 1.1)
    resp = client.get(f"/api/{ALICE}/tasks", headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["message"] == "The token has expired."
