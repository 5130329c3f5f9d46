"""What the pipeline benchmarks share: the corpus, plain ocrmypdf as the baseline, a throwaway
installation with real Celery workers, ingesting and waiting, and the memory of a process tree.

Used by bench/pipeline.py (one document at a time) and bench/throughput.py (a batch, one
and two worker processes) and bench/memory.py (one worker, its process tree's peak memory);
bench/upload.py, bench/load.py and bench/soak.py take the installation, gunicorn, the API
token and the small PDFs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from fpdf import FPDF

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOCUELEVATE_CORPUS", PROJECT_DIR.parent / "shared" / "corpus"))
MANAGE = [sys.executable, "manage.py"]
ADMIN_USERNAME = "bench"
ADMIN_PASSWORD = "bench-password-long-enough"  # noqa: S105  # a throwaway installation's
# The corpus scans the speed benchmarks run (bench/pipeline.py, bench/throughput.py).
CORPUS_SCANS = "linn.pdf,skew.pdf,francais.pdf,multipage.pdf"


def corpus_files(names: str) -> list[Path]:
    """The corpus files named in a comma-separated list; stops if one is missing."""
    files = [CORPUS / name for name in names.split(",")]
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise SystemExit(f"corpus files missing: {missing}")
    return files


def plain_ocrmypdf(files: list[Path], scratch: Path) -> float:
    """Seconds for plain ocrmypdf over the files, one after another."""
    # Tesseract's OpenMP threads make it several times slower on two cores; the baseline gets
    # the same single-thread setting as the pipeline, so it is plain ocrmypdf at its best
    # (its own --jobs default, one per core, still OCRs a file's pages in parallel).
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
    """Resident memory (KiB) of a process and its direct Python children (a Celery worker and
    its pool, a gunicorn arbiter and its workers), and of them plus every program they started."""
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
    own, total, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        if names.get(pid, "").startswith(("celery", "python", "gunicorn")) and pid in {
            root_pid,
            *children.get(root_pid, []),
        }:
            own += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return own, total


def process_rss_kib(pid: int) -> int:
    """One process's resident memory (KiB); 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def installation_env(workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of a throwaway embedded installation (SQLite, file broker) in ``workdir``."""
    env = {**os.environ, "WORKDIR": str(workdir), "DEBUG": "true", "LOG_LEVEL": "WARNING", **settings}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    return env


def stack_env(
    workdir: Path, *, database_url: str | None = None, redis_url: str | None = None, **settings: str
) -> dict[str, str]:
    """An installation in ``workdir``: the embedded one (SQLite, file broker) without URLs,
    otherwise on the given PostgreSQL database and Redis (broker, results and cache)."""
    env = installation_env(workdir, **settings)
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def stack_reset(*, database_url: str | None, redis_url: str | None) -> None:
    """Empty the PostgreSQL database and the Redis database a run is given, so each run starts
    from nothing (the embedded stack starts from an empty WORKDIR anyway)."""
    if database_url:
        import psycopg
        from psycopg import sql

        parts = urlsplit(database_url)
        name = parts.path.lstrip("/")
        server = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def stack_name(database_url: str | None) -> str:
    return "PostgreSQL + Redis" if database_url else "SQLite + file broker (embedded)"


def installation_create(env: dict[str, str]) -> None:
    """Migrate the installation's database and create its operator account."""
    subprocess.run([*MANAGE, "migrate", "-v0"], cwd=PROJECT_DIR, env=env, check=True)
    env_admin = {**env, "ADMIN_USERNAME": ADMIN_USERNAME, "ADMIN_PASSWORD": ADMIN_PASSWORD}
    subprocess.run(
        [*MANAGE, "bootstrap_admin"], cwd=PROJECT_DIR, env=env_admin, check=True, capture_output=True
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_gunicorn(
    env: dict[str, str], log: Path, *, web_workers: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn as the image starts it (docker/entrypoint.sh's flags: sync workers, one thread,
    120 s timeout, heartbeat files on /dev/shm) with ``web_workers`` workers on a free port of
    127.0.0.1; gunicorn reads gunicorn.conf.py from its working directory, the project root.
    Stop it with ``stop_gunicorn``."""
    port = free_port()
    heartbeat = "/dev/shm"  # noqa: S108  # the image's --worker-tmp-dir: gunicorn's heartbeat files
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "docuelevate.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers), "--threads", "1",
             "--timeout", "120", "--worker-tmp-dir", heartbeat, "--no-control-socket"],
            cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            requests.get(f"{url}/api/whoami", timeout=10)
            return server, url
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    stop_gunicorn(server)
    raise SystemExit(f"gunicorn did not start:\n{log.read_text(errors='replace')[-4000:]}")


def stop_gunicorn(server: subprocess.Popen[bytes]) -> None:
    # SIGTERM to the arbiter is gunicorn's graceful stop: it stops its workers itself.
    stop_main_process(server, timeout=60)


def api_token(env: dict[str, str]) -> str:
    """A new API token of the installation's operator account."""
    code = (
        "from accounts.models import User; from accounts.services import token_create; "
        f"print(token_create(user=User.objects.get(username={ADMIN_USERNAME!r}), name='bench')[1])"
    )
    result = subprocess.run(
        [*MANAGE, "shell", "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def small_pdf(label: str) -> bytes:
    """A one-page born-digital PDF whose text (and so its hash) carries ``label``: distinct
    labels never collapse into duplicates, and the text layer keeps the OCR step cheap."""
    document = FPDF(format="A4")
    document.set_font("Helvetica", size=12)
    document.add_page()
    document.multi_cell(0, 8, f"Invoice {label}\nAmount due: 42.00 EUR\nThank you for your order.")
    return bytes(document.output())


def logs_mention(folder: Path, phrase: str) -> list[str]:
    """The lines of the ``*.log`` files in ``folder`` that contain ``phrase``."""
    return [
        f"{path.name}: {line.strip()}"
        for path in sorted(folder.glob("*.log"))
        for line in path.read_text(errors="replace").splitlines()
        if phrase in line
    ]


@contextmanager
def workers(
    env: dict[str, str], log: Path, *, count: int = 1, concurrency: int = 1
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` Celery worker instances (under different names, as separate pods or hosts
    would be), each with ``concurrency`` pool processes; stopped on leaving."""
    started: list[subprocess.Popen[bytes]] = []
    with log.open("ab") as output:
        try:
            for number in range(1, count + 1):
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "docuelevate", "worker", "--queues",
                     "document_processor,default,celery", "--concurrency", str(concurrency),
                     "--loglevel", "WARNING", "--hostname", f"bench{number}@%h", "--without-mingle",
                     "--without-gossip"],
                    cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                started.append(worker)
            time.sleep(3 + count)  # let the workers come up before the clock starts
            yield started
        finally:
            for worker in started:
                _stop(worker)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    # Only the main worker process gets the SIGTERM: it stops its pool children itself
    # (a warm shutdown). Sent to the whole group, the children see it too and the main
    # process waits on the pool for about a minute.
    stop_main_process(worker, timeout=30)


def stop_main_process(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM to the main process alone, which stops its own children; the whole process
    group is killed only if it has not ended within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ingest_and_wait(
    env: dict[str, str], files: list[Path], watch: list[int], log: Path
) -> tuple[float, int, int]:
    """Ingest the files and wait until the workers finished them all: seconds from the first
    upload to the last completed document, and the peak memory (KiB) of the ``watch``ed
    workers' own processes and of their whole trees, summed over the workers."""
    own_peak, tree_peak = 0, 0
    started = time.perf_counter()
    ingest = subprocess.Popen(
        [*MANAGE, "ingest", "--wait", "--json", *map(str, files)],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while ingest.poll() is None:
        samples = [tree_rss_kib(pid) for pid in watch]
        own_peak = max(own_peak, sum(own for own, _tree in samples))
        tree_peak = max(tree_peak, sum(tree for _own, tree in samples))
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    output = ingest.stdout.read() if ingest.stdout else ""
    if ingest.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise SystemExit(f"pipeline failed:\n{output}\nworker log:\n{tail}")
    return elapsed, own_peak, tree_peak


# Statuses a document keeps once the pipeline is done with it.
SETTLED = {"completed", "failed", "duplicate"}

# Counts the checks need, read from the installation's database in one go.
DOCUMENTS_CHECK = """
import json
import shutil
from collections import Counter
from documents.models import Document, ProcessingLog, ProcessingStep
documents = Document.objects.all()
ids = list(documents.values_list("id", flat=True))
finalized = Counter(
    ProcessingLog.objects.filter(step_name="finalize", status="success").values_list("document_id", flat=True)
)
print(json.dumps({
    "ids": ids,
    "statuses": Counter(documents.values_list("status", flat=True)),
    "distinct_hashes": documents.values("filehash").distinct().count(),
    "steps_run_again": ProcessingStep.objects.filter(attempts__gt=1).count(),
    "not_finalized_once": [pk for pk in ids if finalized.get(pk, 0) != 1],
}))
"""


def documents_check(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [*MANAGE, "shell", "-c", DOCUMENTS_CHECK], cwd=PROJECT_DIR, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    check: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return check


def wait_settled(
    env: dict[str, str], expected: int, *, max_seconds: float, interval: float = 5
) -> tuple[dict[str, Any], float]:
    """Poll the database until ``expected`` documents exist and none waits or runs; print
    progress (and documents a minute, counted from the first poll). The last reading, and
    the seconds waited."""
    started = time.monotonic()
    while True:
        check = documents_check(env)
        statuses: dict[str, int] = check["statuses"]
        settled = sum(count for status, count in statuses.items() if status in SETTLED)
        waited = time.monotonic() - started
        rate = f", {settled / waited * 60:.0f} a minute" if waited else ""
        print(f"  {waited:5.0f} s: {settled} / {expected} settled{rate} {dict(statuses)}", flush=True)
        if len(check["ids"]) >= expected and settled == len(check["ids"]):
            return check, waited
        if waited > max_seconds:
            print(f"  gave up waiting after {max_seconds:.0f} s", flush=True)
            return check, waited
        time.sleep(interval)


def settled_problems(check: dict[str, Any], expected: int, logs: Path) -> list[str]:
    """What is wrong once an installation has settled (``wait_settled``'s reading): not each
    of the ``expected`` files one completed document of its own, a step run more than once,
    a document finalized other than once, "database is locked" in any log."""
    problems = []
    statuses = check["statuses"]
    if statuses.get("completed", 0) != expected or check["distinct_hashes"] != expected:
        problems.append(f"not every file is one completed document: {dict(statuses)}")
    if check["steps_run_again"] or check["not_finalized_once"]:
        problems.append(
            f"{check['steps_run_again']} steps ran more than once; finalized other than once:"
            f" {check['not_finalized_once'][:20]}"
        )
    return problems + logs_mention(logs, "database is locked")[:10]


def verdict(problems: list[str], *, logs: Path, scratch: Path, success: str) -> None:
    """Print the problems and exit 1, keeping the logs; or remove the scratch folder and
    print ``success``."""
    if problems:
        print(f"\nFAILED (logs kept in {logs}):\n" + "\n".join(problems))
        raise SystemExit(1)
    shutil.rmtree(scratch, ignore_errors=True)
    print(success)


def installation_summary(env: dict[str, str]) -> dict[str, object]:
    """Seconds in OCR and in all steps, seconds from the first document stored to the last step
    finished ("span": the clock without the ingest command's own start-up), and (status,
    processed file, pages) of every document."""
    code = """
import json
import shutil
from django.db.models import Max, Min
from documents.models import Document, ProcessingStep
ocr = sum((s.duration_seconds or 0) for s in ProcessingStep.objects.filter(name="ocr"))
steps = sum((s.duration_seconds or 0) for s in ProcessingStep.objects.all())
first = Document.objects.aggregate(first=Min("created_at"))["first"]
last = ProcessingStep.objects.aggregate(last=Max("finished_at"))["last"]
span = (last - first).total_seconds() if first and last else 0
docs = [(d.status, d.processed_file, d.page_count) for d in Document.objects.all()]
print(json.dumps({"ocr": ocr, "steps": steps, "span": span, "docs": docs}))
"""
    result = subprocess.run(
        [*MANAGE, "shell", "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary
