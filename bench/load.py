"""Benchmark: 200 uploaders at once against gunicorn with two web workers, while the Celery
worker processes what they send.

    .venv/bin/python bench/load.py [--users 200] [--rounds 2] [--unloaded-rounds 30]
        [--database-url postgresql://USER:PASSWORD@127.0.0.1:5432/NAME [--redis-url redis://127.0.0.1:6379/3]]

Starts a throwaway installation (by default the embedded one: SQLite and the file broker in
its own WORKDIR; with --database-url on that PostgreSQL database, dropped and created anew,
and Redis, whose database is emptied), gunicorn as the image starts it with two workers,
and the default worker (one process, --concurrency 2). Rate limiting is off for the run: the
uploads all come from one address with one token, which a real installation would rightly
slow down, and the limiter's 429s are not what is measured.

locust (bench/load_users.py, headless, 127.0.0.1 only) then runs two phases against it:

- unloaded: one user, --unloaded-rounds rounds, each: upload a small born-digital PDF (text
  of its own, so no upload is a duplicate), read its status, read the files list;
- load: --users users at once, --rounds rounds each, the same requests.

Then it waits until the worker has finished every document, and checks: no answer was a 5xx
(nor went unanswered), every accepted upload is one document, completed, each step run
once and finalized once, and no process logged "database is locked". It prints p50 and p95
per request in both phases, and the ratio p95 under load ÷ p95 unloaded (same requests, same
client, same run). Exits non-zero if a check fails. Each phase and the wait are bounded by
--max-seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    PROJECT_DIR,
    api_token,
    installation_create,
    settled_problems,
    stack_env,
    stack_name,
    stack_reset,
    start_gunicorn,
    stop_gunicorn,
    verdict,
    wait_settled,
    workers,
)

REQUESTS = ("upload", "status", "list")


def run_locust(
    url: str, token: str, *, users: int, rounds: int, phase: str, folder: Path, max_seconds: int
) -> dict[str, Any]:
    """One locust phase; what bench/load_users.py recorded, and the phase's seconds."""
    results = folder / f"locust-{phase}.json"
    env = {
        **os.environ, "LOAD_TOKEN": token, "LOAD_ROUNDS": str(rounds), "LOAD_PHASE": phase,
        "LOAD_RESULTS": str(results),
    }  # fmt: skip
    started = time.monotonic()
    with (folder / f"locust-{phase}.txt").open("wb") as output:
        # Every user starts within the first second or two: they are concurrent uploaders,
        # not a slow ramp.
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(PROJECT_DIR / "bench" / "load_users.py"),
             "--headless", "--host", url, "--users", str(users), "--spawn-rate", str(max(users, 1)),
             "--run-time", f"{max_seconds}s", "--stop-timeout", "30", "--only-summary",
             "--loglevel", "WARNING"],
            cwd=PROJECT_DIR / "bench", env=env, stdout=output, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if not results.exists():
        raise SystemExit(f"locust wrote no results:\n{(folder / f'locust-{phase}.txt').read_text()[-4000:]}")
    recorded: dict[str, Any] = json.loads(results.read_text())
    recorded["seconds"] = time.monotonic() - started
    return recorded


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` of 1) of ``values``; nan when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(unloaded: dict[str, Any], loaded: dict[str, Any]) -> None:
    print(f"\n{'request':<8} {'count':>6} {'p50 unloaded':>13} {'p95 unloaded':>13} {'p50 load':>10}"
          f" {'p95 load':>10} {'p95 ratio':>10}")  # fmt: skip
    everything: dict[str, list[float]] = {"unloaded": [], "load": []}
    for name in REQUESTS:
        quiet, busy = unloaded["times"].get(name, []), loaded["times"].get(name, [])
        everything["unloaded"] += quiet
        everything["load"] += busy
        print(
            f"{name:<8} {len(busy):>6} {percentile(quiet, 0.5):>10.1f} ms {percentile(quiet, 0.95):>10.1f} ms"
            f" {percentile(busy, 0.5):>7.0f} ms {percentile(busy, 0.95):>7.0f} ms"
            f" {percentile(busy, 0.95) / percentile(quiet, 0.95):>10.1f}"
        )
    quiet, busy = everything["unloaded"], everything["load"]
    print(
        f"{'all':<8} {len(busy):>6} {percentile(quiet, 0.5):>10.1f} ms {percentile(quiet, 0.95):>10.1f} ms"
        f" {percentile(busy, 0.5):>7.0f} ms {percentile(busy, 0.95):>7.0f} ms"
        f" {percentile(busy, 0.95) / percentile(quiet, 0.95):>10.1f}"
    )
    # Under load the users wait mostly in gunicorn's queue: their latency is about the number
    # of users over the requests served a second.
    for phase, recorded, count in (("unloaded", unloaded, len(quiet)), ("load", loaded, len(busy))):
        print(f"{phase}: {count} requests in {recorded['seconds']:.0f} s (with locust's start),"
              f" {count / recorded['seconds']:.1f} a second")  # fmt: skip


def answer_problems(phase: str, recorded: dict[str, Any]) -> list[str]:
    """5xx answers and requests that got no answer, per request name."""
    problems = []
    for name, counts in recorded["statuses"].items():
        for code, count in counts.items():
            if int(code) >= 500 or int(code) == 0:
                problems.append(f"{phase}: {count} x {name} answered {code or 'nothing'}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="uploads (each with two reads) per user")
    parser.add_argument("--unloaded-rounds", type=int, default=30)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and create for the run")
    parser.add_argument("--redis-url", help="Redis for broker and cache (default with --database-url: db 3)")
    parser.add_argument("--max-seconds", type=int, default=900, help="bound of each phase and the wait")
    args = parser.parse_args()
    redis_url = args.redis_url or ("redis://127.0.0.1:6379/3" if args.database_url else None)

    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    logs = scratch / "logs"
    logs.mkdir()
    problems: list[str] = []
    stack_reset(database_url=args.database_url, redis_url=redis_url)
    env = stack_env(
        scratch / "workdir", database_url=args.database_url, redis_url=redis_url,
        RATE_LIMITING_ENABLED="false", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    installation_create(env)
    token = api_token(env)
    print(f"stack: {stack_name(args.database_url)}; gunicorn with {args.web_workers} workers;"
          f" load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    server, url = start_gunicorn(env, logs / "gunicorn.log", web_workers=args.web_workers)
    try:
        with workers(env, logs / "worker.log", concurrency=2):
            print(f"unloaded: 1 user x {args.unloaded_rounds} rounds", flush=True)
            unloaded = run_locust(
                url, token, users=1, rounds=args.unloaded_rounds, phase="unloaded", folder=logs,
                max_seconds=args.max_seconds,
            )  # fmt: skip
            print(f"load: {args.users} users x {args.rounds} rounds", flush=True)
            loaded = run_locust(
                url, token, users=args.users, rounds=args.rounds, phase="load", folder=logs,
                max_seconds=args.max_seconds,
            )  # fmt: skip
            print(f"  {loaded['seconds']:.0f} s, load average {os.getloadavg()[0]:.1f};"
                  " waiting for the worker to finish every document", flush=True)  # fmt: skip
            accepted = set(unloaded["accepted"]) | set(loaded["accepted"])
            check, waited = wait_settled(env, len(accepted), max_seconds=args.max_seconds)
    finally:
        stop_gunicorn(server)

    report(unloaded, loaded)
    planned = args.unloaded_rounds + args.users * args.rounds
    statuses = check["statuses"]
    print(f"\nuploads planned {planned}, accepted {len(accepted)}, documents {len(check['ids'])}"
          f" ({dict(statuses)}), distinct contents {check['distinct_hashes']};"
          f" the worker finished {waited:.0f} s after the load")  # fmt: skip
    problems += answer_problems("unloaded", unloaded) + answer_problems("load", loaded)
    problems += [f"refused: {line}" for line in unloaded["refused"] + loaded["refused"]][:10]
    if len(accepted) != planned:
        problems.append(f"{planned - len(accepted)} uploads were not accepted")
    if set(check["ids"]) != accepted:
        problems.append(f"documents {sorted(set(check['ids']) ^ accepted)[:20]} differ from the accepted")
    problems += settled_problems(check, len(accepted), logs)
    verdict(
        problems,
        logs=logs,
        scratch=scratch,
        success="zero 5xx, every document completed exactly once, no 'database is locked'",
    )


if __name__ == "__main__":
    main()
