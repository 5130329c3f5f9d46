"""PostgreSQL and Redis stopped and started again in the middle of a batch, under the real
processes: gunicorn, a Celery worker (and beat, for the Redis outage), on a PostgreSQL
cluster and a Redis server of the test's own (ops/tests/servers.py).

What a user must see: during a database outage the ready probe says 503 and an upload is
refused with a 503 JSON answer (nothing half-kept); during a broker outage uploads are still
taken in. Afterwards every document taken in completes, each exactly once (each step
recorded once, one processed file set each), without anybody stepping in.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pytest
import requests

from conftest import LiveServer, log_tails, run_manage, stop_process_group, wait_until
from documents.tests.samples import Samples
from ops.tests.servers import MigratedDatabase, ThrowawayRedis, server_env
from ops.tests.test_beat_heartbeat import launch_beat

# The set-up alone (a PostgreSQL cluster of the module's own, initdb and migrate) took up to
# 250 s on a loaded machine; each test's own run takes 25-60 s.
pytestmark = [pytest.mark.usefixtures("engines"), pytest.mark.timeout(600)]

READY = "/api/diagnostic/healthz/ready"

# Loaded by the worker's interpreter alone (``sitecustomize``): the OCR of a document named
# "hold-ocr.pdf" waits, its first time, until the test releases it, and says when that run
# ended (done or failed), so the test stops PostgreSQL while the step is known to run. The
# project has no pause of its own.
HOLD_OCR = textwrap.dedent(
    """
    import os
    import sys
    import time

    MARKERS = os.environ["HOLD_MARKERS"]
    patched = False


    def held(step):
        original = step.run

        def run(context):
            first = not os.path.exists(os.path.join(MARKERS, "holding"))
            if step.name == "ocr" and context.document.original_filename == "hold-ocr.pdf" and first:
                open(os.path.join(MARKERS, "holding"), "w").close()
                while not os.path.exists(os.path.join(MARKERS, "release")):
                    time.sleep(0.05)
                try:
                    return original(context)
                finally:
                    open(os.path.join(MARKERS, "ran"), "w").close()
            return original(context)

        return run


    def patch_steps(event, args):
        global patched
        steps = sys.modules.get("documents.pipeline.steps")
        if patched or steps is None or not hasattr(steps, "PIPELINE"):
            return
        patched = True
        for step in steps.PIPELINE:
            step.run = held(step)


    sys.addaudithook(patch_steps)
    """
)
# Short, so a step whose message was lost is overdue within seconds (production: 90 s).
CLAIM_TIMEOUT = 4
# Seconds for the worker to finish the batch once the service is back, on a busy machine.
FINISH_TIMEOUT = 120
STEP_NAMES = ("convert", "ocr", "extract_metadata", "embed_metadata", "finalize")
# What finalize leaves in a document's processed folder: the PDF, its sidecar, the thumbnail.
PROCESSED_FILES_EACH = 3


@pytest.fixture
def batch(samples: Samples, tmp_path: Path) -> Callable[[str, int], list[Path]]:
    """``count`` one-page PDFs, each of its own (a /Title apiece), so no upload is a duplicate."""

    def make(prefix: str, count: int) -> list[Path]:
        files = []
        for index in range(count):
            path = tmp_path / f"{prefix}-{index}.pdf"
            with pikepdf.open(samples / "blank.pdf") as pdf:
                pdf.docinfo["/Title"] = f"{prefix} {index}"
                pdf.save(path)
            files.append(path)
        return files

    return make


@pytest.fixture
def outage_env(
    migrated_postgres: MigratedDatabase, throwaway_redis: ThrowawayRedis, process_env: dict[str, str]
) -> dict[str, str]:
    """gunicorn's, the worker's and beat's: the throwaway PostgreSQL and Redis, short claims."""
    env = server_env(process_env, migrated_postgres.cluster, Path(process_env["WORKDIR"]))
    env["REDIS_URL"] = throwaway_redis.url
    env["WORKER_CLAIM_TIMEOUT"] = str(CLAIM_TIMEOUT)
    # The test asks how the batch goes every half second; no budget of a client to test here.
    env["RATE_LIMIT_DEFAULT"] = "10000/m"
    return env


@pytest.fixture
def start_beat(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        started.append(launch_beat(env, tmp_path / "beat.log"))
        return started[-1]

    yield start
    for beat in started:
        stop_process_group(beat)


class Client:
    """The API as a script with a token uses it, on the live server."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}

    def upload(self, path: Path) -> requests.Response:
        with path.open("rb") as handle:
            return requests.post(
                f"{self.server.url}/api/ui-upload",
                headers=self.headers,
                files={"file": (path.name, handle, "application/pdf")},
                timeout=60,
            )

    def document(self, document_id: int) -> dict[str, Any]:
        answer = requests.get(f"{self.server.url}/api/files/{document_id}", headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def total(self) -> int:
        answer = requests.get(f"{self.server.url}/api/files", headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["pagination"]["total"])

    def ready(self) -> requests.Response:
        return requests.get(f"{self.server.url}{READY}", timeout=10)

    def statuses(self, document_ids: list[int]) -> dict[int, str]:
        """Each document's status, from one page of the files list."""
        answer = requests.get(
            f"{self.server.url}/api/files", params={"per_page": 200}, headers=self.headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        listed = {int(file["id"]): str(file["status"]) for file in answer.json()["files"]}
        return {document_id: listed[document_id] for document_id in document_ids}


def accepted(answer: requests.Response) -> int:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "queued", body
    return int(body["document_id"])


def wait_mid_batch(client: Client, document_ids: list[int], tmp_path: Path) -> dict[int, str]:
    """Until the batch is under way: its processing begun, not every document completed.

    Not "one completed, one not yet": the worker takes each step of every waiting document
    before the next step of any (one queue, first in, first out), so on a quiet machine the
    documents complete within a fraction of a second of each other, between two looks.
    """

    def under_way() -> dict[int, str] | None:
        statuses = client.statuses(document_ids)
        begun = [status for status in statuses.values() if status in {"processing", "completed"}]
        done = [status for status in statuses.values() if status == "completed"]
        return statuses if begun and len(done) < len(document_ids) else None

    return wait_until(
        under_way, timeout=FINISH_TIMEOUT, what="the batch to be under way", details=log_tails(tmp_path)
    )


def wait_all_completed(client: Client, document_ids: list[int], tmp_path: Path) -> dict[int, dict[str, Any]]:
    final = {"completed", "failed"}
    wait_until(
        lambda: all(status in final for status in client.statuses(document_ids).values()),
        timeout=FINISH_TIMEOUT,
        what=f"documents {document_ids} to finish",
        interval=0.5,
        details=log_tails(tmp_path),
    )
    return {document_id: client.document(document_id) for document_id in document_ids}


def assert_completed_exactly_once(documents: dict[int, dict[str, Any]], workdir: Path) -> None:
    for document_id, document in documents.items():
        assert document["status"] == "completed", (document_id, document["steps"])
        assert {step["status"] for step in document["steps"]} <= {"success", "skipped"}, document["steps"]
        ended = [log["step_name"] for log in document["logs"] if log["status"] in {"success", "skipped"}]
        assert sorted(ended) == sorted(STEP_NAMES), (document_id, document["logs"])
        assert not [log for log in document["logs"] if log["status"] == "failure"], document["logs"]
        assert document["files_on_disk"] == {"original": True, "processed": True}
    folders = sorted((workdir / "processed").iterdir())
    assert len(folders) == len(documents)
    for folder in folders:
        assert len(list(folder.iterdir())) == PROCESSED_FILES_EACH, sorted(folder.iterdir())


def test_postgresql_stopped_mid_batch_refuses_uploads_with_503_and_completes_every_accepted_document_once(
    migrated_postgres: MigratedDatabase,
    outage_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    start_worker: Callable[..., subprocess.Popen[bytes]],
    batch: Callable[[str, int], list[Path]],
    tmp_path: Path,
) -> None:
    cluster = migrated_postgres.cluster
    hooks, markers = tmp_path / "hooks", tmp_path / "held"
    hooks.mkdir()
    markers.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD_OCR)
    client = Client(start_gunicorn(outage_env), migrated_postgres.token)
    start_worker({**outage_env, "PYTHONPATH": str(hooks), "HOLD_MARKERS": str(markers)}, name="pg-outage")
    total_before = client.total()
    files = batch("before-pg-outage", 4)
    files.append(files.pop().rename(tmp_path / "hold-ocr.pdf"))
    document_ids = [accepted(client.upload(path)) for path in files]
    held_id = document_ids[-1]
    wait_until(
        lambda: (markers / "holding").exists(),
        timeout=FINISH_TIMEOUT,
        what="the worker to run the held OCR",
        details=log_tails(tmp_path),
    )

    cluster.stop()
    try:
        # The OCR ends while the database is away: nothing can be recorded.
        (markers / "release").touch()
        wait_until(lambda: (markers / "ran").exists(), timeout=60, what="the held OCR to end")
        answer = client.ready()
        assert answer.status_code == 503, answer.text
        assert answer.json()["status"] == "not_ready"
        for path in batch("during-pg-outage", 2):
            refused = client.upload(path)
            # A clear answer a client can act on: try again later. No 500, no HTML traceback.
            assert refused.status_code == 503, refused.text
            assert refused.headers["Content-Type"] == "application/json"
            assert refused.headers["Retry-After"].isdigit()
            assert set(refused.json()) == {"detail"}
            assert "unavailable" in refused.json()["detail"]
    finally:
        cluster.start()
    back = time.monotonic()

    wait_until(
        lambda: client.ready().status_code == 200, timeout=30, what="the ready probe to answer 200 again"
    )
    documents = wait_all_completed(client, document_ids, tmp_path)

    assert_completed_exactly_once(documents, Path(outage_env["WORKDIR"]))
    # The OCR that met no database ran again at once, under its own claim, and the outage
    # cost the document no attempt and no failure.
    held = documents[held_id]
    assert next(step for step in held["steps"] if step["name"] == "ocr")["attempts"] == 1
    again = [log for log in held["logs"] if "database was unavailable" in log["message"]]
    assert [(log["step_name"], log["status"]) for log in again] == [("ocr", "in_progress")]
    # Nothing of the refused uploads was kept.
    assert client.total() == total_before + len(document_ids)
    print(f"PostgreSQL: the batch completed {time.monotonic() - back:.1f} s after the database came back")


def test_redis_stopped_mid_batch_still_takes_uploads_and_completes_every_document_once_by_itself(
    migrated_postgres: MigratedDatabase,
    throwaway_redis: ThrowawayRedis,
    outage_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    start_worker: Callable[..., subprocess.Popen[bytes]],
    start_beat: Callable[[dict[str, str]], subprocess.Popen[bytes]],
    batch: Callable[[str, int], list[Path]],
    tmp_path: Path,
) -> None:
    # The shipped schedule, as every deploy writes it; the operator then runs the watchdog
    # every 2 s instead of every minute (the admin's schedule), and nothing else.
    synced = run_manage(outage_env, "setup_periodic_tasks")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    schedule = run_manage(
        outage_env,
        "shell",
        "-c",
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask; "
        "every, _ = IntervalSchedule.objects.get_or_create(every=2, period='seconds'); "
        "PeriodicTask.objects.exclude(name='stuck-steps-watchdog').update(enabled=False); "
        "PeriodicTask.objects.filter(name='stuck-steps-watchdog').update(interval=every, crontab=None)",
    )
    assert schedule.returncode == 0, schedule.stdout + schedule.stderr
    client = Client(start_gunicorn(outage_env), migrated_postgres.token)
    start_worker(outage_env, name="redis-outage")
    start_beat(outage_env)
    total_before = client.total()
    document_ids = [accepted(client.upload(path)) for path in batch("before-redis-outage", 4)]
    under_way = wait_mid_batch(client, document_ids, tmp_path)

    throwaway_redis.stop()  # without persistence: whatever was queued is gone with it
    try:
        during = [accepted(client.upload(path)) for path in batch("during-redis-outage", 2)]
        for document_id in during:
            assert client.document(document_id)["status"] == "pending"
        answer = client.ready()
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"]["redis"] == {"status": "error"}
    finally:
        throwaway_redis.start()
    back = time.monotonic()

    documents = wait_all_completed(client, document_ids + during, tmp_path)
    completed_in = time.monotonic() - back

    assert_completed_exactly_once(documents, Path(outage_env["WORKDIR"]))
    assert client.total() == total_before + len(document_ids) + len(during)
    print(
        f"Redis: under way when it stopped {under_way}; all completed {completed_in:.1f} s after it came back"
    )
