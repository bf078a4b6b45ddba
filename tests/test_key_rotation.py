"""Key rotation without a bounce: a real Better Auth server rotates its signing key, and
every gunicorn worker accepts the new key's tokens at once (issue 12, part 5).

Better Auth (tests/better_auth/server.mjs) runs with ``JWKS_ROTATION_INTERVAL``: its key
expires after a few seconds and the next token is signed with a new one. The service,
under gunicorn with two workers, knows the old key (each worker fetched the JWKS for
the first tokens). Right after the rotation, 20 requests on fresh connections, so that
both workers serve some, must all succeed: a worker meeting the new ``kid`` fetches the
key set again (at most once a second, JWKS_MIN_REFRESH_SECONDS).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from conftest import migrated_database
from support import Gunicorn, child_pids
from test_better_auth_e2e import (
    HTTP_TIMEOUT,
    AuthServer,
    _sign_up,
    _start_server,
    _stop_server,
    prepare_better_auth,
)

pytestmark = pytest.mark.slow

ROTATION_SECONDS = 3
FRESH_REQUESTS = 20


@pytest.fixture(scope="module")
def rotating_auth() -> Iterator[AuthServer]:
    prepare_better_auth("the key-rotation test (a real Better Auth server)")
    server = _start_server("rotating", JWKS_ROTATION_INTERVAL=str(ROTATION_SECONDS))
    try:
        yield server
    finally:
        _stop_server(server)


@pytest.fixture
def service(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, rotating_auth: AuthServer
) -> Iterator[Gunicorn]:
    url = migrated_database(request, database_url, tmp_path)
    # JWKS only: no shared secret, so every token is checked against Better Auth's keys.
    with Gunicorn(
        url, tmp_path, BETTER_AUTH_URL=rotating_auth.url, BETTER_AUTH_SECRET="", LOG_LEVEL="INFO"
    ) as server:
        yield server


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def fresh_get(service: Gunicorn, path: str, token: str) -> requests.Response:
    # A new connection each time: the workers share the connections between them.
    return requests.get(
        f"{service.base}{path}",
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=HTTP_TIMEOUT,
    )


def burst(service: Gunicorn, path: str, token: str) -> list[int]:
    """FRESH_REQUESTS requests, four at a time: while one sync worker is busy, the other
    serves."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = pool.map(lambda _: fresh_get(service, path, token), range(FRESH_REQUESTS))
        return [r.status_code for r in responses]


def request_lines(service: Gunicorn) -> list[dict]:
    lines = [json.loads(x) for x in service.log.read_text().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "tasks.request" and "/tasks" in x["route"]]


def serving_workers(service: Gunicorn, skip: int = 0) -> set[int]:
    """The worker pids that logged a task request (after the first ``skip`` lines)."""
    return {line["process"] for line in request_lines(service)[skip:]}


def test_every_worker_accepts_a_rotated_key_at_once(
    rotating_auth: AuthServer, service: Gunicorn
) -> None:
    user = _sign_up(rotating_auth, "rota@example.com", "Rota Tion")
    path = f"/api/{user.sub}/tasks"
    workers = child_pids(service.pid)
    assert len(workers) == 2
    # Both workers learn the current key: requests until each has served some.
    assert burst(service, path, user.token) == [200] * FRESH_REQUESTS
    assert serving_workers(service) == workers, service.log_tail()
    old_kid = kid(user.token)

    time.sleep(ROTATION_SECONDS + 0.5)  # the key has expired: the next token gets a new one
    fresh = user.http.get(f"{rotating_auth.url}/api/auth/token", timeout=HTTP_TIMEOUT)
    assert fresh.status_code == 200, fresh.text
    token = fresh.json()["token"]
    assert kid(token) != old_kid, "Better Auth did not rotate its key"

    served_before = len(request_lines(service))
    statuses = burst(service, path, token)
    assert statuses == [200] * FRESH_REQUESTS, (statuses, service.log_tail())
    # Every worker met the new key.
    assert serving_workers(service, skip=served_before) == workers, service.log_tail()
    # The old key stays published during its grace period: its tokens keep working.
    assert fresh_get(service, path, user.token).status_code == 200
    user.http.close()
