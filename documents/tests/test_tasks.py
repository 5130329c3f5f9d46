"""The watchdog and the restart recovery that keep documents from hanging in "processing"."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from documents.models import DocumentStatus, FailureKind, ProcessingStep, StepStatus
from documents.tasks import resume_abandoned_steps, stuck_steps_watchdog_task
from ops.schedule import periodic_tasks_sync

pytestmark = pytest.mark.django_db


def claim(document, name, *, ago_seconds, claimed_by="celery@host 4242", attempts=1):
    ProcessingStep.objects.filter(document=document, name="convert").update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name=name).update(
        status=StepStatus.IN_PROGRESS,
        started_at=timezone.now() - timedelta(seconds=ago_seconds),
        claimed_by=claimed_by,
        attempts=attempts,
    )
    return ProcessingStep.objects.get(document=document, name=name)


def test_the_watchdog_fails_steps_stuck_past_the_step_timeout(ingest, samples, settings, clock):
    settings.STEP_TIMEOUT = 60
    stuck_document = ingest(samples / "scan.pdf")
    busy_document = ingest(samples / "blank.pdf")
    stuck = claim(stuck_document, "ocr", ago_seconds=60 + 200)
    busy = claim(busy_document, "ocr", ago_seconds=30)

    assert stuck_steps_watchdog_task() == 1

    stuck.refresh_from_db()
    busy.refresh_from_db()
    stuck_document.refresh_from_db()
    assert stuck.status == StepStatus.FAILURE
    assert "did not finish within 60 seconds" in stuck.error
    assert stuck_document.status == DocumentStatus.FAILED
    assert busy.status == StepStatus.IN_PROGRESS  # still within its time
    assert stuck_steps_watchdog_task() == 0  # nothing left to do: idempotent


def test_the_watchdog_runs_every_minute_from_beat():
    periodic_tasks_sync()

    entry = PeriodicTask.objects.get(name="stuck-steps-watchdog")
    assert entry.task == "documents.tasks.stuck_steps_watchdog_task"
    assert entry.enabled
    assert entry.schedule.run_every.total_seconds() == 60
    assert entry.expire_seconds < 60
    assert entry.queue == "celery"


def test_a_restarted_worker_requeues_what_it_was_doing_when_it_died(
    ingest, samples, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "documents.tasks.pipeline_step_task.apply_async", lambda **kwargs: sent.append(kwargs)
    )
    mine = ingest(samples / "scan.pdf")
    someone_elses = ingest(samples / "blank.pdf")
    step = claim(mine, "ocr", ago_seconds=5, claimed_by="celery@node-1 4242")
    other = claim(someone_elses, "ocr", ago_seconds=5, claimed_by="celery@node-2 777")

    with django_capture_on_commit_callbacks(execute=True):
        resume_abandoned_steps(sender=SimpleNamespace(hostname="celery@node-1"))

    step.refresh_from_db()
    other.refresh_from_db()
    assert step.status == StepStatus.PENDING
    assert [call["args"] for call in sent] == [(mine.pk, "ocr")]
    assert other.status == StepStatus.IN_PROGRESS  # another node's work is not ours to take
    assert mine.logs.filter(message__contains="worker stopped during the ocr step").exists()


def test_a_document_that_keeps_killing_the_worker_fails_instead_of_looping(
    ingest, samples, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.TASK_RETRY_MAX_RETRIES = 2
    sent = []
    monkeypatch.setattr(
        "documents.tasks.pipeline_step_task.apply_async", lambda **kwargs: sent.append(kwargs)
    )
    document = ingest(samples / "scan.pdf")
    step = claim(document, "ocr", ago_seconds=5, claimed_by="celery@node-1 4242", attempts=3)

    with django_capture_on_commit_callbacks(execute=True):
        resume_abandoned_steps(sender=SimpleNamespace(hostname="celery@node-1"))

    step.refresh_from_db()
    document.refresh_from_db()
    assert sent == []
    assert step.status == StepStatus.FAILURE
    assert document.status == DocumentStatus.FAILED
    assert "stopped during the ocr step too often" in document.error


def test_steps_whose_claim_ran_out_are_queued_again_by_the_watchdog_and_by_any_worker_start(
    ingest, samples, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.WORKER_CLAIM_TIMEOUT = 60
    sent = []
    monkeypatch.setattr(
        "documents.tasks.pipeline_step_task.apply_async", lambda **kwargs: sent.append(kwargs)
    )
    lost, busy, also_lost = (ingest(samples / name) for name in ("scan.pdf", "blank.pdf", "typewritten.png"))
    lost_step = claim(lost, "ocr", ago_seconds=100, claimed_by="celery@pod-a 1 r1")
    busy_step = claim(busy, "ocr", ago_seconds=100, claimed_by="celery@pod-b 1 r2")
    also_lost_step = claim(also_lost, "ocr", ago_seconds=100, claimed_by="celery@pod-c 1 r3")
    expired = timezone.now() - timedelta(seconds=1)
    renewed = timezone.now() + timedelta(seconds=50)
    ProcessingStep.objects.filter(pk=lost_step.pk).update(claim_expires_at=expired)
    ProcessingStep.objects.filter(pk__in=[busy_step.pk, also_lost_step.pk]).update(claim_expires_at=renewed)

    with django_capture_on_commit_callbacks(execute=True):
        assert stuck_steps_watchdog_task() == 1
    assert [call["args"] for call in sent] == [(lost.pk, "ocr")]
    lost_step.refresh_from_db()
    assert (lost_step.status, lost_step.failure_kind, lost_step.claim_expires_at) == (
        StepStatus.PENDING,
        FailureKind.WORKER_LOST,
        None,
    )
    assert lost.logs.filter(message__contains="stopped renewing its claim on the ocr step").exists()
    busy_step.refresh_from_db()
    assert busy_step.status == StepStatus.IN_PROGRESS  # its worker renews the claim: alive

    # A worker that comes back under a name of its own (a new pod) takes what ran out too.
    ProcessingStep.objects.filter(pk=also_lost_step.pk).update(claim_expires_at=expired)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        resume_abandoned_steps(sender=SimpleNamespace(hostname="celery@pod-d"))
    assert [call["args"] for call in sent] == [(also_lost.pk, "ocr")]
