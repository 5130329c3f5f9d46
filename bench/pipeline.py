"""Benchmark: the full pipeline with a real worker against plain ocrmypdf, in one run.

    .venv/bin/python bench/pipeline.py [--rounds 1] [--files linn.pdf,skew.pdf,...]

Times plain ``ocrmypdf -l eng+deu --skip-text`` on the corpus files (the baseline), then
ingests the same files into a throwaway installation (SQLite, embedded broker, its own
WORKDIR) processed by a real Celery worker, from the first upload to the last completed
document. Prints both, their ratio (target <= 1.25), the pipeline's overhead beyond its
own OCR calls (goal <= 10 %), the worker's peak memory, and checks that every page of
every result is searchable and upright. The machine is shared and noisy: compare ratios,
not seconds, and use --rounds to repeat baseline and pipeline alternately.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOCUELEVATE_CORPUS", PROJECT_DIR.parent / "shared" / "corpus"))
DEFAULT_FILES = "linn.pdf,skew.pdf,francais.pdf,multipage.pdf"


def plain_ocrmypdf(files: list[Path], scratch: Path) -> float:
    """Seconds for plain ocrmypdf over the files, one after another."""
    # Tesseract's OpenMP threads make it several times slower on two cores; the baseline gets
    # the same single-thread setting as the pipeline, so it is plain ocrmypdf at its best.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    started = time.perf_counter()
    for path in files:
        subprocess.run(
            [sys.executable, "-m", "ocrmypdf", "-l", "eng+deu", "--skip-text", "--quiet", str(path),
             str(scratch / f"plain-{path.name}")],
            check=True, env=env,
        )  # fmt: skip
    return time.perf_counter() - started


def tree_rss_kib(root_pid: int) -> tuple[int, int]:
    """Resident memory (KiB) of the worker's own processes, and of them plus the engines
    (ocrmypdf, tesseract, LibreOffice) they started."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
        names[pid] = fields.get("Name", "").strip()
    worker, total, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        # The worker's own processes are Python processes named after celery.
        if names.get(pid, "").startswith(("celery", "python")) and pid in {
            root_pid,
            *children.get(root_pid, []),
        }:
            worker += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return worker, total


def run_pipeline(files: list[Path], workdir: Path) -> dict[str, float]:
    """Process the files with a real worker; returns timings and memory."""
    env = {**os.environ, "WORKDIR": str(workdir), "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=PROJECT_DIR, env=env, check=True)
    env_admin = {**env, "ADMIN_USERNAME": "bench", "ADMIN_PASSWORD": "bench-password-long-enough"}
    subprocess.run(
        [*manage, "bootstrap_admin"], cwd=PROJECT_DIR, env=env_admin, check=True, capture_output=True
    )
    worker_log = (workdir / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "docuelevate", "worker", "--queues",
         "document_processor,default,celery", "--concurrency", "1", "--loglevel", "WARNING",
         "--hostname", "bench@%h", "--without-mingle", "--without-gossip"],
        cwd=PROJECT_DIR, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # let the worker come up before the clock starts
        worker_peak, tree_peak = 0, 0
        started = time.perf_counter()
        ingest = subprocess.Popen(
            [*manage, "ingest", "--wait", "--json", *map(str, files)],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        while ingest.poll() is None:
            worker_rss, tree_rss = tree_rss_kib(worker.pid)
            worker_peak, tree_peak = max(worker_peak, worker_rss), max(tree_peak, tree_rss)
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        output = ingest.stdout.read() if ingest.stdout else ""
        if ingest.returncode != 0:
            log = (workdir / "worker.log").read_text(errors="replace")[-4000:]
            raise SystemExit(f"pipeline failed:\n{output}\nworker log:\n{log}")
    finally:
        # Only the main worker process gets the SIGTERM: it stops its pool children itself
        # (a warm shutdown). Sent to the whole group, the children see it too and the main
        # process waits on the pool for about a minute. The group goes only if it hangs.
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    summary = _summarise(env)
    return {"elapsed": elapsed, "worker_peak_kib": worker_peak, "tree_peak_kib": tree_peak, **summary}


def _summarise(env: dict[str, str]) -> dict[str, float]:
    """OCR seconds, and the searchable/upright check, read from the installation."""
    code = """
import json
from documents.models import Document, ProcessingStep
ocr = sum((s.duration_seconds or 0) for s in ProcessingStep.objects.filter(name="ocr"))
steps = sum((s.duration_seconds or 0) for s in ProcessingStep.objects.all())
docs = [(d.status, d.processed_file, d.page_count) for d in Document.objects.all()]
print(json.dumps({"ocr": ocr, "steps": steps, "docs": docs}))
"""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    import json

    data = json.loads(result.stdout.strip().splitlines()[-1])
    workdir = Path(env["WORKDIR"])
    unsearchable, sideways, pages = 0, 0, 0
    for status, processed, _count in data["docs"]:
        if status != "completed":
            raise SystemExit(f"a document ended {status}")
        found_pages, bad_text, bad_rotation = check_pages(workdir / processed)
        pages += found_pages
        unsearchable += bad_text
        sideways += bad_rotation
    return {"ocr": data["ocr"], "steps": data["steps"], "pages": pages, "unsearchable": unsearchable,
            "sideways": sideways}  # fmt: skip


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
    parser.add_argument("--files", default=DEFAULT_FILES)
    args = parser.parse_args()
    files = [CORPUS / name for name in args.files.split(",")]
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise SystemExit(f"corpus files missing: {missing}")

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
    print(f"ratio pipeline / plain:                {pipeline / baseline:.2f}  (target <= 1.25)")
    print(f"pipeline's own OCR calls:              {last['ocr']:.1f} s")
    print(
        f"overhead beyond its OCR calls:         {(pipeline - last['ocr']) / last['ocr']:.1%}  (goal <= 10%)"
    )
    print(f"peak RSS of the worker processes:      {last['worker_peak_kib'] / 1024:.0f} MiB")
    print(f"  with the OCR engines they started:   {last['tree_peak_kib'] / 1024:.0f} MiB")
    print(f"pages without text: {last['unsearchable']}, pages not upright: {last['sideways']}")


if __name__ == "__main__":
    main()
