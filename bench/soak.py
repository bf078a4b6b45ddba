"""Soak: a mixed load for five minutes, sampling each gunicorn worker's RSS every 10 s.

    .venv/bin/python bench/soak.py                      # or: bench/run.py --soak
    .venv/bin/python bench/soak.py --max-requests 0     # no worker recycling: raw growth

Workers are the children of the gunicorn master; RSS is VmRSS from /proc/<pid>/status.
Growth is measured from the first sample under load (imports, pools and caches warmed)
to the last one, per worker that lived through the whole run and for all workers
together. gunicorn.conf.py recycles workers (max_requests), which resets their memory;
replaced workers are counted and reported, and --max-requests 0 shows what the
recycling would otherwise hide.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from typing import Any

import harness
from harness import BenchError, Server, log

READER, WRITER = "soak-reader", "soak-writer"
GROWTH_TARGET_PCT = 10.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (300)")
    parser.add_argument(
        "--interval", type=float, default=10, help="seconds between RSS samples (10)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument("--wrk-timeout", type=float, default=2, help="wrk --timeout in seconds (2)")
    parser.add_argument("--json", default="soak.json", help="file name under bench/results/")
    harness.add_gunicorn_options(parser)
    return parser.parse_args(argv)


def sample(app: Server, t: float) -> dict[str, Any]:
    rss = {}
    for pid in app.worker_pids():
        value = harness.rss_kib(pid)
        if value is not None:
            rss[pid] = value
    return {"t": round(t, 1), "rss_kib": rss, "master_rss_kib": harness.rss_kib(app.proc.pid)}


def growth(first: int, last: int) -> float:
    return 100.0 * (last - first) / first if first else float("nan")


def run(args: argparse.Namespace) -> int:
    wrk = harness.ensure_wrk()
    started = dt.datetime.now(dt.UTC)
    samples: list[dict[str, Any]] = []
    with harness.environment(args) as (_database, env, cli_args):
        settings = harness.gunicorn_settings(env, cli_args)
        log(f"gunicorn settings: {harness.describe_settings(settings)}")
        app = Server("tasks-api", "wsgi:app", env, cli_args, ready_path="/openapi.json")
        with harness.running(app):
            harness.note_worker_in_use(settings, app)
            secret = env["BETTER_AUTH_SECRET"]
            tokens = {u: harness.token_for(secret, u) for u in (READER, WRITER)}
            api = harness.ApiClient(app.url)
            reader_ids = api.create_tasks(
                READER,
                tokens[READER],
                [{"title": f"Soak task {i:02d}", "description": f"note {i}"} for i in range(20)],
            )
            writer_ids = api.create_tasks(
                WRITER, tokens[WRITER], [{"title": f"Writable {i}"} for i in range(256)]
            )
            samples.append(sample(app, 0.0))
            log(f"idle after seeding: workers {samples[0]['rss_kib']} KiB")

            lua_env = {
                "BENCH_READER": READER,
                "BENCH_READER_TOKEN": tokens[READER],
                "BENCH_READER_IDS": ",".join(map(str, reader_ids)),
                "BENCH_WRITER": WRITER,
                "BENCH_WRITER_TOKEN": tokens[WRITER],
                "BENCH_WRITER_IDS": ",".join(map(str, writer_ids)),
                "BENCH_THREADS": str(harness.WRK_THREADS),
            }
            command = [
                wrk,
                f"-t{harness.WRK_THREADS}",
                f"-c{args.connections}",
                f"-d{max(1, round(args.duration))}s",
                "--latency",
                f"--timeout={max(1, round(args.wrk_timeout))}s",
                "-s",
                str(harness.MIXED_LUA_SCRIPT),
                app.url + "/",
            ]
            log(
                f"mixed load for {args.duration:.0f} s at {args.connections} connections; "
                f"RSS every {args.interval:.0f} s"
            )
            load_started = time.monotonic()
            proc = subprocess.Popen(
                command,
                env={**os.environ, **lua_env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                next_at = load_started + args.interval
                hard_stop = load_started + args.duration + 60
                while proc.poll() is None and time.monotonic() < hard_stop:
                    time.sleep(max(0.0, min(1.0, next_at - time.monotonic())))
                    if time.monotonic() >= next_at and proc.poll() is None:
                        s = sample(app, time.monotonic() - load_started)
                        samples.append(s)
                        log(
                            f"t={s['t']:5.0f} s  "
                            + "  ".join(
                                f"{pid}: {kib / 1024:.1f} MiB" for pid, kib in s["rss_kib"].items()
                            )
                        )
                        next_at += args.interval
                if proc.poll() is None:
                    raise BenchError("wrk did not finish in time")
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            if proc.returncode != 0:
                raise BenchError(f"wrk failed ({proc.returncode}): {err.strip()}\n{out}")
            result = harness.parse_wrk(out)
            app.wait_idle()
            samples.append(sample(app, time.monotonic() - load_started))

    loaded = [s for s in samples[1:] if s["rss_kib"]]
    if len(loaded) < 2:
        raise BenchError("fewer than two samples under load; run longer than --interval")
    first, last = loaded[0], loaded[-1]
    pids_seen = sorted({pid for s in samples for pid in s["rss_kib"]})
    survivors = [pid for pid in first["rss_kib"] if all(pid in s["rss_kib"] for s in loaded)]
    per_worker = {pid: growth(first["rss_kib"][pid], last["rss_kib"][pid]) for pid in survivors}
    total_first, total_last = sum(first["rss_kib"].values()), sum(last["rss_kib"].values())
    max_first = max(first["rss_kib"].values())
    max_seen = max(v for s in loaded for v in s["rss_kib"].values())
    workers = int(settings.get("workers", "0") or 0)
    replaced = max(0, len(pids_seen) - workers)
    summary = {
        "total_growth_pct": growth(total_first, total_last),
        "per_worker_growth_pct": per_worker,
        "largest_worker_growth_pct": growth(max_first, max_seen),
        "workers_replaced": replaced,
    }
    path = harness.write_json(
        args.json,
        {
            "meta": {
                "date": started.isoformat(timespec="seconds"),
                "machine": harness.machine_note(),
                "gunicorn": settings,
                "gunicorn_cli_overrides": cli_args,
                "duration_s": args.duration,
                "connections": args.connections,
            },
            "samples": [
                {**s, "rss_kib": {str(k): v for k, v in s["rss_kib"].items()}} for s in samples
            ],
            "wrk": result.as_dict(),
            "summary": {
                **summary,
                "per_worker_growth_pct": {str(k): v for k, v in per_worker.items()},
            },
        },
    )

    print()
    print(f"{started.isoformat(timespec='seconds')} · {harness.machine_note()}")
    print(
        f"gunicorn: {harness.describe_settings(settings)}"
        + (f" (flags: {' '.join(cli_args)})" if cli_args else "")
    )
    print(
        f"mixed load, wrk -t{harness.WRK_THREADS} -c{args.connections} -d{args.duration:.0f}s: "
        f"{result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"non-2xx {result.non2xx} {result.statuses or ''}, socket errors {result.socket_errors}"
    )
    print()
    rows = [
        [
            f"{s['t']:.0f}",
            " ".join(f"{pid}:{kib / 1024:.1f}" for pid, kib in s["rss_kib"].items()),
            f"{sum(s['rss_kib'].values()) / 1024:.1f}",
        ]
        for s in samples
    ]
    print(harness.format_table(["t s", "worker pid:RSS MiB", "total MiB"], rows))
    print()
    print(f"RSS growth from t={first['t']:.0f} s to t={last['t']:.0f} s:")
    for pid, pct in per_worker.items():
        print(
            f"  worker {pid}: {first['rss_kib'][pid] / 1024:.1f} -> "
            f"{last['rss_kib'][pid] / 1024:.1f} MiB, {pct:+.1f} %"
        )
    print(
        f"  all workers: {total_first / 1024:.1f} -> {total_last / 1024:.1f} MiB, "
        f"{summary['total_growth_pct']:+.1f} %"
    )
    print(
        f"  largest worker seen vs largest at t={first['t']:.0f} s: "
        f"{summary['largest_worker_growth_pct']:+.1f} %"
    )
    if replaced:
        print(
            f"  {replaced} worker(s) replaced during the run (max_requests recycling or a "
            f"crash): their growth restarted from zero; --max-requests 0 shows raw growth"
        )
    worst = max(
        [summary["total_growth_pct"], summary["largest_worker_growth_pct"], *per_worker.values()]
    )
    print(
        f"  {'ok  ' if worst < GROWTH_TARGET_PCT else 'MISS'} growth < {GROWTH_TARGET_PCT:.0f} % "
        f"(worst figure above: {worst:+.1f} %)"
    )
    print(f"\nJSON: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return harness.main(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
