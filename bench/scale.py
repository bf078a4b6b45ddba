"""Scale check: the first page of the list for a user with 100,000 tasks vs one with 20.

    .venv/bin/python bench/scale.py            # or: bench/run.py --scale
    .venv/bin/python bench/scale.py --duration 3 --connections 32

For every sort (both orders), for each filter (status, priority, tag, due_before,
overdue, updated_since) and for the organizing ones (one list in manual order, a task's
subtasks, a list's top level) it measures, with wrk, the p50 of the first page
(``page_size=20``) for both users and prints big/small, marked against 1.5x; and for
``q`` with a word in 1 % of the big user's tasks, the big user's p50, marked against
50 ms. The big user's tasks are in 50 lists, four in five of them subtasks. Then the
changes feed: a page of 100 changes of the big user against one of a user with 1,000
tasks, and the first page (20 items) of the big user's first load against the small
user's. Then the tree's writes, one request at a time: a move of a task with a 500-task
subtree to another list, and a completion that cascades to 100 subtasks (p50 of each).
Last, the PostgreSQL plans (EXPLAIN (ANALYZE, BUFFERS)) of the statement the list runs for
the big user, built by app/tasks/queries.py: index scans, no sort of the whole set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from typing import Any

import harness
from fractional_indexing import generate_n_keys_between
from harness import Server, log

SMALL, BIG, MEDIUM = "scale-small", "scale-big", "scale-medium"
MEDIUM_TASKS = 1_000  # the changes feed's reference user
FEED_CHANGES = 100  # changes in one page of the feed, for the big user and the medium one
FEED_PAGE = 20  # the first page of the feed's first load, for the big user and the small one
PAGE_SIZE = 20
RATIO_TARGET = 1.5
Q_TARGET_MS = 50.0
TAG_VOCABULARY = 50  # tags tag0 ... tag49; each task has 0-5 of them
Q_WORD = "zebra"  # in 1 % of the big user's titles
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LISTS = 50  # the big user's lists
FAMILY = 5  # in each list, every fifth task is top level and the next four its subtasks
SUBTREE = 500  # tasks moved with one move
CASCADE = 100  # subtasks completed by one completion
TREE_REPEAT = 21  # moves and completions timed, for their p50


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# name -> (query string, the same as parsed list arguments)
QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    **{
        f"sort={sort} order={order}": (f"sort={sort}&order={order}", {"sort": sort, "order": order})
        for sort in ("created", "updated", "title", "due_date", "priority")
        for order in ("desc", "asc")
    },
    "status=pending": ("status=pending", {"status": "pending"}),
    "status=completed": ("status=completed", {"status": "completed"}),
    "priority=high": ("priority=high", {"priority": [2]}),
    "tag=tag7": ("tag=tag7", {"tag": ["tag7"]}),
    "due_before (+30 days)": (
        f"due_before={_iso(NOW + dt.timedelta(days=30))}",
        {"due_before": NOW + dt.timedelta(days=30)},
    ),
    "overdue=true": ("overdue=true", {"overdue": True}),
    "updated_since (-1 day)": (
        f"updated_since={_iso(NOW - dt.timedelta(days=1))}",
        {"updated_since": NOW - dt.timedelta(days=1)},
    ),
}
Q_QUERY = (f"q={Q_WORD}", {"q": Q_WORD})
# Per user: {list} is one of their lists, {parent} a top-level task of it with subtasks.
ORGANIZING: dict[str, str] = {
    "list_id + sort=position": "list_id={list}&sort=position",
    "parent_id={task}": "parent_id={parent}",
    "list_id + parent_id=none + position": "list_id={list}&parent_id=none&sort=position",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--big-tasks", type=int, default=100_000, help="tasks of the big user (100000)"
    )
    parser.add_argument(
        "--background-tasks",
        type=int,
        default=0,
        help="tasks of 100 other users, so the big user is not the whole table (0)",
    )
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run (5)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per user and query; medians reported (1)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument("--wrk-timeout", type=float, default=2, help="wrk --timeout in seconds (2)")
    parser.add_argument("--json", default="scale.json", help="file name under bench/results/")
    harness.add_gunicorn_options(parser)
    return parser.parse_args(argv)


def seed_big(database: harness.Database, user_id: str, count: int) -> None:
    """One users row, LISTS lists (the first its default), then ``count`` tasks in one
    INSERT ... SELECT generate_series, then their tags (JSON on the task, keys in task_tags,
    as the API writes them) and their tree.

    A third completed; a third each low, medium, high; four in five with a due date,
    within half a year either side of now; created over the past year, updated some time
    after; 0-5 tags each from 50; titles in no particular order, 1 % with the q word. Task
    ``g`` is in list ``g % LISTS``; in each list every FAMILY-th task is top level and the
    next ones its subtasks; positions are the service's own keys, in creation order."""
    started = time.monotonic()
    database.execute(
        "INSERT INTO users (id, email, name, created_at) VALUES (%s, %s, %s, now())",
        (user_id, f"{user_id}@bench.invalid", user_id),
    )
    database.execute(
        "INSERT INTO lists (user_id, title, is_default, position, created_at, updated_at) "
        "SELECT %s, 'List ' || k, k = 1, key, now(), now() "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS l(key, k)",
        (user_id, generate_n_keys_between(None, None, LISTS)),
    )
    keys = generate_n_keys_between(None, None, count // LISTS + 1)
    database.execute(
        "INSERT INTO tasks (user_id, title, description, completed, completed_at, priority, "
        "                   due_date, list_id, position, created_at, updated_at) "
        "SELECT %(user)s, "
        "       CASE WHEN g %% 100 = 0 THEN 'Feed the " + Q_WORD + " ' ELSE 'Task ' END "
        "         || substr(md5(g::text), 1, 16), "
        "       CASE WHEN g %% 4 = 0 THEN NULL ELSE 'Seeded note ' || g END, "
        "       g %% 3 = 0, CASE WHEN g %% 3 = 0 THEN now() END, (g / 3) %% 3, "
        "       CASE WHEN g %% 5 = 0 THEN NULL "
        "            ELSE now() + ((g * 7919) %% 364 - 182) * interval '1 day' END, "
        "       l.id, (%(keys)s::text[])[g / %(lists)s + 1], "
        "       now() - (%(count)s - g) * interval '5 minutes', "
        "       now() - (%(count)s - g) * interval '5 minutes' + (g %% 997) * interval '1 minute' "
        "FROM generate_series(1, %(count)s) AS g "
        "JOIN (SELECT id, row_number() OVER (ORDER BY position) - 1 AS k FROM lists "
        "      WHERE user_id = %(user)s) AS l ON l.k = g %% %(lists)s",
        {"user": user_id, "count": count, "keys": keys, "lists": LISTS},
    )
    # The tree: in each list, in creation order, every FAMILY-th task is top level and the
    # FAMILY - 1 after it its subtasks (the tree rule holds: a completed parent's open
    # subtasks are completed too).
    database.execute(
        "WITH ranked AS (SELECT id, list_id, row_number() OVER (PARTITION BY list_id "
        "                ORDER BY position) - 1 AS r FROM tasks WHERE user_id = %(user)s), "
        "parents AS (SELECT c.id AS child, p.id AS parent FROM ranked c JOIN ranked p "
        "            ON p.list_id = c.list_id AND p.r = c.r - c.r %% %(family)s "
        "            WHERE c.r %% %(family)s <> 0) "
        "UPDATE tasks SET parent_id = parents.parent FROM parents "
        "WHERE tasks.user_id = %(user)s AND tasks.id = parents.child",
        {"user": user_id, "family": FAMILY},
    )
    database.execute(
        "UPDATE tasks AS c SET completed = true, completed_at = p.completed_at FROM tasks AS p "
        "WHERE c.user_id = %(user)s AND p.user_id = %(user)s AND c.parent_id = p.id "
        "AND p.completed AND NOT c.completed",
        {"user": user_id},
    )
    tag = f"'tag' || ((id * 7 + k * 13) %% {TAG_VOCABULARY})"
    database.execute(
        f"INSERT INTO task_tags (user_id, task_id, tag) SELECT user_id, id, {tag} "
        "FROM tasks, generate_series(0, 4) AS k WHERE user_id = %s AND k < id %% 6",
        (user_id,),
    )
    database.execute(
        f"UPDATE tasks SET tags = (SELECT coalesce(jsonb_agg({tag} ORDER BY k), '[]'::jsonb) "
        "FROM generate_series(0, 4) AS k WHERE k < id %% 6) WHERE user_id = %s",
        (user_id,),
    )
    database.execute(
        "UPDATE lists SET open_count = (SELECT count(*) FROM tasks WHERE tasks.user_id = "
        "lists.user_id AND tasks.list_id = lists.id AND NOT tasks.completed) WHERE user_id = %s",
        (user_id,),
    )
    database.execute("VACUUM (ANALYZE) tasks, task_tags, users, lists")
    log(f"seeded {count} tasks in {LISTS} lists for {user_id} in SQL in "
        f"{time.monotonic() - started:.1f} s")  # fmt: skip


def small_task(i: int) -> dict[str, Any]:
    return {
        "title": f"Small task {i:02d}" + (f" {Q_WORD}" if i == 7 else ""),
        "description": f"note {i}",
        "completed": i % 3 == 0,
        "priority": ("low", "medium", "high")[i % 3],
        "due_date": None if i % 5 == 0 else _iso(NOW + dt.timedelta(days=(i * 37) % 364 - 182)),
        "tags": [f"tag{(i * 7 + k * 13) % TAG_VOCABULARY}" for k in range(i % 6)],
    }


def seed_background(database: harness.Database, count: int, users: int = 100) -> None:
    """Other users' tasks: with only two users the planner sees the big one as the table.
    Filler for the planner's statistics: each user's tasks share one position."""
    database.execute(
        "INSERT INTO users (id, created_at) "
        "SELECT 'scale-other-' || u, now() FROM generate_series(0, %s - 1) AS u",
        (users,),
    )
    database.execute(
        "INSERT INTO lists (user_id, title, is_default, position, created_at, updated_at) "
        "SELECT 'scale-other-' || u, 'Tasks', true, 'a0', now(), now() "
        "FROM generate_series(0, %s - 1) AS u",
        (users,),
    )
    database.execute(
        "INSERT INTO tasks (user_id, title, description, completed, list_id, position, "
        "                   created_at, updated_at) "
        "SELECT l.user_id, 'Other ' || substr(md5(g::text), 1, 16), "
        "       NULL, g %% 2 = 0, l.id, 'a0', now() - g * interval '1 minute', now() "
        "FROM generate_series(1, %(count)s) AS g "
        "JOIN lists AS l ON l.user_id = 'scale-other-' || (g %% %(users)s)",
        {"users": users, "count": count},
    )
    log(f"seeded {count} tasks for {users} other users in SQL")


def measure_tree(
    api: harness.ApiClient, database: harness.Database, token: str, user: str, list_id: int
) -> dict[str, dict[str, Any]]:
    """The tree's heavy writes, timed one request at a time through the API: a move of a
    task with a SUBTREE-task subtree to another list (and back), and a completion that
    cascades to CASCADE open subtasks (their completion undone in SQL between two)."""
    lists = database.execute(
        "SELECT id FROM lists WHERE user_id = %s AND id <> %s ORDER BY position LIMIT 1",
        (user, list_id),
    )
    other = lists[0][0]
    # A subtree of SUBTREE tasks: a root, 9 children, the rest their children.
    root = api.create_tasks(user, token, [{"title": "Subtree root", "list_id": list_id}], 1)[0]
    children = api.create_tasks(
        user, token, [{"title": f"Child {i}", "parent_id": root} for i in range(9)]
    )
    grandchildren = [
        {"title": f"Grandchild {i}", "parent_id": children[i % 9]} for i in range(SUBTREE - 10)
    ]
    api.create_tasks(user, token, grandchildren)
    moves = []
    for n in range(TREE_REPEAT):
        body = {"list_id": other if n % 2 == 0 else list_id}
        started = time.perf_counter()
        status, moved = api.request("POST", f"/api/{user}/tasks/{root}/move", token, body)
        moves.append((time.perf_counter() - started) * 1000)
        if status != 200 or moved["list_id"] != body["list_id"]:
            raise harness.BenchError(f"move answered {status}: {moved!r}")
    # A task with CASCADE open subtasks.
    parent = api.create_tasks(user, token, [{"title": "Cascade parent", "list_id": list_id}], 1)[0]
    api.create_tasks(
        user, token, [{"title": f"Cascade {i}", "parent_id": parent} for i in range(CASCADE)]
    )
    completions = []
    for _ in range(TREE_REPEAT):
        database.execute(
            "UPDATE tasks SET completed = false, completed_at = NULL WHERE user_id = %s AND "
            "(id = %s OR parent_id = %s)",
            (user, parent, parent),
        )
        started = time.perf_counter()
        status, done = api.request(
            "PATCH", f"/api/{user}/tasks/{parent}/complete", token, {"completed": True}
        )
        completions.append((time.perf_counter() - started) * 1000)
        if status != 200 or not done["completed"]:
            raise harness.BenchError(f"completion answered {status}: {done!r}")
    left = database.execute(
        "SELECT count(*) FROM tasks WHERE user_id = %s AND parent_id = %s AND NOT completed",
        (user, parent),
    )[0][0]
    if left:
        raise harness.BenchError(f"{left} subtasks left open by the cascade")
    result = {}
    for name, times, tasks in (
        (f"move with a {SUBTREE}-task subtree", moves, SUBTREE),
        (f"completion cascading to {CASCADE}", completions, CASCADE + 1),
    ):
        result[name] = {"p50_ms": statistics.median(times), "max_ms": max(times), "tasks": tasks}
        log(f"{name}: p50 {result[name]['p50_ms']:.1f} ms over {len(times)}")
    return result


def measure_feed(
    api: harness.ApiClient, tokens: dict[str, str], measure: Any, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """The changes feed's cost against what the user has: a page of FEED_CHANGES changes of
    the big user against one of the MEDIUM_TASKS-task user (the same writes, a cursor from
    before them), and the first page (FEED_PAGE items) of the big user's first load
    against the small user's."""
    cursors = {}
    for user in (BIG, MEDIUM):
        status, first = api.request("GET", f"/api/{user}/changes?limit=1", tokens[user])
        if status != 200:
            raise harness.BenchError(f"changes answered {status}: {first!r}")
        status, tail = api.request(
            "GET", f"/api/{user}/changes?cursor={first['cursor']}&limit=1000", tokens[user]
        )
        while tail["has_more"]:  # to the end of the first load, then the changes after it
            status, tail = api.request(
                "GET", f"/api/{user}/changes?cursor={tail['cursor']}&limit=1000", tokens[user]
            )
        cursors[user] = tail["cursor"]
        bodies = [{"title": f"Feed change {i}"} for i in range(FEED_CHANGES)]
        api.create_tasks(user, tokens[user], bodies)
    pairs = {
        f"{FEED_CHANGES} changes": (
            (MEDIUM, f"cursor={cursors[MEDIUM]}&limit={FEED_CHANGES}"),
            (BIG, f"cursor={cursors[BIG]}&limit={FEED_CHANGES}"),
        ),
        f"first load, first {FEED_PAGE}": (
            (SMALL, f"limit={FEED_PAGE}"),
            (BIG, f"limit={FEED_PAGE}"),
        ),
    }
    result = {}
    for name, ((reference, reference_query), (big, big_query)) in pairs.items():
        reference_runs, big_runs = [], []
        for _ in range(args.repeat):
            reference_runs.append(measure(reference, reference_query, args.duration, "changes"))
            big_runs.append(measure(big, big_query, args.duration, "changes"))
        ref, mine = combine(reference_runs), combine(big_runs)
        ratio = mine["p50_ms"] / ref["p50_ms"] if ref["p50_ms"] else float("nan")
        result[name] = {"reference": ref, "big": mine, "p50_ratio": ratio}
        log(f"changes, {name}: reference {ref['p50_ms']:.1f} ms, big {mine['p50_ms']:.1f} ms")
    return result


def combine(results: list[harness.WrkResult]) -> dict[str, Any]:
    return {
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "rps": statistics.median(r.rps for r in results),
        "non2xx": sum(r.non2xx for r in results),
        "socket_errors": sum(r.socket_errors for r in results),
        "runs": [r.as_dict() for r in results],
    }


def explain(database: harness.Database, statement: Any) -> tuple[str, float, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement built by app/tasks/queries.py, compiled
    for PostgreSQL with its values inlined."""
    from sqlalchemy.dialects import postgresql

    sql = str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    rows = database.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
    plan = "\n".join(row[0] for row in rows)
    ms = next(
        (
            float(line.split(":")[1].split()[0])
            for line in plan.splitlines()
            if "Execution Time" in line
        ),
        float("nan"),
    )
    return plan, ms, sql + ";"


def plan_summary(plan: str) -> str:
    """The plan's node names, top down: enough to see index scans vs sorts."""
    nodes = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        if (
            not text
            or ":" in text.split("(")[0]
            or text.startswith(("Planning", "Execution", "Buffers"))
        ):
            continue
        name = text.split("  (")[0]
        nodes.append(name.replace("Index Only Scan", "IOS").replace("Index Scan", "IS"))
    return " > ".join(nodes)


def run(args: argparse.Namespace) -> int:
    wrk = harness.ensure_wrk()
    started = dt.datetime.now(dt.UTC)
    measurements: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    load_before = harness.load_average()
    with harness.environment(args) as (database, env, cli_args):
        settings = harness.gunicorn_settings(env, cli_args)
        log(f"gunicorn settings: {harness.describe_settings(settings)}")
        app = Server("tasks-api", "wsgi:app", env, cli_args, ready_path="/openapi.json")
        with harness.running(app):
            harness.note_worker_in_use(settings, app)
            secret = env["BETTER_AUTH_SECRET"]
            tokens = {u: harness.token_for(secret, u) for u in (SMALL, BIG)}
            api = harness.ApiClient(app.url)
            # 20 tasks: the first four top level, the others their subtasks.
            tops = api.create_tasks(SMALL, tokens[SMALL], [small_task(i) for i in range(1, 5)])
            subtasks = [{**small_task(i), "parent_id": tops[i % 4]} for i in range(5, 21)]
            api.create_tasks(SMALL, tokens[SMALL], subtasks)
            if args.background_tasks:
                seed_background(database, args.background_tasks)
            seed_big(database, BIG, args.big_tasks)
            seed_big(database, MEDIUM, MEDIUM_TASKS)
            tokens[MEDIUM] = harness.token_for(secret, MEDIUM)
            # For each user, a list (the big user's second: not the default) and a top-level
            # task of it that has subtasks.
            places = {}
            for user in (SMALL, BIG):
                row = database.execute(
                    "SELECT l.id, (SELECT p.id FROM tasks p WHERE p.user_id = l.user_id AND "
                    "p.list_id = l.id AND p.parent_id IS NULL AND EXISTS (SELECT 1 FROM tasks "
                    "c WHERE c.user_id = p.user_id AND c.parent_id = p.id) ORDER BY p.position "
                    "LIMIT 1) FROM lists l WHERE l.user_id = %s ORDER BY l.position "
                    "OFFSET %s LIMIT 1",
                    (user, 0 if user == SMALL else 1),
                )[0]
                places[user] = {"list": row[0], "parent": row[1]}
            queries_of = {
                user: {
                    **{name: query for name, (query, _) in QUERIES.items()},
                    **{name: query.format(**places[user]) for name, query in ORGANIZING.items()},
                }
                for user in (SMALL, BIG)
            }

            def measure(
                user: str, query: str, duration: float, route: str = "tasks"
            ) -> harness.WrkResult:
                try:
                    return harness.run_wrk(
                        wrk,
                        app.url + "/",
                        connections=args.connections,
                        duration=duration,
                        timeout_s=args.wrk_timeout,
                        lua_env={
                            "BENCH_PATH": f"/api/{user}/{route}?{query}",
                            "BENCH_TOKEN": tokens[user],
                        },
                    )
                finally:
                    app.wait_idle()

            log("warm-up: 3 s of the default list for each user, not recorded")
            for user in (SMALL, BIG):
                measure(user, f"page_size={PAGE_SIZE}", 3)

            names = list(queries_of[BIG])
            for n, name in enumerate(names, 1):
                small_query = f"page_size={PAGE_SIZE}&{queries_of[SMALL][name]}"
                big_query = f"page_size={PAGE_SIZE}&{queries_of[BIG][name]}"
                small_runs, big_runs = [], []
                for _ in range(args.repeat):  # alternate, so drift hits both users alike
                    small_runs.append(measure(SMALL, small_query, args.duration))
                    big_runs.append(measure(BIG, big_query, args.duration))
                small, big = combine(small_runs), combine(big_runs)
                ratio = big["p50_ms"] / small["p50_ms"] if small["p50_ms"] else float("nan")
                measurements.append({"query": name, "small": small, "big": big, "p50_ratio": ratio})
                failures = sum(x["non2xx"] + x["socket_errors"] for x in (small, big))
                log(
                    f"[{n}/{len(names)}] {name:24} p50 small {small['p50_ms']:6.1f} ms, "
                    f"big {big['p50_ms']:7.1f} ms: {ratio:5.2f}x (failures {failures})"
                )
            q_runs = [
                measure(BIG, f"page_size={PAGE_SIZE}&{Q_QUERY[0]}", args.duration)
                for _ in range(args.repeat)
            ]
            q_result = combine(q_runs)
            log(f"{Q_QUERY[0]}: big p50 {q_result['p50_ms']:.1f} ms")

            tree = measure_tree(api, database, tokens[BIG], BIG, places[BIG]["list"])
            feed = measure_feed(api, tokens, measure, args)

            from app.tasks import queries

            organizing = {
                "list_id + sort=position": {"list_id": places[BIG]["list"], "sort": "position"},
                "parent_id={task}": {"parent_id": places[BIG]["parent"]},
                "list_id + parent_id=none + position": {
                    "list_id": places[BIG]["list"],
                    "parent_id": "none",
                    "sort": "position",
                },
            }
            organizing_args = [(name, ("", list_args)) for name, list_args in organizing.items()]
            for name, (_, list_args) in [*QUERIES.items(), *organizing_args, (Q_QUERY[0], Q_QUERY)]:
                shape, params = queries.list_parameters(BIG, list_args, NOW)
                page = queries.page_statement(shape).params(**params, limit=PAGE_SIZE, offset=0)
                plan, ms, sql = explain(database, page)
                plans.append({"query": name, "sql": sql, "plan": plan, "execution_ms": ms})
            pg_version = database.server_version()

    meta = {
        "date": started.isoformat(timespec="seconds"),
        "machine": harness.machine_note(),
        "load_average_before": load_before,
        "load_average_after": harness.load_average(),
        "postgresql": pg_version,
        "gunicorn": settings,
        "gunicorn_cli_overrides": cli_args,
        "connections": args.connections,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "big_tasks": args.big_tasks,
        "background_tasks": args.background_tasks,
        "small_tasks": 20,
    }
    path = harness.write_json(
        args.json,
        {
            "meta": meta,
            "measurements": measurements,
            "q": q_result,
            "tree": tree,
            "feed": feed,
            "plans": plans,
        },
    )

    print()
    print(f"{meta['date']} · {meta['machine']}")
    print(f"load average (1/5/15 min) before: {load_before}, after: {meta['load_average_after']}")
    print(f"gunicorn: {harness.describe_settings(settings)}; PostgreSQL {pg_version}")
    print(
        f"first page (page_size={PAGE_SIZE}), wrk -t2 -c{args.connections} -d{args.duration:.0f}s; "
        f"user with {args.big_tasks} tasks vs user with 20; median of {args.repeat} run(s)"
        + (f"; {args.background_tasks} tasks of 100 other users" if args.background_tasks else "")
    )
    print()
    rows = [
        [
            m["query"],
            f"{m['small']['p50_ms']:.1f}",
            f"{m['big']['p50_ms']:.1f}",
            f"{m['p50_ratio']:.2f}",
            "ok" if m["p50_ratio"] <= RATIO_TARGET else "MISS",
        ]
        for m in measurements
    ]
    headers = ["query", "p50 small ms", "p50 big ms", "big/small", f"<= {RATIO_TARGET}x"]
    print(harness.format_table(headers, rows))
    q_ok = "ok" if q_result["p50_ms"] <= Q_TARGET_MS else "MISS"
    print(f"\n{Q_QUERY[0]} (1 % of {args.big_tasks} tasks): big p50 {q_result['p50_ms']:.1f} ms "
          f"(<= {Q_TARGET_MS:.0f} ms: {q_ok})")  # fmt: skip
    print()
    print("The changes feed (GET /changes), p50, the big user against its reference:")
    print(
        harness.format_table(
            ["page", "reference p50 ms", "big p50 ms", "big/reference", f"<= {RATIO_TARGET}x"],
            [
                [
                    name,
                    f"{m['reference']['p50_ms']:.1f}",
                    f"{m['big']['p50_ms']:.1f}",
                    f"{m['p50_ratio']:.2f}",
                    "ok" if m["p50_ratio"] <= RATIO_TARGET else "MISS",
                ]
                for name, m in feed.items()
            ],
        )
    )
    print()
    print(f"The tree's writes for {BIG}, one request at a time ({TREE_REPEAT} each):")
    print(
        harness.format_table(
            ["write", "p50 ms", "max ms", "tasks changed each"],
            [
                [k, f"{v['p50_ms']:.1f}", f"{v['max_ms']:.1f}", str(v["tasks"])]
                for k, v in tree.items()
            ],
        )
    )
    print()
    print(f"Plans for {BIG} ({args.big_tasks} tasks), EXPLAIN (ANALYZE, BUFFERS):")
    print()
    print(
        harness.format_table(
            ["query", "execution ms", "plan nodes"],
            [[p["query"], f"{p['execution_ms']:.2f}", plan_summary(p["plan"])] for p in plans],
        )
    )
    for p in plans:
        print(f"\n-- {p['query']}")
        print(p["sql"])
        print(p["plan"])
    print(f"\nJSON: {path}")
    failures = sum(
        m[u]["non2xx"] + m[u]["socket_errors"] for m in measurements for u in ("small", "big")
    )
    if failures:
        print(f"FAILED REQUESTS: {failures} non-2xx or socket errors", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return harness.main(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
