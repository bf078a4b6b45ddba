"""Cost of the tasks data path, seen from outside.

- Every route runs a fixed, small number of SQL statements, whatever the page size
  (no statement per task): a read is one autocommit statement. A write takes the
  owner's row first (added the first time, its write counter bumped: the lock that puts
  a user's writes one after another): an update, a toggle and a delete are one statement
  with it on PostgreSQL (a WITH), a transaction that starts with it on SQLite; a create
  reads where the task goes, then writes it the same way.
- The trigger-kept counters behind ``X-Pagination.total`` follow every kind of write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import ALICE
from sqlalchemy import event

from app.models import db


def _autocommit(dbapi_connection) -> bool:  # noqa: ANN001
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return dbapi_connection.isolation_level is None  # None means autocommit
    return bool(dbapi_connection.autocommit)  # psycopg2


class Statements(list):
    """Verbs of the statements run: "VERB" in autocommit, "VERB in tx" in a transaction."""


@pytest.fixture
def statements(app) -> Iterator[Statements]:
    seen = Statements()
    with app.app_context():
        engine = db.engine

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        verb = statement.split(None, 1)[0].upper()
        in_tx = not _autocommit(conn.connection.dbapi_connection)
        seen.append(f"{verb} in tx" if in_tx else verb)

    event.listen(engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


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


# The write itself, by database: the owner's row and the write in one statement, or the
# owner's row and then the write in a transaction.
ONE_WRITE = {
    "postgresql": {verb: ["WITH"] for verb in ("UPDATE", "DELETE", "INSERT")},
    "sqlite": {verb: ["INSERT in tx", f"{verb} in tx"] for verb in ("UPDATE", "DELETE", "INSERT")},
}


def _dialect(app) -> str:  # noqa: ANN001
    with app.app_context():
        return db.engine.dialect.name


@pytest.mark.parametrize(
    ("method", "suffix", "body", "expected"),
    [
        ("get", "", None, ["SELECT"]),
        ("put", "", {"title": "new"}, ["UPDATE"]),
        # The tree's rule is the database's, inside the update (a trigger).
        ("patch", "/complete", None, ["UPDATE"]),
        # (The worker's batch of old remembered deletions came with an earlier delete.)
        ("delete", "", None, ["DELETE"]),
    ],
)
def test_item_routes_run_a_fixed_few_statements(
    app, client, auth_headers, make_task, statements, method, suffix, body, expected
):
    task = make_task(ALICE, "one")
    earlier = make_task(ALICE, "earlier")
    client.delete(f"/api/{ALICE}/tasks/{earlier['id']}", headers=auth_headers())
    statements.clear()
    resp = getattr(client, method)(
        f"/api/{ALICE}/tasks/{task['id']}{suffix}", headers=auth_headers(), json=body
    )
    assert resp.status_code in (200, 204)
    if method != "get":
        expected = ONE_WRITE[_dialect(app)][expected[0]] + expected[1:]
    assert statements == expected


def test_create_reads_where_the_task_goes_then_writes_it_with_the_user(
    app, client, auth_headers, statements
):
    created = client.post(f"/api/{ALICE}/tasks", json={"title": "a"}, headers=auth_headers())
    assert created.status_code == 201
    # No default list yet (the read), so the careful way: the owner's row (INSERT ... ON
    # CONFLICT), the default list (looked for, then made, last among the user's lists),
    # the last sibling's position, the task: atomically.
    assert statements == ["SELECT", "INSERT in tx", "SELECT in tx"] + [
        "SELECT in tx", "INSERT in tx", "SELECT in tx", "INSERT in tx"
    ]  # fmt: skip
    statements.clear()
    created = client.post(f"/api/{ALICE}/tasks", json={"title": "b"}, headers=auth_headers())
    assert created.status_code == 201
    # Where it goes (the default list, the last position, the user's counter), then the
    # task with the owner's row, written only if the counter is still there.
    assert statements == ["SELECT"] + ONE_WRITE[_dialect(app)]["INSERT"]


def test_create_adds_the_user_row_back_after_it_was_deleted(app, client, auth_headers):
    assert (
        client.post(f"/api/{ALICE}/tasks", json={"title": "a"}, headers=auth_headers()).status_code
        == 201
    )
    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM users")  # an operator removed the user (tasks cascade)
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": "b"}, headers=auth_headers())
    assert resp.status_code == 201
    listed = client.get(f"/api/{ALICE}/tasks", headers=auth_headers()).get_json()
    assert [t["title"] for t in listed] == ["b"]


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
        client.post(
            url, json={"title": f"t{i}", "completed": i == 0}, headers=auth_headers()
        ).get_json()["id"]
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


@pytest.mark.parametrize("sort", ["created", "updated", "title", "due_date", "priority"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_postgresql_reads_every_sort_in_index_order(app, database_url, sort, order):
    """A page is an index range scan in the requested order, never a sort of every task
    of the user (PostgreSQL's plan, with sorting made as expensive as it can be)."""
    from sqlalchemy.dialects import postgresql

    from app.models import utcnow
    from app.tasks import queries

    if not database_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's (this test runs in the PostgreSQL pass)")
    shape, params = queries.list_parameters(ALICE, {"sort": sort, "order": order}, utcnow())
    page = queries.page_statement(shape).params(**params, limit=20, offset=0)
    sql = str(page.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_sort = off")
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
        conn.exec_driver_sql("RESET ALL")
    assert "Sort" not in plan, plan
