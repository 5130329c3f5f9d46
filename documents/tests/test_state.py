"""Step state: each transition of documents.pipeline.state, the kinds the runner records, and the
migration that gave rows written before kinds existed theirs."""

from __future__ import annotations

import datetime
import importlib
import io
from types import SimpleNamespace
from typing import Any

import pikepdf
import pytest
from django.apps import apps
from django.utils import timezone

from documents.models import (
    Document,
    DocumentStatus,
    FailureKind,
    LogStep,
    ProcessingLog,
    ProcessingStep,
    ResetKind,
    StepStatus,
)
from documents.pipeline.base import StepFailed, StepInputMissing, StepTemporarilyFailed
from documents.pipeline.runner import (
    Outcome,
    pipeline_fail_stuck_steps,
    pipeline_resume_abandoned,
    pipeline_step_run,
)
from documents.pipeline.state import document_refresh_status, step_claim, step_record, steps_reset
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from documents.services import document_reprocess, document_retry_step

pytestmark = pytest.mark.django_db

OCR = STEP_NAMES.index("ocr")


def blank_pdf() -> bytes:
    """A one-page PDF with nothing on it: enough to be ingested; no step runs on it here."""
    buffer = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def document(ingest: Any) -> Document:
    result: Document = ingest(blank_pdf(), "blank.pdf")
    return result


def step_of(document: Document, name: str) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, name=name)


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def set_steps(document: Document, **by_name: dict[str, Any]) -> None:
    for name, fields in by_name.items():
        ProcessingStep.objects.filter(document=document, name=name).update(**fields)


def last_log(document: Document) -> ProcessingLog:
    entry = ProcessingLog.objects.filter(document=document).order_by("pk").last()
    assert entry is not None
    return entry


DONE = {"status": StepStatus.SUCCESS, "attempts": 1}


# --- Claim -------------------------------------------------------------------------------------


def test_claiming_a_pending_step_puts_it_in_progress_with_one_more_attempt_and_logs_it(document):
    set_steps(document, ocr={"attempts": 2, "error": "Old reason.", "failure_kind": FailureKind.TEMPORARY})

    claimed = step_claim(document_id=document.pk, step_name="ocr", task_id="task-1", claimed_by="node 42")

    assert claimed is not None
    _, step = claimed
    step = step_of(document, "ocr")
    assert (step.status, step.attempts, step.task_id, step.claimed_by) == (
        StepStatus.IN_PROGRESS,
        3,
        "task-1",
        "node 42",
    )
    assert (step.error, step.failure_kind, step.finished_at) == ("", "", None)
    assert step.started_at is not None
    entry = last_log(document)
    assert (entry.step_name, entry.status, entry.message, entry.kind) == (
        "ocr",
        StepStatus.IN_PROGRESS,
        "Attempt 3",
        "",
    )
    assert fresh(document).status == DocumentStatus.PROCESSING


def test_a_step_that_is_done_or_gone_cannot_be_claimed_and_is_left_as_it_was(document):
    set_steps(document, convert=DONE, ocr={"status": StepStatus.SKIPPED, "attempts": 1})
    logs_before = ProcessingLog.objects.count()

    assert step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="n 1") is None
    assert step_claim(document_id=document.pk, step_name="ocr", task_id="t", claimed_by="n 1") is None
    assert step_claim(document_id=document.pk + 1000, step_name="ocr", task_id="t", claimed_by="n 1") is None

    assert step_of(document, "convert").attempts == 1
    assert ProcessingLog.objects.count() == logs_before


def test_a_step_in_progress_is_taken_over_only_once_its_claim_has_run_out(document, settings, clock):
    settings.WORKER_CLAIM_TIMEOUT = 30
    assert step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="pod-a 1 r1")
    assert step_of(document, "convert").claim_expires_at == timezone.now() + datetime.timedelta(seconds=30)

    clock.shift(29)
    # A message that came back (Redis's visibility timeout) while the run renews its claim.
    assert (
        step_claim(document_id=document.pk, step_name="convert", task_id="t2", claimed_by="pod-b 1 r2")
        is None
    )
    clock.shift(2)
    assert step_claim(document_id=document.pk, step_name="convert", task_id="t2", claimed_by="pod-b 1 r2")
    step = step_of(document, "convert")
    assert (step.claimed_by, step.attempts, step.task_id) == ("pod-b 1 r2", 2, "t2")


# --- Record an outcome ---------------------------------------------------------------------------


def test_recording_a_success_releases_the_claim_and_clears_any_error(document):
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="n 1")
    assert claimed is not None

    step_record(step=claimed[1], status=StepStatus.SUCCESS, message="Converted.", task_id="t")

    step = step_of(document, "convert")
    assert (step.status, step.error, step.failure_kind, step.claimed_by) == (StepStatus.SUCCESS, "", "", "")
    assert step.finished_at is not None
    entry = last_log(document)
    assert (entry.status, entry.message, entry.kind) == (StepStatus.SUCCESS, "Converted.", "")


def test_recording_a_failure_keeps_its_message_and_its_kind_on_the_step_and_in_the_log(document):
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="n 1")
    assert claimed is not None

    step_record(
        step=claimed[1],
        status=StepStatus.FAILURE,
        message="Gotenberg is not reachable.",
        task_id="t",
        kind=FailureKind.TEMPORARY,
    )

    step = step_of(document, "convert")
    assert (step.status, step.error, step.failure_kind) == (
        StepStatus.FAILURE,
        "Gotenberg is not reachable.",
        FailureKind.TEMPORARY,
    )
    assert last_log(document).kind == FailureKind.TEMPORARY
    document = fresh(document)
    assert (document.status, document.error) == (DocumentStatus.FAILED, "Gotenberg is not reachable.")


def test_a_step_waiting_for_its_retry_keeps_the_reason_and_kind_but_has_not_finished(document):
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="n 1")
    assert claimed is not None

    step_record(
        step=claimed[1], status=StepStatus.PENDING, message="Down.", task_id="t", kind=FailureKind.TEMPORARY
    )

    step = step_of(document, "convert")
    assert (step.status, step.error, step.failure_kind, step.finished_at) == (
        StepStatus.PENDING,
        "Down.",
        FailureKind.TEMPORARY,
        None,
    )


def test_a_failure_cannot_be_recorded_without_its_kind(document):
    claimed = step_claim(document_id=document.pk, step_name="convert", task_id="t", claimed_by="n 1")
    assert claimed is not None

    with pytest.raises(ValueError, match="kind"):
        step_record(step=claimed[1], status=StepStatus.FAILURE, message="Broken.", task_id="t")

    assert step_of(document, "convert").status == StepStatus.IN_PROGRESS


# --- Reset -------------------------------------------------------------------------------------

FAILED_OCR = {
    "status": StepStatus.FAILURE,
    "attempts": 3,
    "error": "Down.",
    "failure_kind": FailureKind.TEMPORARY,
    "claimed_by": "n 1",
}


def failed_at_ocr(document: Document) -> None:
    set_steps(document, convert=DONE, ocr=FAILED_OCR)
    Document.objects.filter(pk=document.pk).update(working_file="tmp/x/convert.pdf")
    document_refresh_status(fresh(document))


@pytest.mark.parametrize("reason", [ResetKind.MANUAL_RETRY, ResetKind.RETRY_SWEEP])
def test_a_retry_from_a_step_starts_its_attempts_afresh_and_keeps_the_steps_before_and_their_file(
    document, reason
):
    failed_at_ocr(document)

    steps_reset(
        document_id=document.pk,
        from_step="ocr",
        reason=reason,
        log_step_name="ocr",
        message="Retry requested",
    )

    convert, ocr = step_of(document, "convert"), step_of(document, "ocr")
    assert (convert.status, convert.attempts) == (StepStatus.SUCCESS, 1)
    assert (ocr.status, ocr.attempts, ocr.error, ocr.failure_kind, ocr.claimed_by) == (
        StepStatus.PENDING,
        0,
        "",
        "",
        "",
    )
    document = fresh(document)
    assert (document.status, document.error, document.working_file) == (
        DocumentStatus.PROCESSING,
        "",
        "tmp/x/convert.pdf",
    )
    entry = last_log(document)
    assert (entry.step_name, entry.status, entry.message, entry.kind) == (
        "ocr",
        StepStatus.PENDING,
        "Retry requested",
        reason,
    )


def test_a_reprocess_resets_every_step_with_fresh_attempts_and_forgets_the_working_file(document):
    failed_at_ocr(document)

    steps_reset(
        document_id=document.pk,
        from_step=STEP_NAMES[0],
        reason=ResetKind.REPROCESS,
        log_step_name="reprocess",
        message="Reprocessing requested",
    )

    assert set(ProcessingStep.objects.filter(document=document).values_list("status", "attempts")) == {
        (StepStatus.PENDING, 0)
    }
    document = fresh(document)
    assert (document.status, document.error, document.working_file) == (DocumentStatus.PENDING, "", "")
    assert last_log(document).kind == ResetKind.REPROCESS


def test_the_runners_restart_after_a_missing_input_keeps_the_attempts_so_a_loop_still_ends(document):
    failed_at_ocr(document)
    set_steps(document, ocr={"status": StepStatus.IN_PROGRESS, "error": "", "failure_kind": ""})

    steps_reset(
        document_id=document.pk,
        from_step=STEP_NAMES[0],
        reason=ResetKind.INPUT_MISSING,
        log_step_name="ocr",
        message="The intermediate PDF of this document is gone; processing starts over.",
    )

    assert step_of(document, "convert").attempts == 1
    assert step_of(document, "ocr").attempts == 3
    assert {step.status for step in fresh(document).steps.all()} == {StepStatus.PENDING}
    assert fresh(document).working_file == ""
    assert last_log(document).kind == ResetKind.INPUT_MISSING


def test_the_services_reset_through_the_same_rules_and_log_their_reason(document):
    failed_at_ocr(document)
    document_retry_step(document=fresh(document), step_name="ocr", enqueue=False)
    assert (step_of(document, "ocr").attempts, last_log(document).kind) == (0, ResetKind.MANUAL_RETRY)

    failed_at_ocr(document)
    document_reprocess(document=fresh(document), enqueue=False)
    assert (step_of(document, "convert").attempts, last_log(document).kind) == (0, ResetKind.REPROCESS)


# --- The document's status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({}, DocumentStatus.PENDING),
        ({"convert": StepStatus.IN_PROGRESS}, DocumentStatus.PROCESSING),
        ({"convert": StepStatus.SKIPPED}, DocumentStatus.PROCESSING),
        ({name: StepStatus.SUCCESS for name in STEP_NAMES}, DocumentStatus.COMPLETED),
        ({"convert": StepStatus.SUCCESS, "ocr": StepStatus.FAILURE}, DocumentStatus.FAILED),
    ],
)
def test_the_documents_status_follows_from_its_steps(document, statuses, expected):
    set_steps(document, **{name: {"status": status, "error": "Why."} for name, status in statuses.items()})

    document_refresh_status(fresh(document))

    document = fresh(document)
    assert document.status == expected
    assert document.error == ("Why." if expected == DocumentStatus.FAILED else "")


def test_a_duplicates_status_is_never_derived_from_steps(document):
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.DUPLICATE)
    set_steps(document, convert={"status": StepStatus.FAILURE, "error": "Why."})

    document_refresh_status(fresh(document))

    assert fresh(document).status == DocumentStatus.DUPLICATE


def test_every_pipeline_step_is_a_declared_log_step_name():
    assert set(STEP_NAMES) <= set(LogStep.values)


# --- The kinds the runner records ----------------------------------------------------------------


def raising(exc: BaseException) -> Any:
    def run(context: Any) -> Any:
        raise exc

    return run


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StepFailed("The file is broken. Retrying in 5 s."), FailureKind.PERMANENT),
        (StepTemporarilyFailed("The service is down."), FailureKind.TEMPORARY),
        (KeyError("boom"), FailureKind.INTERNAL_ERROR),
    ],
)
def test_the_runner_records_the_kind_of_each_failure(document, monkeypatch, error, kind):
    set_steps(document, convert=DONE)
    monkeypatch.setattr(PIPELINE[OCR], "run", raising(error))

    outcome = pipeline_step_run(document_id=document.pk, step_name="ocr", retries_allowed=False)

    assert outcome.outcome is Outcome.FAILURE
    assert step_of(document, "ocr").failure_kind == kind


def test_a_timeout_is_recorded_as_a_timeout(document, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    set_steps(document, convert=DONE)
    monkeypatch.setattr(PIPELINE[OCR], "run", raising(SoftTimeLimitExceeded()))

    pipeline_step_run(document_id=document.pk, step_name="ocr")

    assert step_of(document, "ocr").failure_kind == FailureKind.TIMEOUT


def test_a_temporary_failure_waiting_for_its_retry_is_recorded_as_temporary(document, monkeypatch, settings):
    settings.TASK_RETRY_MAX_RETRIES = 1
    set_steps(document, convert=DONE)
    monkeypatch.setattr(PIPELINE[OCR], "run", raising(StepTemporarilyFailed("Down.")))

    assert pipeline_step_run(document_id=document.pk, step_name="ocr").outcome is Outcome.RETRY
    assert (step_of(document, "ocr").status, step_of(document, "ocr").failure_kind) == (
        StepStatus.PENDING,
        FailureKind.TEMPORARY,
    )
    assert pipeline_step_run(document_id=document.pk, step_name="ocr").outcome is Outcome.FAILURE
    assert step_of(document, "ocr").failure_kind == FailureKind.TEMPORARY


def test_a_missing_input_restarts_the_pipeline_and_a_missing_original_is_permanent(document, monkeypatch):
    set_steps(document, convert=DONE)
    gone = raising(StepInputMissing("The intermediate PDF of this document is gone; processing starts over."))
    monkeypatch.setattr(PIPELINE[OCR], "run", gone)
    assert pipeline_step_run(document_id=document.pk, step_name="ocr").outcome is Outcome.RESTART
    assert last_log(document).kind == ResetKind.INPUT_MISSING

    monkeypatch.setattr(PIPELINE[0], "run", gone)
    assert pipeline_step_run(document_id=document.pk, step_name="convert").outcome is Outcome.FAILURE
    assert step_of(document, "convert").failure_kind == FailureKind.PERMANENT


def test_a_step_whose_worker_vanished_is_worker_lost_and_one_that_kills_it_too_often_is_not(
    document, settings, clock
):
    settings.TASK_RETRY_MAX_RETRIES = 1
    long_ago = timezone.now() - datetime.timedelta(days=1)
    set_steps(document, convert={"status": StepStatus.IN_PROGRESS, "started_at": long_ago, "attempts": 1})
    assert pipeline_fail_stuck_steps() == 1
    assert step_of(document, "convert").failure_kind == FailureKind.WORKER_LOST

    claim = {"status": StepStatus.IN_PROGRESS, "claimed_by": "celery@node-1 7", "attempts": 1}
    set_steps(document, convert=claim)
    assert pipeline_resume_abandoned(worker_name="celery@node-1") == [(document.pk, "convert")]
    step = step_of(document, "convert")
    assert (step.status, step.failure_kind) == (StepStatus.PENDING, FailureKind.WORKER_LOST)

    set_steps(document, convert={**claim, "attempts": 2})
    assert pipeline_resume_abandoned(worker_name="celery@node-1") == []
    step = step_of(document, "convert")
    assert (step.status, step.failure_kind) == (StepStatus.FAILURE, FailureKind.WORKER_LOST_REPEATEDLY)


# --- The data migration --------------------------------------------------------------------------


def old_log(document: Document, step_name: str, status: str, message: str) -> ProcessingLog:
    """A log entry as written before kinds existed."""
    return ProcessingLog.objects.create(
        document=document, step_name=step_name, status=status, message=message
    )


def test_the_migration_gives_rows_written_before_kinds_their_kind_from_the_old_wording(ingest, settings):
    settings.ENABLE_DEDUPLICATION = False
    migration = importlib.import_module("documents.migrations.0006_failure_kinds_from_messages")
    retried = ingest(blank_pdf(), "retried.pdf")
    old_log(retried, "convert", "pending", "Gotenberg is not reachable (ConnectError). Retrying in 61 s.")
    set_steps(retried, convert={"status": StepStatus.FAILURE, "error": "Gotenberg is not reachable."})
    # Retried by hand since: an earlier temporary retry no longer counts.
    retried_by_hand = ingest(blank_pdf(), "by-hand.pdf")
    old_log(retried_by_hand, "convert", "pending", "Down. Retrying in 61 s.")
    manual = old_log(retried_by_hand, "convert", "pending", "Retry requested")
    set_steps(retried_by_hand, convert={"status": StepStatus.FAILURE, "error": "The file is empty."})
    vanished = ingest(blank_pdf(), "vanished.pdf")
    message = (
        "The convert step did not finish within 600 seconds (STEP_TIMEOUT); its worker may have stopped."
    )
    set_steps(vanished, convert={"status": StepStatus.FAILURE, "error": message})
    swept = ingest(blank_pdf(), "swept.pdf")
    sweep_retry = old_log(swept, "convert", "pending", "Retry requested")
    sweep_mark = old_log(swept, "retry_sweep", "pending", "One more run of the convert step after ...")
    timed_out = ingest(blank_pdf(), "timed-out.pdf")
    failure = old_log(
        timed_out, "ocr", "failure", "The ocr step did not finish within 600 seconds (STEP_TIMEOUT)."
    )
    set_steps(timed_out, ocr={"status": StepStatus.FAILURE, "error": failure.message})
    waiting = ingest(blank_pdf(), "waiting.pdf")
    set_steps(waiting, convert={"error": "The worker stopped during the convert step; running it again."})
    reprocessed = ingest(blank_pdf(), "reprocessed.pdf")
    reprocess = old_log(reprocessed, "reprocess", "pending", "Reprocessing requested")
    crashed = old_log(
        reprocessed, "ocr", "failure", "Internal error in the ocr step (KeyError); see the server log."
    )

    migration.forwards(apps, SimpleNamespace())

    assert step_of(retried, "convert").failure_kind == FailureKind.TEMPORARY
    assert step_of(retried_by_hand, "convert").failure_kind == FailureKind.PERMANENT
    assert step_of(vanished, "convert").failure_kind == FailureKind.WORKER_LOST
    assert step_of(timed_out, "ocr").failure_kind == FailureKind.TIMEOUT
    assert step_of(waiting, "convert").failure_kind == FailureKind.WORKER_LOST
    assert step_of(reprocessed, "ocr").failure_kind == ""  # no error, no kind
    kinds = dict(ProcessingLog.objects.values_list("pk", "kind"))
    assert kinds[manual.pk] == ResetKind.MANUAL_RETRY
    assert kinds[sweep_retry.pk] == kinds[sweep_mark.pk] == ResetKind.RETRY_SWEEP
    assert kinds[failure.pk] == FailureKind.TIMEOUT
    assert kinds[reprocess.pk] == ResetKind.REPROCESS
    assert kinds[crashed.pk] == FailureKind.INTERNAL_ERROR
    assert set(ProcessingLog.objects.filter(step_name="ingest").values_list("kind", flat=True)) == {""}
