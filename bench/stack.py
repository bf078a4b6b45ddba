"""The gunicorn worker behind nginx: the production shape, measured per worker class.

    .venv/bin/python bench/stack.py                       # every configuration below
    .venv/bin/python bench/stack.py --configs sync-2,gthread-2x2 --duration 5 --repeat 3

For each configuration it brings the production shape up with ``scripts/stack.sh up``
(nginx, two gunicorn instances, PgBouncer in transaction mode, Redis), seeds 20 tasks
through nginx, runs wrk through nginx on the list and on a get at each connection count,
and takes the stack down. It prints req/s, p50, p99, failures and the gunicorn
processes' CPU per response, medians over the repeats. Issue 12, part 3: keep the custom
worker only if it beats the best stock worker by more than 10 % on list and get.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness
from harness import BenchError, WrkResult, log

# name -> (worker class, workers per instance, threads per worker)
CONFIGS = {
    "sync-2": ("sync", 2, 1),
    "sync-4": ("sync", 4, 1),
    "gthread-2x2": ("gthread", 2, 2),
    "balanced-2x2": ("app.workers.BalancedThreadWorker", 2, 2),
}
USER = "bench-stack"
TASKS = 20


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/stack.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"subset of {','.join(CONFIGS)}"
    )
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (2)")
    parser.add_argument("--connections", default="32,256", help="wrk -c values (32,256)")
    parser.add_argument("--json", default="stack.json", help="file under bench/results/")
    args = parser.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    args.connections = [int(c) for c in args.connections.split(",")]
    return args


def stack_up(config: str, secret: str) -> tuple[str, Path]:
    worker_class, workers, threads = CONFIGS[config]
    env = {
        **os.environ,
        **harness.BENCH_DEFAULT_ENV,
        "BETTER_AUTH_SECRET": secret,
        "GUNICORN_WORKER_CLASS": worker_class,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        # wrk drives the stack from one address: nginx's per-address limit would refuse it.
        "NGINX_CONN_PER_ADDRESS": "4096",
    }
    for name in harness.NEUTRALISED_ENV:
        env.pop(name, None)
    proc = subprocess.run(
        [str(harness.REPO / "scripts" / "stack.sh"), "up"],
        cwd=harness.REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BenchError(f"stack.sh up failed:\n{proc.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values["BASE_URL"], Path(values["STATE"])


def stack_down(state: Path) -> None:
    subprocess.run(
        [str(harness.REPO / "scripts" / "stack.sh"), "down", str(state)],
        cwd=harness.REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def gunicorn_pids(state: Path) -> list[int]:
    masters = [
        int(v)
        for k, v in (ln.split("=", 1) for ln in state.read_text().splitlines())
        if k == "GUNICORN_PID"
    ]
    return [pid for master in masters for pid in (master, *harness.child_pids(master))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick  # utime stime cutime cstime
    return total


def measure(
    wrk: str, base: str, state: Path, env: dict[str, str], connections: int, duration: float
) -> WrkResult:
    pids = gunicorn_pids(state)
    before = cpu_seconds(pids)
    result = harness.run_wrk(
        wrk, base + "/", connections=connections, duration=duration, lua_env=env
    )
    if result.requests:
        result.server_cpu_us = (cpu_seconds(pids) - before) / result.requests * 1e6
    time.sleep(1)
    return result


def run(args: argparse.Namespace) -> int:
    wrk = harness.ensure_wrk()
    secret = harness.new_secret()
    token = harness.token_for(secret, USER)
    rows: list[dict[str, Any]] = []
    for config in args.configs:
        log(f"{config}: scripts/stack.sh up")
        base, state = stack_up(config, secret)
        try:
            api = harness.ApiClient(base)
            ids = api.create_tasks(USER, token, [{"title": f"Task {i}"} for i in range(TASKS)])
            routes = {
                "list": {"BENCH_PATH": f"/api/{USER}/tasks?page_size={TASKS}"},
                "get": {
                    "BENCH_PATH": f"/api/{USER}/tasks/{{id}}",
                    "BENCH_IDS": ",".join(map(str, ids)),
                },
            }
            for connections in args.connections:
                for route, extra in routes.items():
                    env = {"BENCH_METHOD": "GET", "BENCH_TOKEN": token, **extra}
                    runs = [
                        measure(wrk, base, state, env, connections, args.duration)
                        for _ in range(args.repeat)
                    ]
                    row = {
                        "config": config,
                        "route": route,
                        "connections": connections,
                        "rps": statistics.median(r.rps for r in runs),
                        "p50_ms": statistics.median(r.p50_ms for r in runs),
                        "p99_ms": statistics.median(r.p99_ms for r in runs),
                        "failures": sum(r.non2xx + r.socket_errors for r in runs),
                        "server_cpu_us": statistics.median(r.server_cpu_us or 0 for r in runs),
                    }
                    rows.append(row)
                    log(
                        f"{config:13} {route:4} c={connections:<3} {row['rps']:7.0f} req/s  "
                        f"p50 {row['p50_ms']:6.1f}  p99 {row['p99_ms']:6.1f}  "
                        f"failures {row['failures']}"
                    )
        finally:
            stack_down(state)
    print(harness.format_table(
        ["config", "route", "conns", "req/s", "p50 ms", "p99 ms", "failures", "CPU µs/req"],
        [[r["config"], r["route"], r["connections"], f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}",
          f"{r['p99_ms']:.1f}", r["failures"], f"{r['server_cpu_us']:.0f}"] for r in rows],
    ))  # fmt: skip
    path = harness.write_json(args.json, {"date": time.strftime("%Y-%m-%d"), "results": rows})
    log(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return harness.main(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
