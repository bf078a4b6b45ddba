"""Operations: health and readiness, request ids and the request log, metrics, rate limits.

Contract: issue 5 ("Production operations"). Every app here is built with ``make_app``; the
suite turns rate limits off by default, so the limit tests pass ``RATELIMIT_ENABLED=True``.

- Health and readiness: ``/healthz`` never touches the database; ``/readyz`` is 200 only when
  the database answers and its schema is at the migrations' head (503 before ``upgrade``).
- Logs: one JSON line per request from the ``tasks.request`` logger, and never a token, the
  secret, a request body or a query string in any log line (errors included).
- Metrics: the in-process registry is process-global, so the in-process test compares deltas;
  the multiprocess test starts real gunicorn with two workers.
- Rate limits: in memory, in Redis shared by two app instances (the machine runs Redis on
  127.0.0.1:6379; ids are unique per run so earlier counts never interfere), and with Redis
  unreachable (fail open, logged, fast).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ALICE, BOB, TEST_SECRET, make_app, migrated_database, require
from flask import Flask, request
from flask_migrate import downgrade, upgrade
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from support import (
    REDIS_HOST,
    REDIS_PORT,
    Gunicorn,
    assert_error,
    child_pids,
    redis_answers,
)

from app.auth import create_token
from app.logs import JSONFormatter
from app.models import db

# Port 1 refuses at once: "the database is unreachable" without waiting for a timeout.
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/nope"
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
REDIS_DOWN_URL = "redis://:{password}@127.0.0.1:1/0"  # connection refused

# Route templates as registered (app/tasks/routes.py, url_prefix "/api/<user_id>/tasks").
TASKS_ROUTE = "/api/<user_id>/tasks"
TASK_ROUTE = "/api/<user_id>/tasks/<task_id:task_id>"
COMPLETE_ROUTE = "/api/<user_id>/tasks/<task_id:task_id>/complete"

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
PLENTY = "100000 per minute"  # an address budget no test exhausts


# --------------------------------------------------------------------------- helpers


def bearer(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(TEST_SECRET, user_id)}"}


def unique_user() -> str:
    return f"ops-{uuid.uuid4().hex}"


def positive_int(value: str | None) -> int:
    assert value is not None and value.isdigit(), value
    assert int(value) > 0, value
    return int(value)


def assert_rate_limited(response: Any, limit: int) -> None:
    """429 in the error shape with Retry-After and the RateLimit-* headers of the refusal."""
    assert_error(response, 429)
    retry_after = positive_int(response.headers.get("Retry-After"))
    assert retry_after <= 61  # every limit under test is "N per minute"
    assert response.headers.get("RateLimit-Limit") == str(limit)
    assert response.headers.get("RateLimit-Remaining") == "0"
    reset = response.headers.get("RateLimit-Reset")
    assert reset is not None and reset.isdigit(), reset
    assert 0 <= int(reset) <= 61  # seconds until the reset (IETF draft), not an epoch time


def samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    ]


def sample_value(exposition: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (0 when absent)."""
    found = [v for n, lab, v in samples(exposition) if n == name and labels.items() <= lab.items()]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


def metric_names(exposition: str) -> set[str]:
    return {n for n, _, _ in samples(exposition)}


def api_app(app: Flask, **overrides: Any) -> Flask:
    """Another app instance on the session's migrated test database."""
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], **overrides)


@pytest.fixture
def redis_url() -> str:
    require(redis_answers(), f"Redis is not running on {REDIS_HOST}:{REDIS_PORT}")
    return REDIS_URL


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database with no schema: a new SQLite file, or a new PostgreSQL database."""
    if database_url.startswith("sqlite"):
        yield "sqlite:///" + str(tmp_path / "fresh.db")
        return
    name = f"t_ops_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------------- health and readiness


def test_healthz_answers_without_auth_or_database() -> None:
    app = make_app(UNREACHABLE_DB)
    started = time.perf_counter()
    response = app.test_client().get("/healthz")
    assert time.perf_counter() - started < 1
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_healthz_checks_out_no_database_connection(app: Flask, client: Any) -> None:
    checkouts: list[object] = []

    def count(*args: Any) -> None:
        checkouts.append(args)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", count)
    try:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert checkouts == []
        # The listener does see a request that uses the database.
        assert client.get("/readyz").status_code == 200
        assert len(checkouts) == 1
    finally:
        event.remove(engine, "checkout", count)


def test_readyz_is_200_on_the_migrated_database(client: Any) -> None:
    response = client.get("/readyz")  # no Authorization header
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["status"] == "ready"


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = make_app(UNREACHABLE_DB)
    started = time.perf_counter()
    response = app.test_client().get("/readyz")
    assert time.perf_counter() - started < 3
    assert_error(response, 503)
    positive_int(response.headers.get("Retry-After"))


def test_readyz_is_503_before_migrations_and_200_after(fresh_database_url: str) -> None:
    app = make_app(fresh_database_url)
    client = app.test_client()
    try:
        before = client.get("/readyz")
        assert_error(before, 503)
        positive_int(before.headers.get("Retry-After"))

        with app.app_context():
            upgrade()
            db.session.remove()
        after = client.get("/readyz")
        assert after.status_code == 200
        assert after.get_json()["status"] == "ready"

        # A schema behind the head (here: downgraded to nothing) is not ready either.
        with app.app_context():
            downgrade(revision="base")
            db.session.remove()
        assert_error(client.get("/readyz"), 503)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_health_readiness_and_metrics_are_exempt_from_rate_limits(app: Flask) -> None:
    limited = api_app(app, RATELIMIT_ENABLED=True, RATE_LIMIT_PER_ADDRESS="2 per minute")
    client = limited.test_client()
    for path in ("/healthz", "/readyz", "/metrics"):
        statuses = [client.get(path).status_code for _ in range(10)]
        assert statuses == [200] * 10, path
    # The 30 calls above were not counted: the address still has its whole budget of 2.
    statuses = [client.get(f"/api/{ALICE}/tasks").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


# --------------------------------------------------------------------------- request ids


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "req.1:2_3", "A" * 128],
)
def test_sane_request_id_is_echoed(client: Any, request_id: str) -> None:
    for path in (f"/api/{ALICE}/tasks", "/healthz"):
        response = client.get(path, headers={"X-Request-ID": request_id})
        assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["A" * 129, "has space", "<script>alert(1)</script>", "a;b", 'quote"d', "a,b"],
)
def test_insane_request_id_is_replaced(client: Any, request_id: str) -> None:
    response = client.get(f"/api/{ALICE}/tasks", headers={"X-Request-ID": request_id})
    echoed = response.headers["X-Request-ID"]
    assert echoed != request_id
    assert GENERATED_ID.fullmatch(echoed), echoed


def test_request_id_is_generated_when_absent(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    ids = [
        client.get(f"/api/{ALICE}/tasks", headers=auth_headers()).headers["X-Request-ID"],
        client.get(f"/api/{ALICE}/tasks").headers["X-Request-ID"],
        client.get("/healthz").headers["X-Request-ID"],
    ]
    for value in ids:
        assert GENERATED_ID.fullmatch(value), value
    assert len(set(ids)) == 3


# --------------------------------------------------------------------------- the request log


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tasks.request"]


def test_one_request_log_record_per_request_with_its_fields(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tasks.request")
    # (request id, method, route template, status, user id in the log)
    sent: list[tuple[str, str, str, int, str | None]] = []

    def call(method: str, path: str, route: str, rid: str, as_user: str | None, **kw: Any) -> Any:
        headers = {"X-Request-ID": rid, **(bearer(as_user) if as_user else {})}
        response = client.open(path, method=method, headers=headers, **kw)
        sent.append((rid, method, route, response.status_code, as_user))
        return response

    tasks = f"/api/{ALICE}/tasks"
    created = call("POST", tasks, TASKS_ROUTE, "rid-create", ALICE, json={"title": "Log me"})
    assert created.status_code == 201
    task = f"{tasks}/{created.get_json()['id']}"
    assert call("GET", task, TASK_ROUTE, "rid-get", ALICE).status_code == 200
    assert call("PATCH", f"{task}/complete", COMPLETE_ROUTE, "rid-toggle", ALICE).status_code == 200
    assert call("GET", task, TASK_ROUTE, "rid-anonymous", None).status_code == 401
    assert call("GET", task, TASK_ROUTE, "rid-other-user", BOB).status_code == 403
    assert call("DELETE", task, TASK_ROUTE, "rid-delete", ALICE).status_code == 204

    records = request_records(caplog)
    assert len(records) == len(sent)
    for rid, method, route, status, user in sent:
        mine = [r for r in records if r.request_id == rid]  # type: ignore[attr-defined]
        assert len(mine) == 1, rid
        record = mine[0]
        assert record.levelno == logging.INFO
        line = json.loads(JSONFormatter().format(record))
        fields = {key: line[key] for key in ("method", "route", "status", "duration_ms", "user_id")}
        assert fields["method"] == method
        assert fields["route"] == route
        assert fields["status"] == status
        assert fields["user_id"] == user
        assert isinstance(fields["duration_ms"], int | float)
        assert 0 <= fields["duration_ms"] < 10_000

        assert line["request_id"] == rid
        assert line["remote_addr"] == "127.0.0.1"  # the test client's address
        assert line["logger"] == "tasks.request" and line["level"] == "info"
        assert isinstance(line["time"], str) and line["time"]


def test_no_token_secret_body_or_query_in_any_log_line(
    app: Flask, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = f"marker-{uuid.uuid4().hex}"
    token = create_token(TEST_SECRET, ALICE)
    forged = create_token(TEST_SECRET + "-wrong", ALICE)
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    # Built here, so their log handler writes to this test's captured stderr.
    normal = make_app(url)
    client = normal.test_client()
    ids: list[str] = []

    def rid() -> dict[str, str]:
        ids.append(f"rid-{len(ids)}-{uuid.uuid4().hex[:8]}")
        return {"X-Request-ID": ids[-1]}

    auth = {"Authorization": f"Bearer {token}"}
    forged_auth = {"Authorization": f"Bearer {forged}"}
    tasks = f"/api/{ALICE}/tasks"
    body = {"title": marker, "description": marker}
    assert client.post(tasks, headers={**auth, **rid()}, json=body).status_code == 201
    body = {"title": "", "description": marker}
    assert client.post(tasks, headers={**auth, **rid()}, json=body).status_code == 422
    query = f"{tasks}?status=all&q={marker}"
    assert client.get(query, headers={**auth, **rid()}).status_code == 200
    assert client.get(tasks, headers={**forged_auth, **rid()}).status_code == 401
    response = client.post(tasks, headers=rid(), data=marker, content_type="text/plain")
    assert response.status_code == 401

    # A 500 from an unexpected exception: logged as an error, still without the body.
    failing = make_app(url, PROPAGATE_EXCEPTIONS=False)

    @failing.post("/boom")
    def boom() -> None:
        request.get_json()  # the body is read, and must still not be logged
        raise RuntimeError("deliberate failure for the log test")

    response = failing.test_client().post(
        "/boom", headers={**auth, **rid()}, json={"secret-field": marker}
    )
    error = assert_error(response, 500)
    assert "deliberate failure" not in error["message"]
    assert response.headers["X-Request-ID"] == ids[-1]

    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the app's log handler wrote nothing to stderr"
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    formatted = [JSONFormatter().format(r) for r in caplog.records]
    everything = "\n".join([stderr, caplog.text, *formatted])
    for forbidden in (marker, token, forged, TEST_SECRET):
        assert forbidden not in everything

    # One request line per request, each with its request id.
    request_lines = [p for p in parsed if p.get("logger") == "tasks.request"]
    assert sorted(p["request_id"] for p in request_lines) == sorted(ids)
    assert [p["status"] for p in request_lines if p["request_id"] == ids[-1]] == [500]
    assert [p["route"] for p in request_lines if p["request_id"] == ids[-1]] == ["/boom"]
    # The unexpected exception has its own error line, with the traceback and the request id.
    errors = [p for p in parsed if p["level"] == "error"]
    assert len(errors) == 1, errors
    assert "deliberate failure for the log test" in errors[0]["exception"]
    assert errors[0]["request_id"] == ids[-1]


def test_log_format_text_and_log_level(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text_app = make_app(database_url, LOG_FORMAT="text")
    headers = {"X-Request-ID": "rid-text"}
    response = text_app.test_client().get(f"/api/{ALICE}/tasks", headers=headers)
    assert response.status_code == 401
    lines = [line for line in capsys.readouterr().err.splitlines() if "tasks.request" in line]
    assert len(lines) == 1
    line = lines[0]
    assert not line.lstrip().startswith("{")
    assert f"tasks.request: GET {TASKS_ROUTE} 401 " in line, line

    quiet_app = make_app(database_url, LOG_LEVEL="WARNING")
    assert quiet_app.test_client().get(f"/api/{ALICE}/tasks").status_code == 401
    assert "tasks.request" not in capsys.readouterr().err


# --------------------------------------------------------------------------- metrics in process


def scrape_registry() -> str:
    return generate_latest(REGISTRY).decode()


def test_metrics_count_requests_by_route_and_status(
    client: Any, auth_headers: Callable[..., dict[str, str]]
) -> None:
    stray = f"/no-such-path-{uuid.uuid4().hex}"
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.mimetype == "text/plain"
    for _ in range(3):
        assert client.get(f"/api/{ALICE}/tasks", headers=auth_headers()).status_code == 200
    for _ in range(2):
        assert client.get(f"/api/{ALICE}/tasks").status_code == 401
    assert client.get(stray).status_code == 404
    invented = f"BREW{uuid.uuid4().hex[:8].upper()}"
    assert client.open(f"/api/{ALICE}/tasks", method=invented).status_code == 405
    for path in ("/healthz", "/readyz"):
        assert client.get(path).status_code == 200
    after = client.get("/metrics")
    assert after.status_code == 200
    old, new = before.get_data(as_text=True), after.get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return sample_value(new, name, **labels) - sample_value(old, name, **labels)

    ok = {"method": "GET", "route": TASKS_ROUTE, "status": "200"}
    assert delta("tasks_http_requests_total", **ok) == 3
    assert delta("tasks_http_requests_total", method="GET", route=TASKS_ROUTE, status="401") == 2
    assert delta("tasks_http_request_duration_seconds_count", **ok) == 3
    assert delta("tasks_http_request_duration_seconds_bucket", le="+Inf", **ok) == 3
    # Health, readiness and metrics requests are not counted.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert all(lab.get("route") != path for _, lab, _ in samples(new))
    # An unknown path or method is not a label value of its own (no unbounded series).
    assert stray not in new
    assert invented not in new
    assert (
        delta("tasks_http_requests_total", method="OTHER", route="<unmatched>", status="405") == 1
    )
    assert {"tasks_db_pool_checked_out", "tasks_db_pool_connections"} <= metric_names(new)


def test_metrics_content_type_is_the_exposition_format(client: Any) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST


def test_metrics_disabled_is_404_and_counts_nothing(app: Flask) -> None:
    disabled = api_app(app, METRICS_ENABLED=False)
    client = disabled.test_client()
    assert_error(client.get("/metrics"), 404)
    before = scrape_registry()
    assert client.get(f"/api/{ALICE}/tasks", headers=bearer(ALICE)).status_code == 200
    after = scrape_registry()
    labels = {"method": "GET", "route": TASKS_ROUTE, "status": "200"}
    assert sample_value(after, "tasks_http_requests_total", **labels) == sample_value(
        before, "tasks_http_requests_total", **labels
    )


# --------------------------------------------------------------------------- metrics across workers


@pytest.fixture
def gunicorn(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[Gunicorn]:
    """Real gunicorn, two workers, multiprocess metrics in a temp folder."""
    url = migrated_database(request, database_url, tmp_path)
    with Gunicorn(url, tmp_path) as server:
        yield server


@pytest.mark.slow
def test_metrics_are_summed_across_two_gunicorn_workers(gunicorn: Gunicorn) -> None:
    base, metrics_dir, process = gunicorn.base, gunicorn.metrics_dir, gunicorn.process
    headers = {**bearer(ALICE), "Connection": "close"}

    def served_by() -> set[int]:
        names = [f.name for f in metrics_dir.iterdir()]
        return {
            int(m.group(1)) for name in names if (m := re.fullmatch(r"counter_(\d+)\.db", name))
        }

    def get(_: int) -> int:
        return requests.get(f"{base}/api/{ALICE}/tasks", headers=headers, timeout=10).status_code

    # Requests eight at a time, so that while one sync worker is busy the other serves:
    # until both have counted some (bounded).
    n = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(served_by()) < 2 and n < 400:
            assert set(pool.map(get, range(40))) == {200}
            n += 40

    ok = {"method": "GET", "route": TASKS_ROUTE, "status": "200"}
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    exposition = response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    # Each process that counted a request has its own counter_<pid>.db file.
    pids = served_by()
    assert len(pids) == 2, sorted(metrics_dir.iterdir())
    assert process.pid not in pids  # the master serves nothing; both workers did
    if Path("/proc").is_dir():
        assert pids <= child_pids(process.pid)

    assert sample_value(exposition, "tasks_http_requests_total", **ok) == n
    assert sample_value(exposition, "tasks_http_request_duration_seconds_count", **ok) == n
    assert {"tasks_db_pool_checked_out", "tasks_db_pool_connections"} <= metric_names(exposition)
    assert sample_value(exposition, "tasks_db_pool_checked_out") == 0  # every request gave it back
    assert sample_value(exposition, "tasks_db_pool_connections") >= 1


# --------------------------------------------------------------------------- rate limits in memory


def test_per_user_limit_in_memory(app: Flask) -> None:
    limited = api_app(app, RATELIMIT_ENABLED=True, RATE_LIMIT_PER_USER="3 per minute")
    client = limited.test_client()
    for _ in range(3):
        assert client.get(f"/api/{ALICE}/tasks", headers=bearer(ALICE)).status_code == 200
    refused = client.get(f"/api/{ALICE}/tasks", headers=bearer(ALICE))
    assert_rate_limited(refused, 3)
    assert "X-Request-ID" in refused.headers
    # Writes are refused too, and another user has a budget of their own.
    write = client.post(f"/api/{ALICE}/tasks", headers=bearer(ALICE), json={"title": "x"})
    assert write.status_code == 429
    for _ in range(3):
        assert client.get(f"/api/{BOB}/tasks", headers=bearer(BOB)).status_code == 200
    assert_rate_limited(client.get(f"/api/{BOB}/tasks", headers=bearer(BOB)), 3)


def test_unauthenticated_requests_are_limited_per_address(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tasks.request")
    limited = api_app(app, RATELIMIT_ENABLED=True, RATE_LIMIT_PER_ADDRESS="3 per minute")
    client = limited.test_client()
    for _ in range(3):
        response = client.get(f"/api/{ALICE}/tasks")
        assert response.status_code == 401
        assert response.headers["RateLimit-Limit"] == "3"
    refused = client.get(f"/api/{ALICE}/tasks", headers={"X-Request-ID": "rid-refused"})
    assert_rate_limited(refused, 3)  # 429, not 401: the address limit comes before authentication
    assert refused.headers["X-Request-ID"] == "rid-refused"
    logged = [r for r in request_records(caplog) if r.request_id == "rid-refused"]  # type: ignore[attr-defined]
    assert len(logged) == 1  # the refusal has its request log line too
    record = logged[0]
    assert (record.route, record.status, record.user_id) == (TASKS_ROUTE, 429, None)  # type: ignore[attr-defined]
    # The address budget covers tokens too: a valid token does not get past it.
    assert client.get(f"/api/{ALICE}/tasks", headers=bearer(ALICE)).status_code == 429
    # Another address has its own budget.
    other = client.get(f"/api/{ALICE}/tasks", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert other.status_code == 401


def test_per_user_limit_is_shared_through_redis(app: Flask, redis_url: str) -> None:
    settings = {
        "RATELIMIT_ENABLED": True,
        "REDIS_URL": redis_url,
        "RATE_LIMIT_PER_USER": "3 per minute",
        "RATE_LIMIT_PER_ADDRESS": PLENTY,
    }
    a = api_app(app, **settings).test_client()
    b = api_app(app, **settings).test_client()
    user = unique_user()
    path = f"/api/{user}/tasks"
    assert a.get(path, headers=bearer(user)).status_code == 200
    assert a.get(path, headers=bearer(user)).status_code == 200
    assert b.get(path, headers=bearer(user)).status_code == 200
    assert_rate_limited(a.get(path, headers=bearer(user)), 3)
    assert_rate_limited(b.get(path, headers=bearer(user)), 3)
    # Another user is unaffected, on either instance.
    other = unique_user()
    assert b.get(f"/api/{other}/tasks", headers=bearer(other)).status_code == 200


def test_per_address_limit_is_shared_through_redis(app: Flask, redis_url: str) -> None:
    settings = {
        "RATELIMIT_ENABLED": True,
        "REDIS_URL": redis_url,
        "RATE_LIMIT_PER_ADDRESS": "3 per minute",
        "TRUSTED_PROXY_COUNT": 1,  # a random client address per run: no count from earlier runs
    }
    a = api_app(app, **settings).test_client()
    b = api_app(app, **settings).test_client()
    client_ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    address = {"X-Forwarded-For": client_ip}
    path = f"/api/{ALICE}/tasks"
    assert [a.get(path, headers=address).status_code for _ in range(2)] == [401, 401]
    assert b.get(path, headers=address).status_code == 401
    assert_rate_limited(a.get(path, headers=address), 3)
    assert_rate_limited(b.get(path, headers=address), 3)


def test_redis_down_fails_open_and_is_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    password = f"redis-password-{uuid.uuid4().hex}"
    down = api_app(
        app,
        RATELIMIT_ENABLED=True,
        REDIS_URL=REDIS_DOWN_URL.format(password=password),
        RATE_LIMIT_PER_USER="100 per minute",
        RATE_LIMIT_PER_ADDRESS="100 per minute",
    )
    client = down.test_client()
    user = unique_user()
    calls: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", f"/api/{user}/tasks", bearer(user), 200),
        ("POST", f"/api/{user}/tasks", bearer(user), 201),
        ("GET", f"/api/{user}/tasks", bearer(user), 200),
        ("GET", f"/api/{user}/tasks", {}, 401),
        ("GET", "/healthz", {}, 200),
        ("GET", f"/api/{user}/tasks", bearer(user), 200),
    ]
    for method, path, headers, expected in calls:
        started = time.perf_counter()
        kwargs = {"json": {"title": "while Redis is down"}} if method == "POST" else {}
        response = client.open(path, method=method, headers=headers, **kwargs)
        elapsed = time.perf_counter() - started
        assert response.status_code == expected, (method, path, response.get_json())
        assert elapsed < 2, (method, path, elapsed)
    about_storage = re.compile(r"unreachable|redis|storage", re.I)
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and about_storage.search(r.getMessage())
    ]
    assert warnings, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    logged = "\n".join([caplog.text, *(JSONFormatter().format(r) for r in caplog.records)])
    assert password not in logged  # the storage URL's credentials are never logged


# --------------------------------------------------------------------------- trusted proxies


def address_limited(app: Flask, proxies: int) -> Callable[[str], int]:
    """An unauthenticated list request with this X-Forwarded-For, through an app that allows
    an address 2 requests a minute and trusts ``proxies`` proxy hops: its status."""
    client = api_app(
        app,
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_PER_ADDRESS="2 per minute",
        TRUSTED_PROXY_COUNT=proxies,
    ).test_client()

    def get(forwarded_for: str) -> int:
        return client.get(
            f"/api/{ALICE}/tasks", headers={"X-Forwarded-For": forwarded_for}
        ).status_code

    return get


def test_trusted_proxy_keys_the_address_limit_on_the_forwarded_client(app: Flask) -> None:
    get = address_limited(app, proxies=1)
    assert [get("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert [get("203.0.113.8") for _ in range(2)] == [401, 401]  # its own budget
    # With one proxy, only the address it appended counts: a client-supplied entry
    # further left cannot buy a fresh budget.
    assert get("198.51.100.99, 203.0.113.7") == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app: Flask) -> None:
    get = address_limited(app, proxies=0)
    statuses = [get(address) for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3")]
    assert statuses == [401, 401, 429]  # all three are the test client's 127.0.0.1
