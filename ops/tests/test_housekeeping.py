"""Housekeeping does its job on real files and rows: the scratch sweep, log pruning and the
one more run for documents that failed for a passing reason."""

from __future__ import annotations

import datetime
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import AuditAction, AuditLog
from documents.models import (
    Document,
    DocumentStatus,
    FailureKind,
    ProcessingLog,
    ProcessingStep,
    ResetKind,
    StepStatus,
)
from documents.pipeline.runner import pipeline_fail_stuck_steps, pipeline_step_run
from documents.pipeline.state import log_event, step_claim, step_record, steps_reset
from documents.pipeline.steps import STEP_NAMES
from documents.services import document_ingest, document_reprocess, document_retry_step
from documents.tests.factories import DocumentFactory
from ops.housekeeping import RETRY_SWEEP_STEP
from ops.models import BackupRecord, BackupStatus, BackupTier
from ops.tasks import backup_task, failed_documents_retry_task, logs_prune_task, scratch_sweep_task

pytestmark = pytest.mark.django_db

DAY = 86400
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def workdir(settings: Any, tmp_path: Path) -> Path:
    """A private WORKDIR and local document storage for one test."""
    folder = tmp_path / "workdir"
    (folder / "tmp").mkdir(parents=True)
    settings.WORKDIR = folder
    settings.SCRATCH_DIR = folder / "tmp"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder)},
        },
    }
    return folder


def aged(path: Path, seconds: float) -> Path:
    """Make ``path`` look untouched for ``seconds``, without following a link."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def a_document(owner: Any, **fields: Any) -> Document:
    return DocumentFactory.create(owner=owner, **{"status": DocumentStatus.PENDING, **fields})


# --- The scratch sweep ---------------------------------------------------------------------------


def test_the_scratch_sweep_removes_what_is_a_day_old_and_keeps_what_is_in_use(workdir, owner, tmp_path):
    scratch = workdir / "tmp"
    old_upload = scratch / "upload-abc"
    old_upload.write_bytes(b"x" * 10)
    aged(old_upload, 2 * DAY)
    fresh_upload = scratch / "upload-def"
    fresh_upload.write_bytes(b"x")
    # A step folder of a killed worker: its files and then the folder go.
    dead_step = scratch / "step-dead"
    dead_step.mkdir()
    (dead_step / "page-1.png").write_bytes(b"x")
    aged(dead_step / "page-1.png", 2 * DAY)
    aged(dead_step, 2 * DAY)
    # An old folder where a step is working right now: its old file goes, the new one stays.
    busy_step = scratch / "step-busy"
    busy_step.mkdir()
    (busy_step / "old.pdf").write_bytes(b"x")
    aged(busy_step / "old.pdf", 2 * DAY)
    (busy_step / "new.pdf").write_bytes(b"x")
    aged(busy_step, 2 * DAY)
    # The working file of a document still being processed is its next step's input.
    processing = a_document(owner, status=DocumentStatus.PROCESSING)
    working = scratch / processing.uuid.hex / "ocr.pdf"
    working.parent.mkdir()
    working.write_bytes(b"x")
    aged(working, 2 * DAY)
    failed = a_document(owner, status=DocumentStatus.FAILED)
    abandoned = scratch / failed.uuid.hex / "ocr.pdf"
    abandoned.parent.mkdir()
    abandoned.write_bytes(b"x")
    aged(abandoned, 2 * DAY)
    aged(abandoned.parent, 2 * DAY)
    # A link is removed as a link: what it points at, outside the scratch space, stays.
    outside = tmp_path / "precious.pdf"
    outside.write_bytes(b"keep me")
    aged(outside, 2 * DAY)
    link = scratch / "link.pdf"
    link.symlink_to(outside)
    aged(link, 2 * DAY)

    assert scratch_sweep_task() == 5

    assert not old_upload.exists()
    assert fresh_upload.exists()
    assert not dead_step.exists()
    assert sorted(path.name for path in busy_step.iterdir()) == ["new.pdf"]
    assert working.exists()
    assert not abandoned.parent.exists()
    assert not link.is_symlink()
    assert outside.read_bytes() == b"keep me"
    assert scratch_sweep_task() == 0  # idempotent


# --- Log pruning ---------------------------------------------------------------------------------


def test_log_entries_older_than_the_retention_are_pruned_and_zero_keeps_them_all(owner, settings, clock):
    document = a_document(owner)
    now = timezone.now()
    for days, message in ((400, "old"), (366, "just too old"), (364, "recent"), (0, "today")):
        entry = ProcessingLog.objects.create(
            document=document, step_name="ocr", status="success", message=message
        )
        ProcessingLog.objects.filter(pk=entry.pk).update(timestamp=now - datetime.timedelta(days=days))
        AuditLog.objects.create(
            action=AuditAction.LOGIN, target=message, at=now - datetime.timedelta(days=days)
        )

    settings.LOG_RETENTION_DAYS = 0
    assert logs_prune_task() == {"processing_log": 0, "audit_log": 0}
    assert ProcessingLog.objects.count() == AuditLog.objects.count() == 4

    settings.LOG_RETENTION_DAYS = 365
    assert logs_prune_task() == {"processing_log": 2, "audit_log": 2}
    assert sorted(ProcessingLog.objects.values_list("message", flat=True)) == ["recent", "today"]
    assert sorted(AuditLog.objects.values_list("target", flat=True)) == ["recent", "today"]
    assert logs_prune_task() == {"processing_log": 0, "audit_log": 0}


# --- One more run after a temporary failure ------------------------------------------------------


@pytest.fixture
def unreachable_gotenberg(settings: Any, workdir: Path) -> None:
    """Office files convert through a Gotenberg that does not answer: a passing failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.GOTENBERG_URL = f"http://127.0.0.1:{port}"
    settings.TASK_RETRY_MAX_RETRIES = 1  # one retry by the runner, then the step fails
    settings.TASK_RETRY_DELAYS = [1]
    settings.ENABLE_DEDUPLICATION = False  # the same file stands for several documents


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> list[tuple[int, str]]:
    """The pipeline steps sent to the workers, as (document id, step name)."""
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "documents.tasks.pipeline_step_task.apply_async",
        lambda args=(), **kwargs: calls.append(tuple(args)),
    )
    return calls


def ingest(owner: Any, path: Path) -> Document:
    chunks = [path.read_bytes()]
    return document_ingest(owner=owner, chunks=chunks, filename=path.name, enqueue=False).document


def fail_convert_for_a_while(document: Document) -> ProcessingStep:
    """Run the convert step as the worker would until the runner gives up."""
    first = pipeline_step_run(document_id=document.pk, step_name="convert")
    assert first.outcome == "retry", first
    second = pipeline_step_run(document_id=document.pk, step_name="convert")
    assert second.outcome == "failure", second
    return ProcessingStep.objects.get(document=document, name="convert")


def sweep(capture: Any) -> list[int]:
    with capture(execute=True):
        return failed_documents_retry_task()


def test_documents_that_failed_for_a_passing_reason_get_one_more_run_and_the_others_do_not(
    owner, samples, unreachable_gotenberg, sent, django_capture_on_commit_callbacks, clock
):
    gotenberg_down = ingest(owner, samples / "report.odt")
    assert "Gotenberg is not reachable" in fail_convert_for_a_while(gotenberg_down).error
    # Its worker vanished: the watchdog failed the step.
    worker_lost = ingest(owner, samples / "scan.png")
    ProcessingStep.objects.filter(document=worker_lost, name="convert").update(
        status=StepStatus.IN_PROGRESS, started_at=timezone.now() - datetime.timedelta(days=1), attempts=1
    )
    assert pipeline_fail_stuck_steps() == 1
    # A broken file fails the same way whenever it runs.
    broken = ingest(owner, samples / "invalid.pdf")
    assert pipeline_step_run(document_id=broken.pk, step_name="convert").outcome == "failure"
    clock.shift(2 * HOUR)
    # Failed just now: the outage may not be over yet.
    just_failed = ingest(owner, samples / "report.odt")
    fail_convert_for_a_while(just_failed)

    retried = sweep(django_capture_on_commit_callbacks)

    assert sorted(retried) == sorted([gotenberg_down.pk, worker_lost.pk])
    assert sorted(sent) == sorted([(gotenberg_down.pk, "convert"), (worker_lost.pk, "convert")])
    for document in (gotenberg_down, worker_lost):
        document.refresh_from_db()
        assert document.status == DocumentStatus.PENDING
        assert document.logs.filter(
            step_name=RETRY_SWEEP_STEP, message__contains="temporary failure"
        ).exists()
    for document in (broken, just_failed):
        document.refresh_from_db()
        assert document.status == DocumentStatus.FAILED


def test_the_one_more_run_is_given_once_until_a_person_retries_the_document(
    owner, samples, unreachable_gotenberg, sent, django_capture_on_commit_callbacks, clock
):
    document = ingest(owner, samples / "report.odt")
    fail_convert_for_a_while(document)
    clock.shift(2 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == [document.pk]

    # Gotenberg is still down: the extra run fails the same way, and that was the one.
    fail_convert_for_a_while(document)
    clock.shift(7 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == []

    # A person retries it; it fails temporarily again and earns one more automatic run.
    with django_capture_on_commit_callbacks(execute=True):
        document_retry_step(document=document, step_name="convert")
    fail_convert_for_a_while(document)
    clock.shift(2 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == [document.pk]
    fail_convert_for_a_while(document)
    clock.shift(2 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == []

    # So does a reprocessing.
    with django_capture_on_commit_callbacks(execute=True):
        document_reprocess(document=document)
    fail_convert_for_a_while(document)
    clock.shift(2 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == [document.pk]


def failed_with(owner: Any, clock: Any, *, kind: FailureKind, message: str) -> Document:
    """A document whose convert step failed with ``kind`` and ``message``, two hours ago by
    ``clock``."""
    document = a_document(owner)
    ProcessingStep.objects.bulk_create(
        ProcessingStep(document=document, name=name, position=position)
        for position, name in enumerate(STEP_NAMES)
    )
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="", claimed_by="node 1")
    assert claimed is not None
    step_record(step=claimed[1], status=StepStatus.FAILURE, message=message, task_id="", kind=kind)
    clock.shift(2 * HOUR)
    return document


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        (FailureKind.TEMPORARY, True),
        (FailureKind.WORKER_LOST, True),
        (FailureKind.PERMANENT, False),
        (FailureKind.TIMEOUT, False),
        (FailureKind.WORKER_LOST_REPEATEDLY, False),
        (FailureKind.INTERNAL_ERROR, False),
    ],
)
def test_the_sweep_decides_on_the_recorded_kind_of_the_failure_whatever_its_message_says(
    owner, sent, django_capture_on_commit_callbacks, clock, kind, retried
):
    # Each message says the opposite of its kind, in the words the runner used to write.
    misleading = (
        "The file is not a readable PDF."
        if retried
        else "Gotenberg is not reachable. Retrying in 60 s. Its worker may have stopped."
    )
    document = failed_with(owner, clock, kind=kind, message=misleading)
    if not retried:
        # And a history of the runner's retries, which once made any failure count as passing.
        log_event(document.pk, "convert", StepStatus.PENDING, "Down. Retrying in 60 s.")

    assert sweep(django_capture_on_commit_callbacks) == ([document.pk] if retried else [])
    assert sent == ([(document.pk, "convert")] if retried else [])


def test_the_sweep_counts_resets_by_their_kind_not_their_message(
    owner, sent, django_capture_on_commit_callbacks, clock
):
    document = failed_with(owner, clock, kind=FailureKind.TEMPORARY, message="Down.")
    assert sweep(django_capture_on_commit_callbacks) == [document.pk]
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="", claimed_by="node 1")
    assert claimed is not None
    step_record(
        step=claimed[1], status=StepStatus.FAILURE, message="Down.", task_id="", kind=FailureKind.TEMPORARY
    )
    clock.shift(2 * HOUR)
    # Words that once meant a person's retry, without its kind, give no second run.
    log_event(document.pk, "reprocess", StepStatus.PENDING, "Retry requested")
    assert sweep(django_capture_on_commit_callbacks) == []

    # A person's retry, whatever its wording, does.
    steps_reset(
        document_id=document.pk,
        from_step="convert",
        reason=ResetKind.MANUAL_RETRY,
        log_step_name="convert",
        message="Run it again, please",
    )
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="", claimed_by="node 1")
    assert claimed is not None
    step_record(
        step=claimed[1], status=StepStatus.FAILURE, message="Down.", task_id="", kind=FailureKind.TEMPORARY
    )
    clock.shift(2 * HOUR)
    assert sweep(django_capture_on_commit_callbacks) == [document.pk]


def test_failures_older_than_a_week_are_left_to_a_person(
    owner, samples, unreachable_gotenberg, sent, django_capture_on_commit_callbacks, clock
):
    document = ingest(owner, samples / "report.odt")
    fail_convert_for_a_while(document)
    clock.shift(8 * 24 * HOUR)

    assert sweep(django_capture_on_commit_callbacks) == []
    assert sent == []


# --- Backups on schedule -------------------------------------------------------------------------


@pytest.mark.subprocess  # a backup in this process runs pg_dump when the suite runs on PostgreSQL
def test_the_scheduled_backup_writes_a_backup_of_its_tier_unless_backups_are_off(settings, workdir, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_ENABLED = False
    assert backup_task("daily") is None
    assert not BackupRecord.objects.exists()

    settings.BACKUP_ENABLED = True
    record_id = backup_task("hourly")
    assert record_id is not None
    record = BackupRecord.objects.get(pk=record_id)

    assert (record.tier, record.status) == (BackupTier.HOURLY, BackupStatus.SUCCEEDED)
    assert [path.name for path in settings.BACKUP_DIR.glob("docuelevate-hourly-*.tar")]
