"""Cost and faithfulness of the tasks data path.

- Every route runs a fixed, small number of SQL statements, whatever the page size
  (no statement per task), and no transaction round trips on reads.
- The hand-written serializer returns exactly what TaskSchema documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import ALICE, TEST_SECRET
from sqlalchemy import event
from werkzeug.exceptions import UnprocessableEntity

from app.api import ArgumentsParser
from app.auth import create_token
from app.models import Task, db
from app.tasks import queries
from app.tasks.routes import pagination_headers
from app.tasks.schemas import TaskQueryArgsSchema, TaskSchema


def _autocommit(dbapi_connection) -> bool:  # noqa: ANN001
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return dbapi_connection.isolation_level is None  # None means autocommit
    return bool(dbapi_connection.autocommit)  # psycopg2


class Statements(list):
    """Verbs of the statements run, as "VERB" in autocommit (no BEGIN/COMMIT round trips)
    or "VERB in tx". A prepared statement's EXECUTE counts as the verb it runs; the
    one-time PREPAREs are listed apart, in ``prepared``, with ``executed`` names."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []
        self.executed: list[str] = []

    def clear(self) -> None:
        super().clear()
        self.prepared.clear()
        self.executed.clear()


PREPARED_VERBS = {
    prepared.name: prepared.prepare_sql.split(" AS ", 1)[1].split()[0]
    for prepared in (
        *queries.PAGE_STATEMENTS.values(),
        *queries.TOTAL_STATEMENTS.values(),
        *queries.UPDATE_STATEMENTS.values(),
        queries.GET_STATEMENT,
        queries.DELETE_STATEMENT,
        queries.FLIP_STATEMENT,
        queries.SET_STATEMENT,
        queries.INSERT_STATEMENT,
    )
}


@pytest.fixture
def statements(app) -> Iterator[Statements]:
    """On SQLite, SQLAlchemy's cursor events see every statement. On PostgreSQL the
    prepared statements go straight to the driver's cursor, so every cursor the
    connections make records what it sends (SQLAlchemy's own cursors included)."""
    seen = Statements()
    with app.app_context():
        engine = db.engine

    def record(statement: str, dbapi_connection) -> None:  # noqa: ANN001
        verb, *rest = statement.split(None, 2)
        verb = verb.upper()
        if verb == "PREPARE":
            seen.prepared.append(rest[0])
            return
        if verb == "EXECUTE":
            name = rest[0].split("(")[0]
            seen.executed.append(name)
            verb = PREPARED_VERBS[name]
        seen.append(verb if _autocommit(dbapi_connection) else f"{verb} in tx")

    if engine.dialect.name != "postgresql":

        def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            record(statement, conn.connection.dbapi_connection)

        event.listen(engine, "before_cursor_execute", on_execute)
        yield seen
        event.remove(engine, "before_cursor_execute", on_execute)
        return

    import psycopg2.extensions

    class RecordingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):  # noqa: ANN001, ANN202
            record(query if isinstance(query, str) else query.decode(), self.connection)
            return super().execute(query, vars)

    def use_recording_cursors(dbapi_connection, record_) -> None:  # noqa: ANN001
        dbapi_connection.cursor_factory = RecordingCursor

    engine.dispose()  # connections made from here on record
    event.listen(engine, "connect", use_recording_cursors)
    yield seen
    event.remove(engine, "connect", use_recording_cursors)
    engine.dispose()


@pytest.mark.parametrize("page_size", [1, 20, 500])
def test_list_runs_one_statement_whatever_the_page_size(
    client, auth_headers, make_task, statements, page_size
):
    for i in range(30):
        make_task(ALICE, f"task {i}")
    statements.clear()
    resp = client.get(f"/api/{ALICE}/tasks?page_size={page_size}", headers=auth_headers())
    assert resp.status_code == 200 and len(resp.get_json()) == min(page_size, 30)
    assert statements == ["SELECT"]  # the page, with the total from the users row


def test_an_empty_page_adds_only_the_count(client, auth_headers, make_task, statements):
    make_task(ALICE, "only")
    statements.clear()
    resp = client.get(f"/api/{ALICE}/tasks?page=99", headers=auth_headers())
    assert resp.status_code == 200 and resp.get_json() == []
    assert statements == ["SELECT", "SELECT"]  # the (empty) page, then the total
    assert '"total": 1' in resp.headers["X-Pagination"]


def test_a_page_beyond_any_offset_asks_only_the_count(client, auth_headers, make_task, statements):
    make_task(ALICE, "only")
    statements.clear()
    resp = client.get(f"/api/{ALICE}/tasks?page={10**30}", headers=auth_headers())
    assert resp.status_code == 200 and resp.get_json() == []
    assert statements == ["SELECT"]


@pytest.mark.parametrize(
    ("method", "suffix", "body", "expected"),
    [
        ("get", "", None, ["SELECT"]),
        ("put", "", {"title": "new"}, ["UPDATE"]),
        ("patch", "/complete", None, ["UPDATE"]),
        ("delete", "", None, ["DELETE"]),
    ],
)
def test_item_routes_run_one_statement(
    client, auth_headers, make_task, statements, method, suffix, body, expected
):
    task = make_task(ALICE, "one")
    statements.clear()
    resp = getattr(client, method)(
        f"/api/{ALICE}/tasks/{task['id']}{suffix}", headers=auth_headers(), json=body
    )
    assert resp.status_code in (200, 204)
    assert statements == expected


def test_create_adds_the_user_once_then_runs_one_insert(client, auth_headers, statements):
    first = client.post(f"/api/{ALICE}/tasks", json={"title": "a"}, headers=auth_headers())
    assert first.status_code == 201
    assert statements == ["INSERT in tx", "INSERT in tx"]  # users row + task, atomically
    statements.clear()
    second = client.post(f"/api/{ALICE}/tasks", json={"title": "b"}, headers=auth_headers())
    assert second.status_code == 201
    assert statements == ["INSERT"]


def test_create_recovers_when_a_known_user_row_was_deleted(app, client, auth_headers):
    assert client.post(f"/api/{ALICE}/tasks", json={"title": "a"}, headers=auth_headers()).status_code == 201
    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM users")  # an operator removed the user (tasks cascade)
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": "b"}, headers=auth_headers())
    assert resp.status_code == 201
    listed = client.get(f"/api/{ALICE}/tasks", headers=auth_headers()).get_json()
    assert [t["title"] for t in listed] == ["b"]


def test_serializer_matches_the_schema(app, client, auth_headers):
    """Every route's task JSON equals TaskSchema's dump of the stored row (ORM, datetimes)."""
    headers = auth_headers()
    base = f"/api/{ALICE}/tasks"
    created = [
        client.post(base, json={"title": "Buy milk", "description": "Two litres"}, headers=headers),
        client.post(base, json={"title": "No notes", "completed": True}, headers=headers),
    ]
    assert [r.status_code for r in created] == [201, 201]
    first, second = (r.get_json() for r in created)
    updated = client.put(f"{base}/{first['id']}", json={"description": None}, headers=headers)
    toggled = client.patch(f"{base}/{second['id']}/complete", headers=headers)
    fetched = client.get(f"{base}/{first['id']}", headers=headers)
    listed = client.get(f"{base}?sort=title&order=asc", headers=headers)

    with app.app_context():
        stored = {task.id: TaskSchema().dump(task) for task in db.session.query(Task)}
    assert len(stored) == 2 and stored[first["id"]]["created_at"].endswith("Z")
    assert listed.get_json() == [stored[first["id"]], stored[second["id"]]]
    assert fetched.get_json() == updated.get_json() == stored[first["id"]]
    assert toggled.get_json() == stored[second["id"]]
    assert list(fetched.get_json()) == list(TaskSchema().fields)  # documented field order
    assert stored[first["id"]]["description"] is None
    assert (stored[second["id"]]["completed"], toggled.get_json()["completed"]) == (False, False)
    # The creates' own responses: the same, before the later changes.
    assert first == {**stored[first["id"]], "description": "Two litres", "updated_at": first["updated_at"]}
    assert second["created_at"] == stored[second["id"]]["created_at"]


def test_counters_follow_every_kind_of_write(app, client, auth_headers):
    """The trigger-kept counters behind X-Pagination's total stay exact."""

    def totals() -> tuple[int, int, int]:
        out = []
        for status in ("all", "completed", "pending"):
            resp = client.get(f"/api/{ALICE}/tasks?status={status}", headers=auth_headers())
            out.append(json.loads(resp.headers["X-Pagination"])["total"])
            assert out[-1] == len(resp.get_json())
        return tuple(out)

    url = f"/api/{ALICE}/tasks"
    ids = [
        client.post(url, json={"title": f"t{i}", "completed": i == 0}, headers=auth_headers()).get_json()["id"]
        for i in range(4)
    ]
    assert totals() == (4, 1, 3)
    client.patch(f"{url}/{ids[1]}/complete", headers=auth_headers())
    assert totals() == (4, 2, 2)
    client.patch(f"{url}/{ids[1]}/complete", json={"completed": True}, headers=auth_headers())
    assert totals() == (4, 2, 2)  # no change, no count change
    client.put(f"{url}/{ids[2]}", json={"completed": True}, headers=auth_headers())
    assert totals() == (4, 3, 1)
    client.put(f"{url}/{ids[2]}", json={"title": "renamed"}, headers=auth_headers())
    assert totals() == (4, 3, 1)
    client.delete(f"{url}/{ids[0]}", headers=auth_headers())
    assert totals() == (3, 2, 1)
    with app.app_context(), db.engine.begin() as conn:  # writes outside the API count too
        conn.exec_driver_sql("DELETE FROM tasks")
    assert totals() == (0, 0, 0)


def test_query_string_cache_gives_each_request_its_own_correct_arguments(app):
    """Parsed query strings are remembered: same answers as parsing, failures never kept."""
    parser = ArgumentsParser()
    schema = TaskQueryArgsSchema()

    def parse(query: str):
        with app.test_request_context(f"/?{query}"):
            return parser.parse(schema, location="query")

    defaults = {"status": "all", "sort": "created", "order": "desc", "page": 1, "page_size": 100}
    first = parse("page_size=20")
    assert first == {**defaults, "page_size": 20}
    first["page"] = 99  # a view changing its arguments does not change the next request's
    assert parse("page_size=20") == {**defaults, "page_size": 20}
    assert parse("page=2&sort=title") == {**defaults, "page": 2, "sort": "title"}
    assert len(parser._query_cache) == 2
    for bad in ("page=0", "page=1&page=2", "status=done"):
        for _ in range(2):  # refused every time: errors are not remembered
            with pytest.raises(UnprocessableEntity):
                parse(bad)
    assert len(parser._query_cache) == 2
    # Bounded: the least recently used query strings are forgotten.
    parser.QUERY_CACHE_SIZE = 3
    parse("page_size=20")
    parse("page=3")
    parse("page=4")
    assert [key[-1] for key in parser._query_cache] == [b"page_size=20", b"page=3", b"page=4"]
    long_query = "page_size=20&" + "x=1&" * 100
    assert parse(long_query)["page_size"] == 20
    assert all(key[-1] != long_query.encode() for key in parser._query_cache)


def test_postgresql_prepares_each_statement_once_per_connection(app, client, auth_headers, make_task, statements):
    """On PostgreSQL, hot statements run as EXECUTE of a statement the connection prepared
    the first time it needed it; elsewhere they run as plain SQL."""
    task = make_task(ALICE, "one")
    headers = auth_headers()
    statements.clear()
    for _ in range(3):
        assert client.get(f"/api/{ALICE}/tasks", headers=headers).status_code == 200
        assert client.get(f"/api/{ALICE}/tasks/{task['id']}", headers=headers).status_code == 200
    assert statements == ["SELECT"] * 6
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert statements.executed == ["tasks_page_all_created_desc", "tasks_get"] * 3
        # The test client reuses one pooled connection: prepared at most once each.
        assert sorted(set(statements.prepared)) == sorted(statements.prepared)
        assert set(statements.prepared) <= {"tasks_page_all_created_desc", "tasks_get"}
        # A connection whose prepared statements are gone (a pooler's DISCARD ALL, an
        # operator's DEALLOCATE) prepares them again rather than failing the request.
        with app.app_context(), db.engine.connect() as conn:
            conn.exec_driver_sql("DEALLOCATE ALL")
        resp = client.get(f"/api/{ALICE}/tasks", headers=headers)
        assert resp.status_code == 200 and [t["title"] for t in resp.get_json()] == ["one"]
    else:
        assert statements.executed == statements.prepared == []


def test_prepared_statements_can_be_turned_off(database_url, make_task):
    """DB_PREPARED_STATEMENTS=false (PgBouncer in transaction mode): plain SQL only."""
    from conftest import make_app

    make_task(ALICE, "one")
    plain = make_app(database_url, DB_PREPARED_STATEMENTS=False)
    sent: list[str] = []
    with plain.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2].split()[0]))
    try:
        client = plain.test_client()
        headers = {"Authorization": f"Bearer {create_token(TEST_SECRET, ALICE)}"}
        for _ in range(2):
            resp = client.get(f"/api/{ALICE}/tasks", headers=headers)
            assert resp.status_code == 200 and [t["title"] for t in resp.get_json()] == ["one"]
        assert sent == ["SELECT", "SELECT"]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("total", "page", "page_size"), [(0, 1, 20), (45, 1, 20), (45, 2, 20), (45, 3, 20), (45, 7, 20), (1, 1, 500)]
)
def test_pagination_header_is_the_json_of_its_fields(app, total, page, page_size):
    """X-Pagination is written out by hand; it must equal json.dumps of the same fields."""
    total_pages = -(-total // page_size)
    last_page = max(total_pages, 1)
    expected = {
        "total": total,
        "total_pages": total_pages,
        "first_page": 1,
        "last_page": last_page,
        "page": page,
    }
    if page > 1:
        expected["previous_page"] = min(page - 1, last_page)
    if page < last_page:
        expected["next_page"] = page + 1
    with app.test_request_context(f"/api/{ALICE}/tasks?sort=title&page={page}&status=all"):
        headers = pagination_headers(total, page, page_size)
    assert headers["X-Pagination"] == json.dumps(expected)
    base = f"</api/{ALICE}/tasks?sort=title&status=all&page="
    assert headers["Link"].startswith(f'{base}1>; rel="first", {base}{last_page}>; rel="last"')


def test_json_provider_matches_the_standard_library(app):
    """orjson encodes the responses; anything it refuses falls back to the stdlib, and
    whatever Flask gives a meaning to (dates) is written as Flask writes it."""
    from datetime import datetime, timezone

    provider = app.json
    stdlib = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=provider.default)
    page = [{"id": 2**63 - 1, "title": "Café ☕", "description": None, "completed": True}] * 3
    samples = [
        page,
        {"code": 422, "errors": {"json": {0: ["Not a valid string."]}}},  # integer keys
        {"lone surrogate": "\ud800"},  # orjson refuses it: the stdlib writes \ud800
        {"big": 2**70},  # beyond 64 bits
        {"when": datetime(2026, 11, 26, 17, 38, tzinfo=timezone.utc)},  # Flask: an HTTP date
    ]
    for sample in samples:
        body = provider.dumps_bytes(sample)
        assert isinstance(body, bytes)
        assert json.loads(body) == json.loads(stdlib.encode(sample))
        assert provider.dumps(sample) == body.decode()
    assert provider.dumps_bytes(page).startswith(b'[{"id":9223372036854775807,"title":"Caf\xc3\xa9')
    assert json.loads(provider.dumps_bytes(samples[-1]))["when"] == "Thu, 26 Nov 2026 17:38:00 GMT"
    # Other options (indentation) still go to the standard library.
    assert provider.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'


def test_fetched_rows_answer_like_sqlalchemy_results():
    """The prepared path's result object keeps Result's contract for what queries.py uses."""
    from sqlalchemy.exc import MultipleResultsFound, NoResultFound

    one = queries.Fetched([(1, "a")], 1)
    assert (one.all(), one.one(), one.one_or_none(), one.scalar(), one.rowcount) == (
        [(1, "a")], (1, "a"), (1, "a"), 1, 1
    )
    none = queries.Fetched([], 0)
    assert (none.all(), none.one_or_none(), none.scalar()) == ([], None, None)
    with pytest.raises(NoResultFound):
        none.one()
    two = queries.Fetched([(1,), (2,)], 2)
    with pytest.raises(MultipleResultsFound):
        two.one_or_none()
    with pytest.raises(MultipleResultsFound):
        two.one()


def test_no_transaction_outlives_its_request_without_a_pool_reset(app, database_url):
    """The pool does not roll back connections it takes back (pool_reset_on_return=None
    on PostgreSQL): a real transaction, committed or failed, must end with its
    Connection, its isolation level restored, before the connection serves anyone else.
    (SQLite keeps the pool's default reset; the same must hold there.)"""
    from conftest import make_app
    from sqlalchemy import text

    from app.auth import Identity

    single = make_app(database_url, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0)
    with single.app_context():
        engine = db.engine
        postgres = engine.dialect.name == "postgresql"
        reset = engine.pool._reset_on_return.name  # noqa: SLF001 - the setting under test
        assert reset == ("reset_none" if postgres else "reset_rollback")

        def state() -> tuple[object, ...]:
            with queries.connection() as conn:
                raw = conn.connection.dbapi_connection
                if postgres:
                    level = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
                    return raw.info.transaction_status, raw.autocommit, level
                return raw.in_transaction, raw.isolation_level

        idle = (0, True, "read committed") if postgres else (False, None)  # 0: IDLE
        assert state() == idle
        with pytest.raises(RuntimeError):
            with queries.transaction() as conn:
                conn.execute(text("SELECT 1 FROM users"))
                raise RuntimeError("fails mid-transaction")
        assert state() == idle
        with queries.transaction() as conn:
            conn.execute(text("SELECT 1 FROM users"))
        assert state() == idle
        queries.known_users.clear()  # so that this create adds the user in a transaction
        row = queries.create_task(Identity(ALICE), {"title": "after"})
        assert row[2] == "after"
        assert state() == idle
        engine.dispose()
