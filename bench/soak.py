"""Benchmark: a soak of 2,000 small documents through a whole installation.

    .venv/bin/python bench/soak.py [--documents 2000] [--baseline-sample 40] [--max-minutes 60]
        [--database-url postgresql://USER:PASSWORD@127.0.0.1:5432/NAME [--redis-url redis://127.0.0.1:6379/3]]

Makes --documents one-page born-digital PDFs, each with text of its own (no two are
duplicates), and hands them all to a throwaway installation with ``manage.py ingest`` (by
default the embedded one: SQLite and the file broker; with --database-url on that
PostgreSQL database, dropped and created anew, and Redis, whose database is emptied), where
the default worker (one process, --concurrency 2) processes them. Progress is printed as
they settle; the run is bounded by --max-minutes.

Checks: none lost (every file is one document), none stuck (every document completed, none
pending or processing at the end), each step run once and finalized once, and no process
logged "database is locked". Exits non-zero if a check fails.

Prints the counts, the elapsed time from the ingest's start to the last document settled,
documents a minute, and the ratio against the baseline a user would otherwise run: plain
``ocrmypdf --skip-text`` file after file over a sample of the same files (--baseline-sample,
timed first in the same run and counted as documents a minute). Above 1, the installation
gets through more documents a minute than plain ocrmypdf would, with everything it adds
(storage, metadata, search index, the log of every step) included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    MANAGE,
    PROJECT_DIR,
    installation_create,
    plain_ocrmypdf,
    settled_problems,
    small_pdf,
    stack_env,
    stack_name,
    stack_reset,
    verdict,
    wait_settled,
    workers,
)


def make_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    files = []
    for number in range(1, count + 1):
        path = folder / f"soak-{number:05d}.pdf"
        path.write_bytes(small_pdf(f"soak {number:05d}"))
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--baseline-sample", type=int, default=40, help="files plain ocrmypdf is timed on")
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and create for the run")
    parser.add_argument("--redis-url", help="Redis for broker and cache (default with --database-url: db 3)")
    parser.add_argument("--max-minutes", type=float, default=60, help="bound of the wait for the documents")
    args = parser.parse_args()
    redis_url = args.redis_url or ("redis://127.0.0.1:6379/3" if args.database_url else None)

    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    logs = scratch / "logs"
    logs.mkdir()
    files = make_files(scratch / "files", args.documents)
    print(f"stack: {stack_name(args.database_url)}; {len(files)} documents;"
          f" load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip

    sample = files[:: max(1, len(files) // args.baseline_sample)][: args.baseline_sample]
    plain_seconds = plain_ocrmypdf(sample, scratch)
    plain_rate = len(sample) / plain_seconds * 60
    print(f"plain ocrmypdf --skip-text, {len(sample)} files one after another: {plain_seconds:.1f} s,"
          f" {plain_rate:.1f} documents a minute", flush=True)  # fmt: skip

    stack_reset(database_url=args.database_url, redis_url=redis_url)
    env = stack_env(scratch / "workdir", database_url=args.database_url, redis_url=redis_url)
    installation_create(env)
    with workers(env, logs / "worker.log", concurrency=2):
        started = time.monotonic()
        with (logs / "ingest.log").open("wb") as output:
            ingest = subprocess.Popen(
                [*MANAGE, "ingest", *map(str, files)], cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL,
                stderr=output,
            )  # fmt: skip
            check, _waited = wait_settled(env, len(files), max_seconds=args.max_minutes * 60, interval=15)
            elapsed = time.monotonic() - started
            if ingest.wait(timeout=600) != 0:
                print(f"the ingest command exited with {ingest.returncode}", flush=True)
    load = " ".join(f"{average:.1f}" for average in os.getloadavg())

    statuses = check["statuses"]
    rate = statuses.get("completed", 0) / elapsed * 60
    print(f"\n{stack_name(args.database_url)}: {len(files)} files, {len(check['ids'])} documents"
          f" ({dict(statuses)}), {check['distinct_hashes']} distinct contents")  # fmt: skip
    print(f"elapsed {elapsed / 60:.1f} min from the ingest's start to the last document settled;"
          f" {rate:.1f} documents a minute; load average {load}")  # fmt: skip
    print(f"documents a minute ÷ plain ocrmypdf's: {rate / plain_rate:.2f}")

    problems = []
    if len(check["ids"]) != len(files) or check["distinct_hashes"] != len(files):
        problems.append(f"lost: {len(files) - check['distinct_hashes']} files are not a document")
    problems += settled_problems(check, len(files), logs)
    verdict(
        problems,
        logs=logs,
        scratch=scratch,
        success="none lost, none stuck, each finalized once, no 'database is locked'",
    )


if __name__ == "__main__":
    main()
