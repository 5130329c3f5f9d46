"""A worker killed mid-step that comes back under another name (a new pod, another host):
its claim runs out and the work goes on elsewhere, on the embedded broker and on Redis."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from conftest import log_tails, wait_until
from docuelevate.celery import app as project_app
from documents.models import FailureKind, ProcessingStep, StepStatus
from documents.storage import thumbnail_name
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

    start_worker(worker_env, name="pod-b")  # the replacement, under a name of its own
    wait_until(
        lambda: ocr.get().claim_expires_at < timezone.now(),
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
