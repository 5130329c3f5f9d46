"""A worker killed mid-step that comes back under another name (a new pod, another host):
its claim runs out and the work goes on elsewhere, on the embedded broker and on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pikepdf
import pytest
from celery import Celery
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from conftest import log_tails, wait_until
from docuelevate.celery import app as project_app
from documents.models import Document, DocumentStatus, FailureKind, ProcessingStep, StepStatus
from documents.storage import thumbnail_name
from documents.tasks import stuck_steps_watchdog_task
from documents.tests.test_pipeline_worker import (
    PROCESSING_TIMEOUT,
    processed_files,
    running_in_group,
    upload,
    wait_for_final,
)

pytestmark = pytest.mark.usefixtures("engines")

# Short, so the test waits seconds for a claim to run out (production: 90 s).
CLAIM_TIMEOUT = 4


def broker_for(broker: str, env: dict[str, str], request: pytest.FixtureRequest) -> Celery:
    """Point the worker's environment at ``broker`` and return an app that sends there, as
    the web process and beat would (this process's own broker is whatever the run uses)."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    if broker == "redis":
        env["REDIS_URL"] = url = request.getfixturevalue("redis_url")  # emptied first
        options: dict[str, object] = {}
    else:
        url = "filesystem://localhost/"
        folders = Path(settings.WORKDIR) / "broker"
        for folder in ("queue", "processed", "control"):
            (folders / folder).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders / "queue"),
            "data_folder_out": str(folders / "queue"),
            "processed_folder": str(folders / "processed"),
            "control_folder": str(folders / "control"),
            "store_processed": False,
        }
    sender = Celery("sender", broker=url, set_as_current=False)
    sender.conf.update(
        broker_transport_options=options,
        task_queues=project_app.conf.task_queues,
        task_routes=project_app.conf.task_routes,
        task_create_missing_queues=False,
        task_serializer="json",
    )
    return sender


def done_with(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker whose work the test has checked at once: its warm shutdown would cost
    seconds of the suite's time for nothing."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_a_worker_killed_during_ocr_and_replaced_under_another_name_completes_the_document_once(
    broker, request, owner, samples, worker_env, start_worker, sent, tmp_path
):
    worker_env["WORKER_CLAIM_TIMEOUT"] = str(CLAIM_TIMEOUT)
    sender = broker_for(broker, worker_env, request)
    worker = start_worker(worker_env, name="pod-a")
    processed_before = set(processed_files())
    document = upload(owner, samples / "scan.pdf").document
    assert [call["args"] for call in sent] == [(document.pk, "convert")]  # caught here: sent now
    sender.send_task(
        "documents.tasks.pipeline_step_task", args=(document.pk, "convert"), task_id=str(uuid.uuid4())
    )
    ocr = ProcessingStep.objects.filter(document=document, name="ocr")
    wait_until(
        lambda: (
            ocr.filter(status=StepStatus.IN_PROGRESS).exists() and running_in_group(worker.pid, "ocrmypdf")
        ),
        timeout=PROCESSING_TIMEOUT,
        what="pod-a to run ocrmypdf",
        details=log_tails(tmp_path),
    )
    os.killpg(worker.pid, signal.SIGKILL)  # the pod and its OCR are gone, as on an OOM kill
    worker.wait()
    killed = time.monotonic()
    assert ocr.get().claimed_by.startswith("pod-a@")  # nobody could record anything

    replacement = start_worker(worker_env, name="pod-b")  # under a name of its own
    wait_until(
        lambda: not ocr.filter(claim_expires_at__gte=timezone.now()).exists(),
        timeout=CLAIM_TIMEOUT + 5,
        what="pod-a's claim to run out",
    )
    # Beat's minutely watchdog (pod-b's start may have been quicker: either gives it back).
    sender.send_task("documents.tasks.stuck_steps_watchdog_task")
    wait_until(
        lambda: ocr.filter(attempts=2).exists(),
        timeout=60,
        what="the OCR to run again",
        details=log_tails(tmp_path),
    )
    recovered_in = time.monotonic() - killed
    finished = wait_for_final([document.pk], tmp_path)[document.pk]

    assert finished.status == "completed", finished.error
    assert "ChronoScribe" in finished.ocr_text
    step = ocr.get()
    assert (step.attempts, step.claimed_by, step.claim_expires_at) == (2, "", None)
    assert ProcessingStep.objects.get(document=document, name="convert").attempts == 1
    assert finished.logs.filter(step_name="ocr", kind=FailureKind.WORKER_LOST).count() == 1
    assert sorted(set(processed_files()) - processed_before) == sorted(
        [
            finished.processed_file,
            finished.processed_file.replace(".pdf", ".json"),
            thumbnail_name(finished.uuid),
        ]
    )
    print(f"{broker}: the OCR ran again {recovered_in:.1f} s after its worker was killed")
    done_with(replacement)


# Holds a step of a document whose file is named "hold-<step>.pdf": the worker's interpreter
# alone loads it (``sitecustomize``), the project's code has no pause of its own for tests.
HOLD = textwrap.dedent(
    '''
    """Holds the step named by a document's original name, "hold-<step>.pdf"."""
    import os
    import sys
    import time

    MARKERS = os.environ["HOLD_MARKERS"]
    patched = False


    def held(step):
        original = step.run

        def run(context):
            if context.document.original_filename == f"hold-{step.name}.pdf":
                with open(os.path.join(MARKERS, step.name), "w") as marker:
                    marker.write(str(os.getpid()))
                time.sleep(3600)
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
    '''
)
HELD_STEPS = ("convert", "extract_metadata", "embed_metadata", "finalize")


def test_workers_killed_in_each_other_step_and_replaced_under_other_names_complete_each_document_once(
    owner, samples, worker_env, start_worker, tmp_path
):
    worker_env["WORKER_CLAIM_TIMEOUT"] = str(CLAIM_TIMEOUT)
    hooks, markers = tmp_path / "hooks", tmp_path / "held"
    hooks.mkdir()
    markers.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD)
    held_env = {**worker_env, "PYTHONPATH": str(hooks), "HOLD_MARKERS": str(markers)}
    # One worker per held step: each is held by the first it meets, the others go on.
    workers = [start_worker(held_env, name=f"held-{index}") for index in range(len(HELD_STEPS))]
    processed_before = set(processed_files())
    documents = []
    for step in HELD_STEPS:
        with pikepdf.open(samples / "blank.pdf") as pdf:  # a file of its own, not a duplicate
            pdf.docinfo["/Title"] = step
            pdf.save(tmp_path / f"hold-{step}.pdf")
        documents.append(upload(owner, tmp_path / f"hold-{step}.pdf").document)
    wait_until(
        lambda: all((markers / step).exists() for step in HELD_STEPS),
        timeout=PROCESSING_TIMEOUT,
        what=f"the workers to be held in {HELD_STEPS}",
        details=log_tails(tmp_path),
    )
    held = ProcessingStep.objects.filter(document__in=documents, status=StepStatus.IN_PROGRESS)
    # While a step runs (here: is held), its worker renews the claim beyond the first one.
    wait_until(
        lambda: (
            held.filter(claim_expires_at__gt=F("started_at") + timedelta(seconds=CLAIM_TIMEOUT + 0.5)).count()
            == len(HELD_STEPS)
        ),
        timeout=CLAIM_TIMEOUT,
        what="the held steps' claims to be renewed",
    )
    for worker in workers:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert sorted(held.values_list("name", flat=True)) == sorted(HELD_STEPS)

    replacement = start_worker(worker_env, name="replacement")
    wait_until(
        lambda: not held.filter(claim_expires_at__gte=timezone.now()).exists(),
        timeout=CLAIM_TIMEOUT + 5,
        what="the claims to run out",
    )
    stuck_steps_watchdog_task.delay()  # as beat sends it every minute
    finished = wait_for_final([document.pk for document in documents], tmp_path)

    expected_files = []
    for document in finished.values():
        assert document.status == DocumentStatus.COMPLETED, document.error
        steps = dict(ProcessingStep.objects.filter(document=document).values_list("name", "attempts"))
        held_step = document.original_filename.removeprefix("hold-").removesuffix(".pdf")
        assert steps == {name: 2 if name == held_step else 1 for name in steps}, held_step
        assert document.logs.filter(step_name=held_step, kind=FailureKind.WORKER_LOST).count() == 1
        expected_files += [
            document.processed_file,
            document.processed_file.replace(".pdf", ".json"),
            thumbnail_name(document.uuid),
        ]
    assert sorted(set(processed_files()) - processed_before) == sorted(expected_files)
    assert Document.objects.filter(owner=owner).count() == len(HELD_STEPS)
    done_with(replacement)
