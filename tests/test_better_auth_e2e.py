"""End to end with a real Better Auth server: its JWTs, verified through its JWKS.

Contract: docs/api.md, "Authentication" and "Routes".

Two separate Better Auth processes (tests/better_auth/server.mjs: the npm package
``better-auth`` with its ``jwt()`` plugin, EdDSA/Ed25519 keys, in-memory storage) run
on free loopback ports; each has its own key set. Users sign up the way a browser
frontend does (``POST /api/auth/sign-up/email``, session cookie) and fetch their JWT
from ``GET /api/auth/token``. The service is configured with nothing but
``BETTER_AUTH_URL`` of instance A (plus the suite's usual shared secret), so it must
find the JWKS, issuer and audience on its own.

Needs Node.js and npm; the first run installs tests/better_auth from its lock file
(``npm ci``), which needs the npm registry.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import jwt
import pytest
import requests
from conftest import make_app
from flask import Flask
from flask.testing import FlaskClient
from nodejs import node_env, npm_ci, require_node
from sqlalchemy import select
from support import ProcessOutput

from app.models import User, db

pytestmark = pytest.mark.slow

SERVER_DIR = Path(__file__).resolve().parent / "better_auth"
BETTER_AUTH_NODE = (20, 0)  # tests/better_auth/package.json engines
READY_TIMEOUT = 20  # seconds for a server to print its "ready" line
STOP_TIMEOUT = 5
HTTP_TIMEOUT = 10
PASSWORD = "correct-horse-battery-staple-42"
# The claims the service relies on in Better Auth's tokens (README.md, "Connecting a Better
# Auth frontend").
EXPECTED_CLAIMS = {"sub", "iss", "aud", "iat", "exp", "email", "name"}


# --------------------------------------------------------------------------- Node side


@dataclass
class AuthServer:
    """One running Better Auth process."""

    name: str
    process: subprocess.Popen[str]
    output: ProcessOutput  # everything it printed so far
    url: str = ""

    def describe(self) -> str:
        return f"Better Auth server {self.name} ({self.url or 'not ready'}) output:\n" + (
            self.output.tail(40)
        )


@dataclass
class AuthUser:
    server: AuthServer
    email: str
    name: str
    id: str  # the Better Auth user id, as sign-up returned it
    token: str  # the JWT from GET /api/auth/token
    http: requests.Session  # holds the session cookie

    @property
    def header(self) -> dict[str, Any]:
        return jwt.get_unverified_header(self.token)

    @property
    def claims(self) -> dict[str, Any]:
        return jwt.decode(self.token, options={"verify_signature": False})

    @property
    def sub(self) -> str:
        return self.claims["sub"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def prepare_better_auth(purpose: str) -> None:
    """Node.js (Better Auth's own minimum) and the server's locked packages, or skip."""
    require_node(purpose, minimum=BETTER_AUTH_NODE)
    npm_ci(SERVER_DIR)


def _start_server(name: str, **env: str) -> AuthServer:
    node = shutil.which("node")
    assert node is not None
    process = subprocess.Popen(
        [node, "server.mjs"],
        cwd=SERVER_DIR,
        env=node_env(
            PORT="0",  # the server takes a free port and reports it in its ready line
            BETTER_AUTH_SECRET=secrets.token_urlsafe(32),
            EXIT_WHEN_STDIN_CLOSES="1",  # dies with this process even if teardown never runs
            **env,
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, killed as a whole at teardown
    )
    server = AuthServer(name, process, ProcessOutput(process, f"better-auth-{name}-output"))
    try:
        line = server.output.wait_for(lambda line: line.startswith("ready "), READY_TIMEOUT)
    except TimeoutError:
        _stop_server(server)
        pytest.fail(f"not ready within {READY_TIMEOUT} s\n{server.describe()}")
    except EOFError:
        _stop_server(server)
        pytest.fail(f"exited with {process.returncode} before ready\n{server.describe()}")
    server.url = line.split()[1]
    return server


def _stop_server(server: AuthServer) -> None:
    process = server.process
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.killpg(process.pid, sig)  # the process and anything it started
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait(timeout=STOP_TIMEOUT)
    server.output.thread.join(timeout=STOP_TIMEOUT)  # it ends at EOF, now the process is gone
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def _sign_up(server: AuthServer, email: str, name: str) -> AuthUser:
    """What a browser frontend does: sign up (session cookie), then ask for the JWT."""
    http = requests.Session()
    http.trust_env = False  # loopback only: no proxy from the environment
    http.headers["Origin"] = server.url  # a browser sends it; Better Auth trusts its own origin
    resp = http.post(
        f"{server.url}/api/auth/sign-up/email",
        json={"email": email, "password": PASSWORD, "name": name},
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, f"sign-up: {resp.status_code} {resp.text}\n{server.describe()}"
    user = resp.json()["user"]
    assert http.cookies, "sign-up set no session cookie"
    resp = http.get(f"{server.url}/api/auth/token", timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, f"token: {resp.status_code} {resp.text}\n{server.describe()}"
    return AuthUser(server, email, name, user["id"], resp.json()["token"], http)


@pytest.fixture(scope="module")
def auth_servers() -> Iterator[tuple[AuthServer, AuthServer]]:
    """Two independent Better Auth instances (A and B), each with its own signing keys."""
    prepare_better_auth("the Better Auth end-to-end test")
    started: list[AuthServer] = []
    try:
        started.append(_start_server("A"))
        started.append(_start_server("B"))
        yield started[0], started[1]
    finally:
        for server in started:
            _stop_server(server)


@pytest.fixture(scope="module")
def users(auth_servers: tuple[AuthServer, AuthServer]) -> Iterator[tuple[AuthUser, ...]]:
    """Two users on instance A, one on instance B."""
    a, b = auth_servers
    signed_up = (
        _sign_up(a, "ada@example.com", "Ada Lovelace"),
        _sign_up(a, "grace@example.com", "Grace Hopper"),
        _sign_up(b, "alan@example.com", "Alan Turing"),
    )
    yield signed_up
    for user in signed_up:
        user.http.close()


# --------------------------------------------------------------------------- service side


@pytest.fixture(scope="module")
def jwks_app(
    app: Flask, database_url: str, auth_servers: tuple[AuthServer, AuthServer]
) -> Iterator[Flask]:
    """The service trusting instance A: only BETTER_AUTH_URL (schema from the ``app`` fixture)."""
    service = make_app(database_url, BETTER_AUTH_URL=auth_servers[0].url)
    yield service
    with service.app_context():
        db.engine.dispose()


@pytest.fixture
def api(jwks_app: Flask) -> FlaskClient:
    return jwks_app.test_client()


def tasks_url(user: AuthUser | str, task_id: int | None = None, suffix: str = "") -> str:
    user_id = user if isinstance(user, str) else user.sub
    url = f"/api/{user_id}/tasks"
    if task_id is not None:
        url += f"/{task_id}"
    return url + suffix


def diagnose(user: AuthUser, resp: Any) -> str:
    """Everything needed to tell why the service refused a real token."""
    try:
        document = user.http.get(f"{user.server.url}/api/auth/jwks", timeout=HTTP_TIMEOUT).text
    except requests.RequestException as exc:
        document = f"(fetch failed: {exc})"
    return (
        f"{resp.status_code} {resp.get_data(as_text=True)}"
        f" WWW-Authenticate: {resp.headers.get('WWW-Authenticate')}\n"
        f"token header: {user.header}\nclaims: {user.claims}\n"
        f"JWKS of {user.server.url}: {document}"
    )


def expect(resp: Any, status: int, user: AuthUser) -> Any:
    assert resp.status_code == status, diagnose(user, resp)
    return resp


# --------------------------------------------------------------------------- the tokens themselves


def test_real_tokens_look_as_the_contract_says(users: tuple[AuthUser, ...]) -> None:
    for user in users:
        header, claims = user.header, user.claims
        assert header["alg"] == "EdDSA"
        assert "typ" not in header
        assert isinstance(header.get("kid"), str) and header["kid"]
        assert EXPECTED_CLAIMS <= claims.keys(), claims
        assert claims["sub"] == user.id
        assert claims["iss"] == claims["aud"] == user.server.url  # origin of the base URL
        assert (claims["email"], claims["name"]) == (user.email, user.name)
        assert claims["exp"] - claims["iat"] == 15 * 60
        jwks = user.http.get(f"{user.server.url}/api/auth/jwks", timeout=HTTP_TIMEOUT).json()
        kids = {key["kid"]: key for key in jwks["keys"]}
        key = kids[header["kid"]]
        assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
        # The frontend's other way to the same token: the set-auth-jwt header of get-session.
        resp = user.http.get(f"{user.server.url}/api/auth/get-session", timeout=HTTP_TIMEOUT)
        also = jwt.decode(resp.headers["set-auth-jwt"], options={"verify_signature": False})
        assert also["sub"] == user.id

    a1, a2, b1 = users
    assert a1.header["kid"] == a2.header["kid"]  # one instance, one key
    assert a1.header["kid"] != b1.header["kid"]  # two instances, two key sets
    assert len({a1.sub, a2.sub, b1.sub}) == 3


# --------------------------------------------------------------------------- every route


@pytest.mark.parametrize("owner", [0, 1], ids=["first-user", "second-user"])
def test_every_route_succeeds_for_its_owner(
    api: FlaskClient, users: tuple[AuthUser, ...], owner: int
) -> None:
    user = users[owner]
    body = {"title": "Buy milk", "description": "Two litres"}
    resp = expect(api.post(tasks_url(user), headers=user.auth, json=body), 201, user)
    task = resp.get_json()
    assert task["user_id"] == user.sub
    assert (task["title"], task["description"]) == ("Buy milk", "Two litres")
    assert task["completed"] is False
    location = resp.headers["Location"]
    assert urlsplit(urljoin("http://localhost/", location)).path == tasks_url(user, task["id"])

    resp = expect(api.get(tasks_url(user), headers=user.auth), 200, user)
    assert [t["id"] for t in resp.get_json()] == [task["id"]]
    pagination = json.loads(resp.headers["X-Pagination"])
    assert pagination["total"] == 1 and pagination["page"] == 1

    resp = expect(api.get(location, headers=user.auth), 200, user)
    assert resp.get_json() == task

    resp = api.put(tasks_url(user, task["id"]), headers=user.auth, json={"title": "Buy oat milk"})
    updated = expect(resp, 200, user).get_json()
    assert (updated["title"], updated["description"]) == ("Buy oat milk", "Two litres")

    resp = api.patch(tasks_url(user, task["id"], "/complete"), headers=user.auth)
    expect(resp, 200, user)
    assert resp.get_json()["completed"] is True

    resp = expect(api.delete(tasks_url(user, task["id"]), headers=user.auth), 204, user)
    assert resp.get_data() == b""

    expect(api.get(tasks_url(user, task["id"]), headers=user.auth), 404, user)


def _every_route(api: FlaskClient, user_id: str, task_id: int) -> list[tuple[str, Any]]:
    """(description, callable(headers) -> response) for each of the six routes."""
    body = {"title": "Not yours"}
    return [
        ("list", lambda h: api.get(tasks_url(user_id), headers=h)),
        ("create", lambda h: api.post(tasks_url(user_id), headers=h, json=body)),
        ("get", lambda h: api.get(tasks_url(user_id, task_id), headers=h)),
        ("put", lambda h: api.put(tasks_url(user_id, task_id), headers=h, json=body)),
        ("toggle", lambda h: api.patch(tasks_url(user_id, task_id, "/complete"), headers=h)),
        ("delete", lambda h: api.delete(tasks_url(user_id, task_id), headers=h)),
    ]


def _create(api: FlaskClient, user: AuthUser, title: str) -> dict[str, Any]:
    resp = api.post(tasks_url(user), headers=user.auth, json={"title": title})
    return expect(resp, 201, user).get_json()  # type: ignore[no-any-return]


def test_another_users_path_is_403(api: FlaskClient, users: tuple[AuthUser, ...]) -> None:
    first, second, _ = users
    theirs = _create(api, second, "Second user's task")
    for route, call in _every_route(api, second.sub, theirs["id"]):
        resp = call(first.auth)
        assert resp.status_code == 403, f"{route}: {diagnose(first, resp)}"
        assert resp.get_json()["code"] == 403
    resp = expect(api.get(tasks_url(second), headers=second.auth), 200, second)
    assert resp.get_json() == [theirs]  # nothing was created, changed or deleted


def test_another_users_task_id_on_your_own_path_is_404(
    api: FlaskClient, users: tuple[AuthUser, ...]
) -> None:
    first, second, _ = users
    theirs = _create(api, second, "Second user's task")
    for route, call in _every_route(api, first.sub, theirs["id"])[2:]:  # the routes with a task id
        resp = call(first.auth)
        assert resp.status_code == 404, f"{route}: {diagnose(first, resp)}"
        assert resp.get_json()["code"] == 404
    resp = expect(api.get(tasks_url(second, theirs["id"]), headers=second.auth), 200, second)
    assert resp.get_json() == theirs


def test_token_from_another_better_auth_instance_is_401(
    api: FlaskClient, users: tuple[AuthUser, ...]
) -> None:
    first, _, stranger = users  # stranger: instance B, whose keys the service does not trust
    mine = _create(api, first, "First user's task")
    for route, call in _every_route(api, stranger.sub, mine["id"]):
        resp = call(stranger.auth)
        assert resp.status_code == 401, f"{route}: {diagnose(stranger, resp)}"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert resp.get_json()["code"] == 401
    # Instance A's tokens still work after the unknown kid made the service look again.
    expect(api.get(tasks_url(first, mine["id"]), headers=first.auth), 200, first)


def test_users_row_has_email_and_name_from_the_token(
    api: FlaskClient, jwks_app: Flask, users: tuple[AuthUser, ...]
) -> None:
    first = users[0]
    _create(api, first, "First task creates the owner")
    with jwks_app.app_context():
        row = db.session.execute(select(User).where(User.id == first.sub)).scalar_one()
        stored = (row.email, row.name)
        db.session.remove()
    assert stored == (first.claims["email"], first.claims["name"])
    assert stored == ("ada@example.com", "Ada Lovelace")
