"""Benchmark: a batch of 12 documents through the pipeline against plain ocrmypdf, and two
worker processes against one, in one run.

    .venv/bin/python bench/throughput.py [--rounds 1] [--files linn.pdf,skew.pdf,...]
        [--variants 3] [--only batch|scale]

The batch is the corpus scans (bench/pipeline.py's files) in three variants each: the same
pages under a different document title, so each is a new document to the ingest's
duplicate check and the same OCR work to every contestant. Each round times, one after
another on the same batch:

- plain ``ocrmypdf -l eng+deu --skip-text`` on the files one after another (the baseline);
- the pipeline with the default worker (one instance, ``--concurrency 2`` as ``make run`` and
  the image start it), from the first upload to the last completed document;
- one worker process (``--concurrency 1``) and two (two instances of one process each,
  under different names, as two pods would run).

Every pipeline run is a fresh throwaway installation (SQLite, embedded broker, its own
WORKDIR). Prints the medians, the ratio default worker / plain (target <= 0.75: the pipeline
works on several documents at once, plain cannot) and the throughput of two processes over
one (target >= 1.7). The machine is shared and noisy: compare ratios, not seconds, and use
--rounds to repeat the contestants alternately; the spread of the ratios is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
from _common import (
    CORPUS_SCANS,
    corpus_files,
    ingest_and_wait,
    installation_create,
    installation_env,
    installation_summary,
    plain_ocrmypdf,
    workers,
)

DEFAULT_WORKER_CONCURRENCY = 2  # WORKER_CONCURRENCY's default in scripts/run_embedded.py and the image
TARGET_BATCH = 0.75
TARGET_SCALE = 1.7


def make_batch(files: list[Path], variants: int, folder: Path) -> list[Path]:
    """Each file in ``variants`` copies that differ only in their title."""
    folder.mkdir(parents=True, exist_ok=True)
    batch = []
    for number in range(1, variants + 1):
        for path in files:
            target = folder / f"{path.stem}-{number}{path.suffix}"
            with pikepdf.open(path) as pdf:
                pdf.docinfo["/Title"] = f"{path.stem}, variant {number}"
                pdf.save(target)
            batch.append(target)
    return batch


def installation_template(scratch: Path) -> Path:
    """A migrated installation with its operator, copied for each run: migrating SQLite
    afresh every time took longer than some of the runs."""
    template = scratch / "template"
    installation_create(installation_env(template))
    return template


@dataclass(frozen=True)
class Timing:
    seconds: float  # wall clock
    cpu: float  # CPU seconds of every process the contestant started

    @property
    def cores(self) -> float:
        """Cores busy on average: what a contestant can gain from more processes is bounded
        by the cores it leaves idle."""
        return self.cpu / self.seconds


def children_cpu() -> float:
    """CPU seconds of this process's finished children and everything they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_plain(batch: list[Path], scratch: Path) -> Timing:
    cpu = children_cpu()
    seconds = plain_ocrmypdf(batch, scratch)
    return Timing(seconds, children_cpu() - cpu)


def run_pipeline(
    batch: list[Path], scratch: Path, *, count: int, concurrency: int, settings: dict[str, str]
) -> Timing:
    """The batch processed in a fresh installation with ``count`` workers of ``concurrency``
    processes; every document must end completed. The CPU seconds are the workers' and the
    ingest's (the programs they ran included), counted once the workers have stopped."""
    workdir = scratch / f"workdir-{uuid.uuid4().hex}"
    try:
        shutil.copytree(scratch / "template", workdir)
        env = installation_env(workdir, **settings)
        log = workdir / "worker.log"
        cpu = children_cpu()
        with workers(env, log, count=count, concurrency=concurrency) as started:
            elapsed, _own, _tree = ingest_and_wait(env, batch, [worker.pid for worker in started], log)
        cpu = children_cpu() - cpu
        summary: dict[str, Any] = installation_summary(env)
        statuses = [status for status, _file, _pages in summary["docs"]]
        if len(statuses) != len(batch) or set(statuses) != {"completed"}:
            raise SystemExit(f"documents ended {statuses}")
        return Timing(elapsed, cpu)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def spread(values: list[float]) -> str:
    return f"min {min(values):.2f}, max {max(values):.2f}" if len(values) > 1 else "one round"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--files", default=CORPUS_SCANS)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--only", choices=["batch", "scale"], help="only one of the two comparisons")
    parser.add_argument(
        "--ocr-jobs", type=int, help="OCR_JOBS for the one/two process runs (default: the setting's default)"
    )
    args = parser.parse_args()
    files = corpus_files(args.files)

    scratch = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    scale = {"OCR_JOBS": str(args.ocr_jobs)} if args.ocr_jobs else {}
    contestants: dict[str, Callable[[list[Path]], Timing]] = {}
    if args.only != "scale":
        contestants["plain"] = lambda batch: run_plain(batch, scratch)
        contestants["default"] = lambda batch: run_pipeline(
            batch, scratch, count=1, concurrency=DEFAULT_WORKER_CONCURRENCY, settings={}
        )
    if args.only != "batch":
        contestants["one"] = lambda batch: run_pipeline(
            batch, scratch, count=1, concurrency=1, settings=scale
        )
        contestants["two"] = lambda batch: run_pipeline(
            batch, scratch, count=2, concurrency=1, settings=scale
        )
    timings: dict[str, list[Timing]] = {name: [] for name in contestants}
    try:
        batch = make_batch(files, args.variants, scratch / "batch")
        installation_template(scratch)
        for round_number in range(1, args.rounds + 1):
            # Alternate the order too, so a load that comes and goes does not always hit the same one.
            order = list(contestants) if round_number % 2 else list(reversed(contestants))
            for name in order:
                timings[name].append(contestants[name](batch))
            line = ", ".join(
                f"{name} {timings[name][-1].seconds:.1f} s ({timings[name][-1].cores:.2f} cores busy)"
                for name in contestants
            )
            print(f"round {round_number}: {line}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nbatch: {len(batch)} documents ({', '.join(path.name for path in files)} x {args.variants})")
    jobs = f", OCR_JOBS={args.ocr_jobs}" if args.ocr_jobs else ""
    labels = {
        "plain": "plain ocrmypdf, one after another",
        "default": f"pipeline, default worker (concurrency {DEFAULT_WORKER_CONCURRENCY})",
        "one": f"pipeline, one worker process{jobs}",
        "two": f"pipeline, two worker processes{jobs}",
    }
    times = {name: [timing.seconds for timing in values] for name, values in timings.items()}
    for name, values in timings.items():
        print(
            f"{labels[name] + ':':<48} {statistics.median(times[name]):6.1f} s (median of {len(values)}),"
            f" {statistics.median(timing.cores for timing in values):.2f} cores busy"
        )
    if "plain" in times:
        ratios = [default / plain for default, plain in zip(times["default"], times["plain"], strict=True)]
        print(
            f"ratio default worker / plain:                    {statistics.median(ratios):.2f}"
            f"  (target <= {TARGET_BATCH}; per round {spread(ratios)})"
        )
    if "one" in times:
        ratios = [one / two for one, two in zip(times["one"], times["two"], strict=True)]
        print(
            f"throughput two processes / one:                  {statistics.median(ratios):.2f}"
            f"  (target >= {TARGET_SCALE}; per round {spread(ratios)})"
        )
        # Two processes can at best keep every core busy: their gain over one is bounded by
        # the cores one process already keeps busy (OCR of a file's pages runs in parallel).
        # Only on an otherwise idle machine: under others' load a process gets a share of a core.
        busy = statistics.median(timing.cores for timing in timings["one"])
        cores = os.cpu_count() or 1
        print(f"  bound on {cores} idle cores, over one process's {busy:.2f} cores busy: {cores / busy:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 minute) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
