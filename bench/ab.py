"""A/B of each optimization the service keeps (bench/README.md, "What we keep and why").

    .venv/bin/python bench/ab.py                      # every optimization
    .venv/bin/python bench/ab.py --only token-cache,idle-ping --requests 1000 --rounds 7

For each optimization, a route is timed with the code as it is (A) and with that one
optimization replaced by the plain way (B): in this process, through Flask's test client,
on a throw-away PostgreSQL database, sequential requests, so a request's time includes
its database work and round trips. A and B alternate for ``--rounds`` rounds of
``--requests`` requests; the medians are compared. B is made by swapping module
attributes here, in the benchmark, never in the app.

The saving is (B - A) / B: the share of the route's time the optimization saves.
Rule (issue 11): an optimization stays only if this is over 5 %.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import harness
from harness import Database, log

USER = "ab-user"
SCALE_USER = "ab-scale-user"
TASKS = 20  # one full page of the list, as bench/run.py's reader has
SCALE_TASKS = 100_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/ab.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round (1000)")
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds; medians (5)")
    parser.add_argument("--only", default="", help="comma-separated optimization names")
    parser.add_argument(
        "--database-url", default=harness.DEFAULT_SERVER_URL, help="PostgreSQL server URL"
    )
    parser.add_argument("--json", default="ab.json", help="file name under bench/results/")
    return parser.parse_args(argv)


class Bench:
    def __init__(self, database: Database) -> None:
        from flask_migrate import upgrade

        from app import create_app
        from app.auth import create_token
        from app.models import db

        self.secret = harness.new_secret()
        self.config = {
            "SQLALCHEMY_DATABASE_URI": database.url,
            "BETTER_AUTH_SECRET": self.secret,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMIT_PER_USER": "1000000 per second",
            "RATE_LIMIT_PER_ADDRESS": "1000000 per second",
            "CORS_ORIGINS": [harness.BENCH_ORIGIN],
            "LOG_LEVEL": "INFO",
        }
        self.app = create_app(self.config)
        self.devnull = open(os.devnull, "w")  # noqa: SIM115
        self.quiet_logs()
        with self.app.app_context():
            upgrade()
            db.session.remove()
        self.client = self.app.test_client()
        self.headers = {
            "Authorization": f"Bearer {create_token(self.secret, USER, ttl=86400)}",
            "Origin": harness.BENCH_ORIGIN,
        }
        self.scale_headers = {
            "Authorization": f"Bearer {create_token(self.secret, SCALE_USER, ttl=86400)}",
            "Origin": harness.BENCH_ORIGIN,
        }
        ids = [self.post(f"task {i}").get_json()["id"] for i in range(TASKS)]
        self.task_id = ids[0]
        self.post("scale seed", headers=self.scale_headers)  # the users row
        database.execute(
            "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at) "
            "SELECT %s, 'task ' || i, CASE WHEN i %% 4 = 0 THEN NULL ELSE 'notes' END, i %% 3 = 0, "
            "now() - i * interval '1 minute', now() - i * interval '30 seconds' "
            "FROM generate_series(1, %s) AS i",
            (SCALE_USER, SCALE_TASKS),
        )
        database.execute("VACUUM ANALYZE tasks")
        database.execute("VACUUM ANALYZE users")

    def quiet_logs(self) -> None:
        """The request log's work stays in the measurement; its lines go nowhere."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.devnull)

    def post(self, title: str, headers: dict[str, str] | None = None) -> Any:
        response = self.client.post(
            f"/api/{USER if headers is None else SCALE_USER}/tasks",
            json={"title": title},
            headers=headers or self.headers,
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response

    def route(self, name: str) -> Callable[[], Any]:
        c, h = self.client, self.headers
        base = f"/api/{USER}/tasks"
        calls: dict[str, Callable[[], Any]] = {
            "list": lambda: c.get(base, headers=h),
            "get": lambda: c.get(f"{base}/{self.task_id}", headers=h),
            "toggle": lambda: c.patch(f"{base}/{self.task_id}/complete", headers=h),
            "create": lambda: c.post(base, json={"title": "created"}, headers=h),
            "list-100k": lambda: c.get(
                f"/api/{SCALE_USER}/tasks?page_size=20", headers=self.scale_headers
            ),
        }
        return calls[name]

    def time_route(self, route: str, n: int) -> float:
        """Microseconds per request, wall clock, ``n`` sequential requests."""
        call = self.route(route)
        for _ in range(20):
            assert call().status_code < 300
        started = time.perf_counter()
        for _ in range(n):
            response = call()
        elapsed = time.perf_counter() - started
        assert response.status_code < 300, response.get_data(as_text=True)
        return elapsed / n * 1e6


# --------------------------------------------------------------------------- the B sides


@contextlib.contextmanager
def swapped(obj: Any, **attributes: Any) -> Iterator[None]:
    old = {name: getattr(obj, name) for name in attributes}
    for name, value in attributes.items():
        setattr(obj, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(obj, name, value)


def no_token_cache(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Every request verifies its token's signature and claims again."""
    from app.auth import EXTENSION_KEY, SecretVerifier, TokenAuthority

    verifier = SecretVerifier(bench.secret, algorithms=["HS256"], leeway=30)
    uncached = TokenAuthority(secret=verifier, cache_seconds=0)
    return swapped_extension(bench, EXTENSION_KEY, uncached)


@contextlib.contextmanager
def swapped_extension(bench: Bench, key: str, value: Any) -> Iterator[None]:
    old = bench.app.extensions[key]
    bench.app.extensions[key] = value
    try:
        yield
    finally:
        bench.app.extensions[key] = old


def python_timestamps(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Timestamps read as datetimes and formatted in Python, not by the database."""
    from app.tasks import queries, routes, schemas

    columns = tuple(queries.tasks.c[name].label(name) for name in schemas.FIELD_NAMES)
    formats = {
        name: "%Y-%m-%dT%H:%M:%S.%fZ" for name in ("created_at", "updated_at", "completed_at")
    }

    def task_json(row: Any) -> dict[str, Any]:
        task = dict(zip(schemas.FIELD_NAMES, row, strict=False))
        for name, fmt in formats.items():
            if task.get(name) is not None:
                task[name] = task[name].strftime(fmt)
        return task

    columns = (*columns, queries.tasks.c.version)
    return _stack(
        statements_rebuilt(),
        swapped(queries, TASK_COLUMNS=columns),
        swapped(routes, task_json=task_json),
    )


def marshmallow_dump(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Rows dumped by the response schema (marshmallow), datetimes read from the driver."""
    from app.tasks import queries, routes, schemas

    columns = (
        *(queries.tasks.c[name].label(name) for name in schemas.FIELD_NAMES),
        queries.tasks.c.version,
    )
    schema = schemas.TaskSchema()
    return _stack(
        statements_rebuilt(),
        swapped(queries, TASK_COLUMNS=columns),
        swapped(routes, task_json=schema.dump),
    )


def orm_objects(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """The list and a get read ORM objects through the session, dumped by marshmallow."""
    from sqlalchemy import select

    from app.models import Task, db
    from app.tasks import queries, routes, schemas

    schema = schemas.TaskSchema()

    def list_page(conn: Any, user_id: str, args: Any, *, limit: int, offset: int) -> Any:
        key = getattr(Task, queries.SORT_COLUMNS[args["sort"]].key)
        order_by = (
            (key.asc(), Task.id.asc()) if args["order"] == "asc" else (key.desc(), Task.id.desc())
        )
        shape, params = queries.list_parameters(user_id, args, queries.utcnow())
        total = queries.count_tasks(conn, shape, params)
        query = select(Task).where(Task.user_id == user_id).order_by(*order_by)
        rows = db.session.scalars(query.limit(limit).offset(offset)).all()
        db.session.remove()
        return total, rows

    def get_task(conn: Any, user_id: str, task_id: int) -> Any:
        task = db.session.scalars(
            select(Task).where(Task.user_id == user_id, Task.id == task_id)
        ).one_or_none()
        db.session.remove()
        return task

    return _stack(
        swapped(queries, list_page=list_page, get_task=get_task),
        swapped(routes, task_json=schema.dump),
    )


def transactions(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Every request's statements in a transaction (BEGIN ... COMMIT), not autocommit."""
    from app.models import db
    from app.tasks import queries

    @contextlib.contextmanager
    def connection() -> Iterator[Any]:
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                yield conn

    return swapped(queries, connection=connection)


def counted_totals(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """The list's total by COUNT(*) over the user's tasks, not the trigger-kept counters."""
    from sqlalchemy import func, select

    from app.tasks import queries

    def total(shape: Any) -> Any:
        stmt = select(func.count()).select_from(queries.tasks).where(*queries._filters(shape))  # noqa: SLF001
        return stmt.scalar_subquery()

    return _stack(statements_rebuilt(), swapped(queries, _total=total))


@contextlib.contextmanager
def statements_rebuilt() -> Iterator[None]:
    """The statements kept per shape are built again (before and after a B side that
    changes what they are built from)."""
    from app.tasks import queries

    builders = [queries.page_statement, queries.count_statement, queries.update_statement,
                queries.toggle_statement, queries.insert_statement]  # fmt: skip
    for builder in builders:
        builder.cache_clear()
    try:
        yield
    finally:
        for builder in builders:
            builder.cache_clear()


def statements_per_request(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Every request builds its statements afresh (SQLAlchemy keys each one again)."""
    from app.tasks import queries

    return swapped(
        queries,
        page_statement=queries.page_statement.__wrapped__,
        count_statement=queries.count_statement.__wrapped__,
        update_statement=queries.update_statement.__wrapped__,
        toggle_statement=queries.toggle_statement.__wrapped__,
        insert_statement=queries.insert_statement.__wrapped__,
    )


def ping_every_checkout(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """SQLAlchemy's pool_pre_ping: a round trip before every use of a pooled connection."""
    from app import create_app

    config = {**bench.config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}}
    client = create_app(config).test_client()
    bench.quiet_logs()
    return swapped(bench, client=client)


@contextlib.contextmanager
def _stack(*managers: contextlib.AbstractContextManager[None]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


# name -> (what, where, routes, B side)
OPTIMIZATIONS: dict[str, tuple[str, str, tuple[str, ...], Callable[[Bench], Any]]] = {
    "token-cache": (
        "verified tokens remembered until exp / key-set change",
        "app/auth.py TokenAuthority",
        ("get",),
        no_token_cache,
    ),
    "sql-timestamps": (
        "timestamps formatted by the database",
        "app/models.py utc_text",
        ("list",),
        python_timestamps,
    ),
    "row-serializer": (
        "rows zipped with the field names, not dumped by marshmallow",
        "app/tasks/schemas.py task_json",
        ("list",),
        marshmallow_dump,
    ),
    "core-rows": (
        "Core rows, not ORM objects (and no marshmallow dump)",
        "app/tasks/queries.py",
        ("list", "get"),
        orm_objects,
    ),
    "statement-cache": (
        "statements built once per shape",
        "app/tasks/queries.py (functools.lru_cache)",
        ("list", "get", "toggle"),
        statements_per_request,
    ),
    "idle-ping": (
        "pooled connections pinged only after 10 s idle, not on every checkout",
        "app/__init__.py ping_idle_connections",
        ("get",),
        ping_every_checkout,
    ),
    "autocommit": (
        "autocommit single statements (no BEGIN/COMMIT)",
        "app/__init__.py engine options",
        ("get", "toggle"),
        transactions,
    ),
    "counters": (
        "list totals from trigger-kept counters",
        "migrations/versions/0002",
        ("list-100k",),
        counted_totals,
    ),
}


def run(args: argparse.Namespace) -> int:
    names = [n for n in args.only.split(",") if n] or list(OPTIMIZATIONS)
    unknown = set(names) - set(OPTIMIZATIONS)
    if unknown:
        raise harness.BenchError(f"unknown optimization(s): {', '.join(sorted(unknown))}")
    database = Database(args.database_url, name="bench_ab")
    database.create()
    results = []
    try:
        bench = Bench(database)
        for name in names:
            what, where, routes, b_side = OPTIMIZATIONS[name]
            for route in routes:
                a_runs, b_runs = [], []
                for _ in range(args.rounds):
                    a_runs.append(bench.time_route(route, args.requests))
                    with b_side(bench):
                        b_runs.append(bench.time_route(route, args.requests))
                a, b = statistics.median(a_runs), statistics.median(b_runs)
                saving = (b - a) / b * 100
                results.append(
                    {
                        "optimization": name,
                        "what": what,
                        "where": where,
                        "route": route,
                        "a_us": round(a, 1),
                        "b_us": round(b, 1),
                        "saving_pct": round(saving, 1),
                    }
                )
                log(
                    f"{name:15} {route:10} with {a:8.1f} us  without {b:8.1f} us  "
                    f"saves {saving:5.1f} %"
                )
    finally:
        with contextlib.suppress(Exception):
            from app.models import db

            with bench.app.app_context():
                db.engine.dispose()
        database.drop()
    print(
        harness.format_table(
            ["optimization", "route", "with µs", "without µs", "saves %"],
            [
                [r["optimization"], r["route"], r["a_us"], r["b_us"], r["saving_pct"]]
                for r in results
            ],
        )
    )
    path = harness.write_json(args.json, {"date": time.strftime("%Y-%m-%d"), "results": results})
    log(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except harness.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
