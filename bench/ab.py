"""A/B of each optimization the service keeps (bench/README.md, "What we keep and why").

    .venv/bin/python bench/ab.py                      # every optimization
    .venv/bin/python bench/ab.py --only token-cache,idle-ping --requests 1000 --rounds 7

For each optimization, a route is timed with the code as it is (A) and with that one
optimization replaced by the plain way (B): in this process, through Flask's test client,
on a throw-away PostgreSQL database, sequential requests, so a request's time includes
its database work and round trips. A and B alternate for ``--rounds`` rounds of
``--requests`` requests; the medians are compared. B is made by swapping module
attributes here, in the benchmark, never in the app.

The reads, toggles and updates are ab-user's (20 tasks: one page); creates and deletes
are ab-writer's, so that ab-user's page stays the same. A delete run deletes tasks made
for it just before, in one INSERT, untimed. The list-100k route reads ab-scale-user, who
has 100,001 tasks in their default list.

Before an optimization's rounds, a few untimed requests of each side are probed (SQL
statements, COMMITs, token verifications, pool pings, ORM objects per request) and the
run stops unless B really took the plain way: a B side that no longer reaches the code
it replaces fails loudly instead of measuring nothing.

The saving is (B - A) / B: the share of the route's time the optimization saves.
Rule (issue 11): an optimization stays only if this is over 5 %.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import harness
from harness import Database, log

USER = "ab-user"  # reads, toggles and updates (of one task among TASKS)
WRITER = "ab-writer"  # creates and deletes: USER's list keeps its one page
SCALE_USER = "ab-scale-user"
TASKS = 20  # one full page of the list, as bench/run.py's reader has
SCALE_TASKS = 100_000
WARMUP = 20  # untimed requests before each timed run
PROBED = 5  # untimed requests of each side whose work is counted


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
    def __init__(self, database: Database, scale: bool) -> None:
        from flask_migrate import upgrade

        from app import create_app
        from app.auth import create_token
        from app.models import db

        self.database = database
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
        self.apps = [self.app]  # every app made here, their engines disposed at the end
        self.devnull = open(os.devnull, "w")  # noqa: SIM115
        self.quiet_logs()
        with self.app.app_context():
            upgrade()
            db.session.remove()
        self.client = self.app.test_client()
        self.headers = {
            user: {
                "Authorization": f"Bearer {create_token(self.secret, user, ttl=86400)}",
                "Origin": harness.BENCH_ORIGIN,
            }
            for user in (USER, WRITER, SCALE_USER)
        }
        ids = [self.post(USER, f"task {i}").get_json()["id"] for i in range(TASKS)]
        self.task_id = ids[0]
        self.post(WRITER, "writer seed")  # its users row and default list
        self.pending: Iterator[int] = iter(())  # WRITER's tasks for the delete route
        if scale:
            self.seed_scale()
        database.execute("VACUUM ANALYZE tasks")
        database.execute("VACUUM ANALYZE users")
        database.execute("VACUUM ANALYZE lists")
        if scale:
            self.check_scale_total()

    def seed_scale(self) -> None:
        """SCALE_TASKS more tasks for SCALE_USER, in one INSERT, at the top level of the
        default list its first request made, after its first task: positions are the
        service's own keys (fractional-indexing), seq is the user's counter as it stands
        (no write of theirs is later), completed ones have completed_at. The counters
        (users.task_count, lists.open_count) are the triggers'."""
        from fractional_indexing import generate_n_keys_between

        self.post(SCALE_USER, "scale seed")  # the users row, the default list, a first task
        list_id, greatest = self.default_list(SCALE_USER)
        keys = generate_n_keys_between(greatest, None, SCALE_TASKS)
        self.database.execute(
            "INSERT INTO tasks (user_id, list_id, position, seq, title, description, "
            "                   completed, completed_at, created_at, updated_at) "
            "SELECT u.id, %s, k.key, u.seq, 'task ' || k.i, "
            "       CASE WHEN k.i %% 4 = 0 THEN NULL ELSE 'notes' END, k.i %% 3 = 0, "
            "       CASE WHEN k.i %% 3 = 0 THEN now() - k.i * interval '30 seconds' END, "
            "       now() - k.i * interval '1 minute', now() - k.i * interval '30 seconds' "
            "FROM users AS u, unnest(%s::text[]) WITH ORDINALITY AS k(key, i) WHERE u.id = %s",
            (list_id, keys, SCALE_USER),
        )

    def check_scale_total(self) -> None:
        response = self.route("list-100k", 1)()
        assert response.status_code == 200, response.get_data(as_text=True)
        total = json.loads(response.headers["X-Pagination"])["total"]
        if total != SCALE_TASKS + 1 or len(response.get_json()) != 20:
            raise harness.BenchError(f"{SCALE_USER}'s list says {total} tasks")
        # The trigger-kept counters against a count of the rows.
        [kept] = self.database.execute(
            "SELECT u.task_count, u.completed_count, l.open_count FROM users AS u "
            "JOIN lists AS l ON l.user_id = u.id AND l.is_default WHERE u.id = %s",
            (SCALE_USER,),
        )
        [counted] = self.database.execute(
            "SELECT count(*), count(*) FILTER (WHERE completed), "
            "       count(*) FILTER (WHERE NOT completed) FROM tasks WHERE user_id = %s",
            (SCALE_USER,),
        )
        if kept != counted:
            raise harness.BenchError(f"{SCALE_USER}'s counters {kept} != its rows {counted}")
        log(f"{SCALE_USER}: {total} tasks (X-Pagination total)")

    def default_list(self, user: str) -> tuple[int, str | None]:
        """The user's default list and the greatest position at its top level."""
        [(list_id, greatest)] = self.database.execute(
            "SELECT l.id, (SELECT max(t.position) FROM tasks AS t WHERE t.user_id = l.user_id "
            "              AND t.list_id = l.id AND t.parent_id IS NULL) "
            "FROM lists AS l WHERE l.user_id = %s AND l.is_default",
            (user,),
        )
        return int(list_id), greatest

    def prepare_deletes(self, count: int) -> None:
        """``count`` tasks of WRITER to delete, in one INSERT (outside any timing), last
        in its default list."""
        from fractional_indexing import generate_n_keys_between

        list_id, greatest = self.default_list(WRITER)
        rows = self.database.execute(
            "INSERT INTO tasks (user_id, list_id, position, seq, title, created_at, updated_at) "
            "SELECT u.id, %s, k.key, u.seq, 'delete me', now(), now() "
            "FROM users AS u, unnest(%s::text[]) AS k(key) WHERE u.id = %s RETURNING id",
            (list_id, generate_n_keys_between(greatest, None, count), WRITER),
        )
        self.pending = iter(sorted(row[0] for row in rows))

    def quiet_logs(self) -> None:
        """The request log's work stays in the measurement; its lines go nowhere."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.devnull)

    def post(self, user: str, title: str) -> Any:
        response = self.client.post(
            f"/api/{user}/tasks", json={"title": title}, headers=self.headers[user]
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response

    def route(self, name: str, count: int) -> Callable[[], Any]:
        """The route's request, ``count`` times at most (the delete route's tasks are
        made first)."""
        c = self.client
        h, w = self.headers[USER], self.headers[WRITER]
        base, writer = f"/api/{USER}/tasks", f"/api/{WRITER}/tasks"
        if name == "delete":
            self.prepare_deletes(count)
        calls: dict[str, Callable[[], Any]] = {
            "list": lambda: c.get(base, headers=h),
            "get": lambda: c.get(f"{base}/{self.task_id}", headers=h),
            "toggle": lambda: c.patch(f"{base}/{self.task_id}/complete", headers=h),
            "update": lambda: c.put(f"{base}/{self.task_id}", json={"title": "updated"}, headers=h),
            "create": lambda: c.post(writer, json={"title": "created"}, headers=w),
            "delete": lambda: c.delete(f"{writer}/{next(self.pending)}", headers=w),
            "list-100k": lambda: c.get(
                f"/api/{SCALE_USER}/tasks?page_size=20", headers=self.headers[SCALE_USER]
            ),
        }
        return calls[name]

    def time_route(self, route: str, n: int) -> float:
        """Microseconds per request, wall clock, ``n`` sequential requests."""
        call = self.route(route, WARMUP + n)
        for _ in range(WARMUP):
            response = call()
            assert response.status_code < 300, response.get_data(as_text=True)
        failed = 0
        started = time.perf_counter()
        for _ in range(n):
            response = call()
            if response.status_code >= 300:
                failed += 1
        elapsed = time.perf_counter() - started
        if failed:
            raise harness.BenchError(
                f"{route}: {failed} of {n} answers not 2xx, e.g. {response.status_code} "
                f"{response.get_data(as_text=True)[:300]}"
            )
        return elapsed / n * 1e6

    def probe(self, route: str) -> Probe:
        """What PROBED requests of the route do, per request (after one more unprobed)."""
        from sqlalchemy import event
        from sqlalchemy.engine.default import CACHE_HIT

        from app import auth
        from app.models import Task, db

        app = self.client.application
        with app.app_context():
            engine = db.engine
        call = self.route(route, PROBED + 1)
        first = call()
        assert first.status_code < 300, first.get_data(as_text=True)
        probe = Probe(requests=PROBED)

        def before_execute(conn: Any, element: Any, *args: Any) -> None:
            probe.elements.append(element)  # held: ids stay unique while probing

        def before_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, *args: Any
        ) -> None:
            probe.statements += 1
            probe.sql.add(" ".join(statement.split()))
            if getattr(context, "cache_hit", None) is not CACHE_HIT:
                probe.compiled += 1

        def commit(conn: Any) -> None:
            probe.commits += 1

        def load(target: Any, context: Any) -> None:
            probe.orm_objects += 1

        decode, ping = auth.decode_with_policy, engine.dialect.do_ping

        def counted_decode(*args: Any, **kwargs: Any) -> Any:
            probe.verifications += 1
            return decode(*args, **kwargs)

        def counted_ping(dbapi_connection: Any) -> Any:
            probe.pings += 1
            return ping(dbapi_connection)

        listeners = [
            (engine, "before_execute", before_execute),
            (engine, "before_cursor_execute", before_cursor_execute),
            (engine, "commit", commit),
            (Task, "load", load),
        ]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        auth.decode_with_policy = counted_decode
        engine.dialect.do_ping = counted_ping
        try:
            for _ in range(PROBED):
                response = call()
                probe.statuses.append(response.status_code)
            probe.body = response.get_json(silent=True)
        finally:
            del engine.dialect.do_ping
            auth.decode_with_policy = decode
            for target, name, fn in listeners:
                event.remove(target, name, fn)
            # The engine stays marked as having had listeners: A and B are timed alike.
        if any(status >= 300 for status in probe.statuses):
            raise harness.BenchError(f"{route}: probed answers {probe.statuses}")
        return probe


@dataclass
class Probe:
    """A few requests' work. Counts are totals over ``requests``; ``per`` divides."""

    requests: int
    statuses: list[int] = field(default_factory=list)
    statements: int = 0  # sent to the database (cursor executions)
    compiled: int = 0  # of those, compiled (not found in SQLAlchemy's compiled cache)
    commits: int = 0
    verifications: int = 0  # token signatures checked
    pings: int = 0  # pool pre-pings
    orm_objects: int = 0
    elements: list[Any] = field(default_factory=list)  # statement objects executed
    sql: set[str] = field(default_factory=set)
    body: Any = None

    def per(self, count: int) -> float:
        return count / self.requests

    @property
    def built(self) -> int:
        """Distinct statement objects executed (a kept statement counts once)."""
        return len({id(element) for element in self.elements})

    def says(self, text: str) -> bool:
        return any(text in statement for statement in self.sql)

    def summary(self) -> dict[str, float]:
        counts = {
            "statements": self.statements,
            "compiled": self.compiled,
            "commits": self.commits,
            "verifications": self.verifications,
            "pings": self.pings,
            "orm_objects": self.orm_objects,
            "statement_objects": self.built,
        }
        return {name: round(self.per(count), 2) for name, count in counts.items()}


# --------------------------------------------------------------------------- the B sides

# queries' kept statements (functools.lru_cache), by their builders' names.
STATEMENT_BUILDERS = (
    "page_statement",
    "count_statement",
    "update_statement",
    "toggle_statement",
    "delete_statement",
    "insert_statement",
    "insert_unless_changed",
)


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

    config = bench.app.config
    verifier = SecretVerifier(
        bench.secret,
        algorithms=config["JWT_SECRET_ALGORITHMS"],
        leeway=config["JWT_LEEWAY"],
        issuer=config.get("JWT_ISSUER"),
        audience=config.get("JWT_AUDIENCE"),
    )
    uncached = TokenAuthority(secret=verifier, leeway=config["JWT_LEEWAY"], cache_seconds=0)
    return swapped_item(bench.app.extensions, EXTENSION_KEY, uncached)


@contextlib.contextmanager
def swapped_item(mapping: dict[str, Any], key: str, value: Any) -> Iterator[None]:
    old = mapping[key]
    mapping[key] = value
    try:
        yield
    finally:
        mapping[key] = old


def timestamp_names() -> tuple[str, ...]:
    from app.fields import UTCTimestamp
    from app.tasks.schemas import TASK

    fields = TASK.schema().fields
    return tuple(name for name, f in fields.items() if isinstance(f, UTCTimestamp))


def python_timestamps(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Timestamps read as datetimes and formatted in Python, not by the database (the
    other fields as the app reads them: the priority's name is still the database's)."""
    from app.tasks import queries, routes
    from app.tasks.schemas import TASK

    moments = set(timestamp_names())
    columns = tuple(
        queries.tasks.c[name].label(name) if name in moments else column
        for name, column in zip(TASK.names, TASK.columns(queries.tasks), strict=True)
    )

    def task_json(row: Any) -> dict[str, Any]:
        task = dict(zip(TASK.names, row, strict=False))
        for name in moments:
            if task[name] is not None:
                task[name] = task[name].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return task

    return _stack(
        statements_rebuilt(),
        swapped(queries, TASK_COLUMNS=(*columns, queries.tasks.c.version)),
        swapped(routes, task_json=task_json),
    )


def marshmallow_dump(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Rows dumped by the response schema (marshmallow): the columns as stored, datetimes
    from the driver, the priority's rank named by the schema's field."""
    from app.tasks import queries, routes, schemas

    columns = (
        *(queries.tasks.c[name].label(name) for name in schemas.TASK.names),
        queries.tasks.c.version,
    )
    schema = schemas.TaskSchema()
    return _stack(
        statements_rebuilt(),
        swapped(queries, TASK_COLUMNS=columns),
        swapped(routes, task_json=schema.dump),
    )


def orm_objects(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """The list and a get read ORM objects through the session (the query built per
    request, as ORM code does), dumped by marshmallow. The list's page and total are
    still one statement."""
    from sqlalchemy import select

    from app.models import Task, db
    from app.tasks import queries, routes, schemas

    schema = schemas.TaskSchema()

    def list_page(conn: Any, user_id: str, args: Any, *, limit: int, offset: int) -> Any:
        shape, params = queries.list_parameters(user_id, args, queries.utcnow())
        key = queries.SORT_COLUMNS[shape.sort]
        if shape.order == "asc":
            order_by = (queries.nulls_last(key.asc(), key), Task.id.asc())
        else:
            order_by = (queries.nulls_last(key.desc(), key), Task.id.desc())
        query = (
            select(Task, queries._total(shape).label("total"))
            .where(*queries._filters(shape))
            .order_by(*order_by)
            .limit(limit)
            .offset(offset)
        )
        rows = db.session.execute(query, params).all()
        db.session.remove()
        if not rows:
            return queries.count_tasks(conn, shape, params), []
        return rows[0].total, [row.Task for row in rows]

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
    """Every request's statements in a transaction (BEGIN ... COMMIT), not autocommit:
    ``connection()`` is ``transaction()`` wherever the app imported it."""
    from app import database

    importers = [
        module
        for name, module in sys.modules.items()
        if (name == "app" or name.startswith("app."))
        and getattr(module, "connection", None) is database.connection
    ]
    return _stack(*(swapped(module, connection=database.transaction) for module in importers))


def counted_totals(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """The list's total by COUNT(*) over the user's tasks, not the trigger-kept counters."""
    from sqlalchemy import func, select

    from app.tasks import queries

    def total(shape: Any) -> Any:
        stmt = select(func.count()).select_from(queries.tasks).where(*queries._filters(shape))
        return stmt.scalar_subquery()

    return _stack(statements_rebuilt(), swapped(queries, _total=total))


@contextlib.contextmanager
def statements_rebuilt() -> Iterator[None]:
    """The statements kept per shape are built again (before and after a B side that
    changes what they are built from)."""
    from app.tasks import queries

    builders = [getattr(queries, name) for name in STATEMENT_BUILDERS]
    for builder in builders:
        builder.cache_clear()
    try:
        yield
    finally:
        for builder in builders:
            builder.cache_clear()


def statements_per_request(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Every request builds its statements afresh (SQLAlchemy keys each one again): the
    kept builders unwrapped, and a get's statement (a module constant) built per call."""
    from sqlalchemy import select

    from app.tasks import queries

    def get_task(conn: Any, user_id: str, task_id: int) -> Any:
        tasks = queries.tasks
        stmt = select(*queries.TASK_COLUMNS).where(
            tasks.c.user_id == user_id, tasks.c.id == task_id
        )
        return conn.execute(stmt).one_or_none()

    unwrapped = {name: getattr(queries, name).__wrapped__ for name in STATEMENT_BUILDERS}
    return swapped(queries, get_task=get_task, **unwrapped)


def ping_every_checkout(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """SQLAlchemy's pool_pre_ping: a round trip before every use of a pooled connection
    (an app of its own, made once, the same configuration otherwise)."""
    from app import create_app

    pinging = getattr(bench, "pinging", None)
    if pinging is None:
        config = {**bench.config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}}
        app = create_app(config)
        bench.apps.append(app)
        bench.quiet_logs()
        pinging = bench.pinging = app.test_client()
    return swapped(bench, client=pinging)


def claim_then_write(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """A one-statement write as a transaction: the user-row claim, then the write with
    the seq bound, then COMMIT (``write_one``'s non-PostgreSQL way, always)."""
    from app import owners
    from app.tasks import queries

    def write_one(identity: Any, statement: Any, params: Any) -> Any:
        with owners.write(identity) as w:
            values = {**params, "owner": w.user_id, "now": w.now, "seq": w.seq}
            return w.conn.execute(statement(False), values).all()

    return swapped(queries, write_one=write_one)


def forget_every_delete(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Old deletions forgotten (a bounded DELETE) on every delete: each turn is due at
    once, starting with this worker's current one (an A run left it a minute ahead)."""
    from app import deletions

    turn = bench.app.extensions.setdefault("deletions", {"due": 0.0})
    return _stack(swapped(deletions, EVERY_SECONDS=0.0), swapped_item(turn, "due", 0.0))


def careful_creates(bench: Bench) -> contextlib.AbstractContextManager[None]:
    """Every create the careful way: the user's write transaction (claim, default list,
    last position, insert, COMMIT)."""
    from app.tasks import queries

    return swapped(queries, _create_last=lambda identity, data: None)


@contextlib.contextmanager
def _stack(*managers: contextlib.AbstractContextManager[None]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


# --------------------------------------------------------------------------- the checks
# Each says whether B took the plain way, from A's and B's probes.


def verified_every_time(a: Probe, b: Probe) -> bool:
    return a.verifications == 0 and b.verifications >= b.requests


def same_body_python_times(a: Probe, b: Probe) -> bool:
    return a.says("to_char") and not b.says("to_char") and a.body == b.body


def marshmallow_dumped(a: Probe, b: Probe) -> bool:
    # The schema writes its own ISO format: +00:00 where the database writes Z.
    return (
        not b.says("to_char")
        and all(task["created_at"].endswith("+00:00") for task in b.body)
        and all(task["created_at"].endswith("Z") for task in a.body)
    )


def orm_loaded(a: Probe, b: Probe) -> bool:
    return a.orm_objects == 0 and b.orm_objects >= b.requests


def built_every_time(a: Probe, b: Probe) -> bool:
    return a.built < a.requests and b.built >= b.requests


def pinged_every_time(a: Probe, b: Probe) -> bool:
    return a.pings == 0 and b.pings >= b.requests


def committed(a: Probe, b: Probe) -> bool:
    return a.commits == 0 and b.commits >= b.requests


def counted(a: Probe, b: Probe) -> bool:
    return not a.says("count(*)") and b.says("count(*)")


def claimed_apart(a: Probe, b: Probe) -> bool:
    return committed(a, b) and b.statements >= a.statements + b.requests


def forgot_every_time(a: Probe, b: Probe) -> bool:
    forget = "DELETE FROM deletions"
    return b.says(forget) and b.statements - a.statements >= b.requests


@dataclass(frozen=True)
class Optimization:
    what: str
    where: str
    routes: tuple[str, ...]
    b_side: Callable[[Bench], contextlib.AbstractContextManager[None]]
    took_effect: Callable[[Probe, Probe], bool]


OPTIMIZATIONS: dict[str, Optimization] = {
    "token-cache": Optimization(
        "verified tokens remembered until exp / key-set change",
        "app/auth.py TokenAuthority",
        ("get",),
        no_token_cache,
        verified_every_time,
    ),
    "sql-timestamps": Optimization(
        "timestamps formatted by the database",
        "app/models.py utc_text",
        ("list",),
        python_timestamps,
        same_body_python_times,
    ),
    "row-serializer": Optimization(
        "rows zipped with the field names, not dumped by marshmallow",
        "app/representation.py Representation.json (task_json)",
        ("list",),
        marshmallow_dump,
        marshmallow_dumped,
    ),
    "core-rows": Optimization(
        "Core rows, not ORM objects (and no marshmallow dump)",
        "app/tasks/queries.py",
        ("list", "get"),
        orm_objects,
        orm_loaded,
    ),
    "statement-cache": Optimization(
        "statements built once per shape",
        "app/tasks/queries.py (functools.lru_cache)",
        ("list", "get", "toggle"),
        statements_per_request,
        built_every_time,
    ),
    "idle-ping": Optimization(
        "pooled connections pinged only after 10 s idle, not on every checkout",
        "app/database.py ping_idle_connections",
        ("get",),
        ping_every_checkout,
        pinged_every_time,
    ),
    "autocommit": Optimization(
        "autocommit single statements (no BEGIN/COMMIT)",
        "app/database.py engine_options",
        ("get", "toggle"),
        transactions,
        committed,
    ),
    "counters": Optimization(
        "list totals from trigger-kept counters",
        "migrations/versions/0002, 0004",
        ("list-100k",),
        counted_totals,
        counted,
    ),
    "one-statement-writes": Optimization(
        "a one-statement write holds the user-row claim as a CTE (no transaction)",
        "app/owners.py write_one",
        ("toggle", "update"),
        claim_then_write,
        claimed_apart,
    ),
    "forget-throttle": Optimization(
        "old deletions forgotten once a minute per worker, not on every delete",
        "app/deletions.py EVERY_SECONDS",
        ("delete",),
        forget_every_delete,
        forgot_every_time,
    ),
    "optimistic-create": Optimization(
        "a create last in the default list: one read, then one guarded statement",
        "app/tasks/queries.py _create_last",
        ("create",),
        careful_creates,
        committed,
    ),
}


def run(args: argparse.Namespace) -> int:
    names = [n for n in args.only.split(",") if n] or list(OPTIMIZATIONS)
    unknown = set(names) - set(OPTIMIZATIONS)
    if unknown:
        raise harness.BenchError(f"unknown optimization(s): {', '.join(sorted(unknown))}")
    scale = any("list-100k" in OPTIMIZATIONS[name].routes for name in names)
    database = Database(args.database_url, name=f"bench_ab_{os.getpid()}")
    database.create()
    results = []
    bench = None
    try:
        bench = Bench(database, scale=scale)
        for name in names:
            optimization = OPTIMIZATIONS[name]
            for route in optimization.routes:
                probe_a = bench.probe(route)
                with optimization.b_side(bench):
                    probe_b = bench.probe(route)
                log(f"{name} {route} per request: A {probe_a.summary()}")
                log(f"{name} {route} per request: B {probe_b.summary()}")
                if not optimization.took_effect(probe_a, probe_b):
                    raise harness.BenchError(
                        f"{name} {route}: B did not take the plain way "
                        f"({optimization.took_effect.__name__} is false)"
                    )
                a_runs, b_runs = [], []
                for _ in range(args.rounds):
                    a_runs.append(bench.time_route(route, args.requests))
                    with optimization.b_side(bench):
                        b_runs.append(bench.time_route(route, args.requests))
                a, b = statistics.median(a_runs), statistics.median(b_runs)
                saving = (b - a) / b * 100
                results.append(
                    {
                        "optimization": name,
                        "what": optimization.what,
                        "where": optimization.where,
                        "route": route,
                        "a_us": round(a, 1),
                        "b_us": round(b, 1),
                        "saving_pct": round(saving, 1),
                        "a_per_request": probe_a.summary(),
                        "b_per_request": probe_b.summary(),
                    }
                )
                log(
                    f"{name:20} {route:10} with {a:8.1f} us  without {b:8.1f} us  "
                    f"saves {saving:5.1f} %"
                )
    finally:
        if bench is not None:
            with contextlib.suppress(Exception):
                from app.models import db

                for app in bench.apps:
                    with app.app_context():
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
