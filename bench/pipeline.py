"""Benchmark: the full pipeline with a real worker against plain ocrmypdf, in one run.

    .venv/bin/python bench/pipeline.py [--rounds 1] [--files linn.pdf,skew.pdf,...]

Times plain ``ocrmypdf -l eng+deu --skip-text`` on the corpus files (the baseline), then
ingests the same files into a throwaway installation (SQLite, embedded broker, its own
WORKDIR) processed by a real Celery worker, from the first upload to the last completed
document. Prints both, their ratio (target <= 1.05), the pipeline's overhead beyond its
own OCR calls (goal <= 10 %), the worker's peak memory, and checks that every page of
every result is searchable and upright. The machine is shared and noisy: compare ratios,
not seconds, and use --rounds to repeat baseline and pipeline alternately.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


def run_pipeline(files: list[Path], workdir: Path) -> dict[str, float]:
    """Process the files with a real worker; returns timings and memory."""
    env = installation_env(workdir)
    installation_create(env)
    log = workdir / "worker.log"
    with workers(env, log, count=1, concurrency=1) as started:
        elapsed, worker_peak, tree_peak = ingest_and_wait(env, files, [started[0].pid], log)
    summary = _summarise(env)
    return {"elapsed": elapsed, "worker_peak_kib": worker_peak, "tree_peak_kib": tree_peak, **summary}


def _summarise(env: dict[str, str]) -> dict[str, float]:
    """OCR seconds, and the searchable/upright check, read from the installation."""
    data: dict[str, Any] = installation_summary(env)
    workdir = Path(env["WORKDIR"])
    unsearchable, sideways, pages = 0, 0, 0
    for status, processed, _count in data["docs"]:
        if status != "completed":
            raise SystemExit(f"a document ended {status}")
        found_pages, bad_text, bad_rotation = check_pages(workdir / processed)
        pages += found_pages
        unsearchable += bad_text
        sideways += bad_rotation
    return {"ocr": data["ocr"], "steps": data["steps"], "span": data["span"], "pages": pages,
            "unsearchable": unsearchable, "sideways": sideways}  # fmt: skip


def check_pages(pdf: Path) -> tuple[int, int, int]:
    """(pages, pages without text, pages not upright) of a processed PDF."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
    page_texts = text.split("\f")[:-1]
    unsearchable = sum(1 for page in page_texts if len(page.split()) < 3)
    sideways = 0
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-r", "100", "-gray", "-png", str(pdf), f"{folder}/p"], check=True)
        for image in sorted(Path(folder).glob("p-*.png")):
            osd = subprocess.run(
                ["tesseract", str(image), "-", "--psm", "0"], capture_output=True, text=True,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )  # fmt: skip
            rotate = [line for line in osd.stdout.splitlines() if line.startswith("Rotate:")]
            confidence = [
                line for line in osd.stdout.splitlines() if line.startswith("Orientation confidence:")
            ]
            if (
                rotate
                and confidence
                and rotate[0].split()[-1] != "0"
                and float(confidence[0].split()[-1]) > 2
            ):
                sideways += 1
    return len(page_texts), unsearchable, sideways


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--files", default=CORPUS_SCANS)
    args = parser.parse_args()
    files = corpus_files(args.files)

    baselines, pipelines, results = [], [], []
    for round_number in range(1, args.rounds + 1):
        scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        try:
            baselines.append(plain_ocrmypdf(files, scratch))
            result = run_pipeline(files, scratch / "workdir")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        pipelines.append(result["elapsed"])
        results.append(result)
        print(
            f"round {round_number}: plain ocrmypdf {baselines[-1]:.1f} s, pipeline {result['elapsed']:.1f} s"
        )

    baseline, pipeline = statistics.median(baselines), statistics.median(pipelines)
    last = results[-1]
    print(f"\nfiles: {', '.join(path.name for path in files)} ({last['pages']} pages)")
    print(f"plain ocrmypdf -l eng+deu --skip-text: {baseline:.1f} s (median of {len(baselines)})")
    print(f"pipeline, upload to last completed:    {pipeline:.1f} s (median of {len(pipelines)})")
    print(f"ratio pipeline / plain:                {pipeline / baseline:.2f}  (target <= 1.05)")
    span = statistics.median(result["span"] for result in results)
    print(f"  first stored to last completed:      {span:.1f} s, ratio {span / baseline:.2f}"
          " (without the ingest command's start-up)")  # fmt: skip
    print(f"pipeline's own OCR calls:              {last['ocr']:.1f} s")
    print(
        f"overhead beyond its OCR calls:         {(pipeline - last['ocr']) / last['ocr']:.1%}  (goal <= 10%)"
    )
    print(f"peak RSS of the worker processes:      {last['worker_peak_kib'] / 1024:.0f} MiB")
    print(f"  with the OCR engines they started:   {last['tree_peak_kib'] / 1024:.0f} MiB")
    print(f"pages without text: {last['unsearchable']}, pages not upright: {last['sideways']}")


if __name__ == "__main__":
    main()
