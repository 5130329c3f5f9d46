"""What a database or broker outage leaves behind, in-process: a step that met no database
records nothing and its next run takes over; a send the broker refused leaves the step
due, and the watchdog sends overdue steps again once the queue is empty; a view that met
no database answers 503. The same, with real processes and real outages:
test_service_outages.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from documents.models import DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.runner import Outcome, claim_token, pipeline_step_run
from documents.pipeline.state import step_claim
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from documents.services import document_ingest
from documents.tasks import steps_resend_stalled_enqueue

pytestmark = pytest.mark.django_db

CONVERT = STEP_NAMES[0]


def test_a_step_that_meets_no_database_fails_nothing_and_its_next_run_takes_over_without_an_attempt(
    ingest, trivial, monkeypatch
):
    document = ingest(trivial)
    real_run = PIPELINE[0].run

    def database_gone(context):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(PIPELINE[0], "run", database_gone)

    away = pipeline_step_run(document_id=document.pk, step_name=CONVERT)

    assert away.outcome == Outcome.DATABASE_UNAVAILABLE
    step = ProcessingStep.objects.get(document=document, name=CONVERT)
    assert (step.status, step.attempts, step.claimed_by) == (StepStatus.IN_PROGRESS, 1, away.resume_claim)
    assert not ProcessingLog.objects.filter(document=document, status=StepStatus.FAILURE).exists()

    monkeypatch.setattr(PIPELINE[0], "run", real_run)
    back = pipeline_step_run(document_id=document.pk, step_name=CONVERT, resume_claim=away.resume_claim)

    assert back.outcome == Outcome.SKIPPED  # a PDF needs no conversion
    step.refresh_from_db()
    assert (step.status, step.attempts) == (StepStatus.SKIPPED, 1)
    assert (
        ProcessingLog.objects.filter(
            document=document, step_name=CONVERT, message__contains="database was unavailable"
        ).count()
        == 1
    )
    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING


def test_a_claim_still_held_by_a_live_run_is_not_taken_by_a_resume_of_another_claim(ingest, trivial):
    document = ingest(trivial)
    held = step_claim(document_id=document.pk, step_name=CONVERT, task_id="a", claimed_by="node 1 run-a")
    assert held is not None

    taken = step_claim(
        document_id=document.pk,
        step_name=CONVERT,
        task_id="b",
        claimed_by=claim_token("elsewhere"),
        resume_claim="node 1 run-other",
    )

    assert taken is None
    assert ProcessingStep.objects.get(document=document, name=CONVERT).claimed_by == "node 1 run-a"


def test_an_upload_the_broker_refuses_is_kept_pending_and_due(
    owner, document_storage, trivial, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("documents.tasks.pipeline_step_task.apply_async", refuse)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        result = document_ingest(owner=owner, chunks=[trivial.read_bytes()], filename="scan.pdf")

    step = ProcessingStep.objects.get(document=result.document, name=CONVERT)
    assert step.status == StepStatus.PENDING
    assert step.due_at is not None
    assert step.due_at >= before
    assert "the watchdog sends it again" in caplog.text


@pytest.mark.parametrize(
    ("queued", "resent"), [(0, True), (3, False), (None, False)], ids=["empty", "backlog", "unknown"]
)
def test_the_watchdog_sends_an_overdue_step_again_only_while_the_queue_is_empty(
    queued, resent, ingest, trivial, settings, monkeypatch, sent, django_capture_on_commit_callbacks
):
    overdue, waiting = ingest(trivial), ingest(trivial.read_bytes() + b"\n% another copy\n", "other.pdf")
    long_ago = timezone.now() - timedelta(seconds=settings.WORKER_CLAIM_TIMEOUT + 5)
    ProcessingStep.objects.filter(document=overdue, name=CONVERT).update(due_at=long_ago)
    ProcessingStep.objects.filter(document=waiting, name=CONVERT).update(due_at=timezone.now())
    monkeypatch.setattr("documents.tasks.queue_lengths", lambda: {"document_processor": queued})

    with django_capture_on_commit_callbacks(execute=True):
        count = steps_resend_stalled_enqueue()

    expected = [(overdue.pk, CONVERT)] if resent else []
    assert [call["args"] for call in sent] == expected
    assert count == len(expected)
    step = ProcessingStep.objects.get(document=overdue, name=CONVERT)
    # Sent again, it is due from now: not sent a second time before it is overdue again.
    assert step.due_at is not None
    assert (step.due_at > long_ago) is resent


def test_an_upload_that_meets_no_database_is_answered_503_json_with_retry_after(api, monkeypatch):
    def no_database(**kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr("documents.api.views.document_ingest", no_database)

    answer = api.post(
        "/api/ui-upload", {"file": SimpleUploadedFile("scan.pdf", b"%PDF-1.4\n")}, format="multipart"
    )

    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/json"
    assert int(answer["Retry-After"]) > 0
    assert answer.json() == {"detail": "The database is unavailable for the moment; try again shortly."}
    assert "db.internal" not in answer.content.decode()


def test_a_hand_off_that_met_no_database_is_done_again_without_running_the_step_again(monkeypatch):
    """The last step recorded, then the database went away before the search and the
    deliveries were scheduled: the retry schedules them, and does not run the step again
    (which would find it done and hand nothing on)."""
    from documents import tasks
    from documents.pipeline.runner import StepRun

    runs: list[str] = []
    scheduled: list[int] = []

    def last_step_done(**kwargs):
        runs.append(kwargs["step_name"])
        return StepRun(Outcome.SUCCESS)

    def schedule_once_the_database_is_back(*, document_id):
        if not scheduled:
            scheduled.append(-1)
            raise OperationalError("server closed the connection unexpectedly")
        scheduled.append(document_id)
        return []

    monkeypatch.setattr(tasks, "pipeline_step_run", last_step_done)
    monkeypatch.setattr(tasks, "index_document_enqueue", lambda *, document_id: None)
    monkeypatch.setattr(tasks, "deliveries_schedule", schedule_once_the_database_is_back)
    monkeypatch.setattr(tasks, "database_retry_delay", lambda retries: 0)

    # Eagerly, a retry runs again at once in this process, as a worker would after its wait.
    result = tasks.pipeline_step_task.apply(args=(7, STEP_NAMES[-1]))

    assert result.successful(), result.traceback
    assert runs == [STEP_NAMES[-1]]
    assert scheduled == [-1, 7]
