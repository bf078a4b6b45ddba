"""Where a route's time goes under load: py-spy on one gunicorn worker while wrk drives it.

    .venv/bin/python bench/profile.py                       # list, get, create, toggle
    .venv/bin/python bench/profile.py --routes list --duration 20

The service runs as bench/run.py runs it (gunicorn.conf.py, PostgreSQL, every production
feature on: metrics, rate limits, CORS, ETags, the request log), seeded the same way. For
each route, wrk sends load for ``--duration`` seconds while ``py-spy record`` samples one
worker (the GIL-holding samples only: time the worker spends waiting on the database or
the network is the database's and the kernel's, not Python's). It prints, per route, the
share of samples by layer (the package a frame's code is in, counted once per sample) and
the functions with the most samples of their own. Worker recycling (max_requests) is off
unless asked for, so that the profiled worker lives through the run. bench/README.md keeps
the figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import run as bench_run
from harness import Server, log

ROUTES = ("list", "get", "create", "toggle")
# The layers a sample's frames are counted in, by the path of their file.
LAYERS = {
    "app": "app",
    "flask_smorest": "flask-smorest",
    "webargs": "webargs",
    "marshmallow": "marshmallow",
    "flask_cors": "flask-cors",
    "flask": "flask",
    "werkzeug": "werkzeug",
    "sqlalchemy": "sqlalchemy",
    "psycopg2": "psycopg2",
    "gunicorn": "gunicorn",
    "limits": "limits",
    "prometheus_client": "prometheus_client",
    "logging": "logging",
    "jwt": "pyjwt",
    "json": "json",
    "fractional_indexing.py": "fractional-indexing",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", default=",".join(ROUTES), help=f"of {','.join(ROUTES)}")
    parser.add_argument("--duration", type=float, default=15, help="seconds per route (15)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (200)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per route (25)")
    harness.add_gunicorn_options(parser)
    args = parser.parse_args(argv)
    args.routes = [r for r in args.routes.split(",") if r]
    if args.max_requests is None:
        args.max_requests = 0  # the profiled worker must live through the run
    # What bench/run.py's seeding and Lua environment read.
    args.no_status_hook, args.duration_run, args.wrk_timeout = False, args.duration, 10.0
    return args


def layer(frame: str) -> str:
    """A frame ``function (path/file.py:line)``: the package its file is in."""
    path = frame.rpartition(" (")[2]
    return LAYERS.get(path.split("/", 1)[0], "other")


Summary = tuple[int, collections.Counter[str], collections.Counter[str], collections.Counter[str]]


def summarise(raw: str) -> Summary:
    """py-spy's raw (collapsed) stacks: total samples, samples per layer (each layer once
    per sample), samples per layer of their own (the innermost frame in a named layer: a
    standard-library frame counts for the package that called it), samples per innermost
    function."""
    total = 0
    layers: collections.Counter[str] = collections.Counter()
    own_layers: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        named = [layer(frame) for frame in frames]
        for name in set(named):
            layers[name] += n
        own_layers[next((name for name in reversed(named) if name != "other"), "other")] += n
        own[frames[-1]] += n
    return total, layers, own_layers, own


def profile(py_spy: str, pid: int, seconds: float, rate: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "stacks.txt"
        command = [py_spy, "record", "--pid", str(pid), "--duration", str(round(seconds)),
                   "--rate", str(rate), "--format", "raw", "--gil",
                   "--output", str(out)]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=seconds + 60)
        return out.read_text()


def start_wrk(
    wrk: str, url: str, connections: int, seconds: float, lua: dict[str, str]
) -> subprocess.Popen[str]:
    """wrk with bench/run.py's Lua script, in the background."""
    command = [wrk, "-t2", f"-c{connections}", f"-d{round(seconds)}s", "-s",
               str(harness.LUA_SCRIPT), url]  # fmt: skip
    env = {**os.environ, **lua, "BENCH_THREADS": "2"}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


def run(args: argparse.Namespace) -> int:
    wrk = harness.ensure_wrk()
    py_spy = harness.venv_bin("py-spy")
    report = []
    with harness.environment(args) as (database, env, cli_args):
        app = Server("tasks-api", "wsgi:app", env, cli_args, ready_path="/openapi.json")
        with harness.running(app):
            bench = bench_run.Bench(args, wrk, database, env, app, None, None)  # type: ignore[arg-type]
            bench.seed()
            for route in args.routes:
                lua = bench.lua_env(route, args.connections, None)
                worker = app.worker_pids()[0]
                started = time.monotonic()
                load = start_wrk(wrk, app.url + "/", args.connections, args.duration + 3, lua)
                try:
                    time.sleep(1)  # past the start
                    raw = profile(py_spy, worker, args.duration, args.rate)
                finally:
                    load.wait(timeout=args.duration + 60)
                log(f"{route}: profiled worker {worker} for {time.monotonic() - started:.0f} s")
                app.wait_idle()
                if route in bench_run.WRITE_ROUTES:
                    bench.settle()
                report.append((route, *summarise(raw)))
    for route, total, layers, own_layers, own in report:
        print(f"\n## {route}: {total} samples (GIL held), by layer: its own samples (the "
              "innermost named layer) and every sample it is in\n")  # fmt: skip
        rows = [
            [name, f"{100 * own_layers[name] / total:.1f} %", f"{100 * n / total:.1f} %"]
            for name, n in sorted(layers.items(), key=lambda item: -own_layers[item[0]])
        ]
        print(harness.format_table(["layer", "own", "within"], rows))
        print(f"\nfunctions with the most samples of their own ({route}):\n")
        rows = [[f, str(n), f"{100 * n / total:.1f} %"] for f, n in own.most_common(args.top)]
        print(harness.format_table(["function (file:line)", "samples", "share"], rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    return harness.main(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
