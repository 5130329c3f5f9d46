"""The step runner: idempotence, retries, failures, restarts, status and log bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.base import StepFailed, StepInputMissing, StepTemporarilyFailed
from documents.pipeline.runner import pipeline_run_sync, pipeline_step_run
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from documents.services import document_reprocess
from documents.tests.conftest import stored_bytes

pytestmark = pytest.mark.django_db

OCR = STEP_NAMES.index("ocr")
EXTRACT_METADATA = STEP_NAMES.index("extract_metadata")
EMBED_METADATA = STEP_NAMES.index("embed_metadata")


def step_of(document: Document, name: str) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, name=name)


def step_statuses(document: Document) -> dict[str, str]:
    return dict(ProcessingStep.objects.filter(document=document).values_list("name", "status"))


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def stored_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def log_entries(document: Document) -> list[tuple[int, str, str, str]]:
    return list(
        ProcessingLog.objects.filter(document=document).values_list("id", "step_name", "status", "message")
    )


def run(document: Document, step_name: str, **options):
    return pipeline_step_run(document_id=document.pk, step_name=step_name, **options)


# --- Idempotence ---------------------------------------------------------------------------


def test_a_step_that_already_finished_is_a_noop_when_its_message_is_delivered_again(
    process, trivial, document_storage
):
    document = process(trivial)
    assert document.status == DocumentStatus.COMPLETED
    files_before = stored_files(document_storage)
    processed_before = (document_storage / document.processed_file).read_bytes()
    logs_before = document.logs.count()

    for step_name in STEP_NAMES:
        attempts_before = step_of(document, step_name).attempts
        outcome = run(document, step_name, task_id="redelivered")

        assert outcome.outcome == "noop", step_name
        assert outcome.next_step is None  # everything after it is done too: the chain ends here
        step = step_of(document, step_name)
        assert step.attempts == attempts_before
        assert step.task_id != "redelivered"

    assert stored_files(document_storage) == files_before  # no second processed file
    assert (document_storage / document.processed_file).read_bytes() == processed_before
    assert document.logs.count() == logs_before
    assert fresh(document).status == DocumentStatus.COMPLETED


def test_after_a_noop_the_next_step_is_passed_on_only_while_it_is_still_pending(engines, ingest, trivial):
    document = ingest(trivial)
    assert run(document, "convert").outcome == "skipped"  # a PDF needs no conversion

    # The chain was cut after convert (say the broker lost the next message): a redelivered
    # convert message picks it up again.
    again = run(document, "convert")
    assert (again.outcome, again.next_step) == ("noop", "ocr")

    # Another worker holds the OCR step right now: the no-op must not start it a second time.
    ProcessingStep.objects.filter(document=document, name="ocr").update(status=StepStatus.IN_PROGRESS)
    assert run(document, "convert").next_step is None

    ProcessingStep.objects.filter(document=document, name="ocr").update(status=StepStatus.PENDING)
    assert run(document, "ocr").outcome == "success"
    again = run(document, "convert")
    assert (again.outcome, again.next_step) == ("noop", None)
    assert step_of(document, "convert").attempts == 1


# --- Temporary failures and retries --------------------------------------------------------


def test_a_temporary_failure_is_retried_with_the_configured_delays_then_fails_for_good(
    ingest, trivial, settings, monkeypatch
):
    settings.TASK_RETRY_MAX_RETRIES = 3
    settings.TASK_RETRY_DELAYS = [10, 100, 1000]
    message = "The OCR service did not answer."

    def unreachable(context):
        raise StepTemporarilyFailed(message)

    document = ingest(trivial)
    run(document, "convert")
    monkeypatch.setattr(PIPELINE[OCR], "run", unreachable)

    for attempt, base in enumerate(settings.TASK_RETRY_DELAYS, start=1):
        outcome = run(document, "ocr")
        assert outcome.outcome == "retry"
        assert outcome.next_step is None
        assert base * 0.9 - 0.5 <= outcome.retry_in <= base * 1.1 + 0.5  # +-10 % jitter
        step = step_of(document, "ocr")
        assert step.attempts == attempt
        assert step.status == StepStatus.PENDING  # waits for the retry, not stuck in progress
        assert step.error == f"{message} Retrying in {outcome.retry_in} s."
        assert step.claimed_by == ""
        assert fresh(document).status == DocumentStatus.PROCESSING

    final = run(document, "ocr")
    assert final.outcome == "failure"
    assert final.retry_in is None
    step = step_of(document, "ocr")
    assert (step.status, step.attempts, step.error) == (StepStatus.FAILURE, 4, message)
    document = fresh(document)
    assert document.status == DocumentStatus.FAILED
    assert document.error == message
    assert step_statuses(document)["extract_metadata"] == StepStatus.PENDING  # nothing ran after it


def test_retries_past_the_configured_delays_keep_waiting_the_longest_delay(
    ingest, trivial, settings, monkeypatch
):
    settings.TASK_RETRY_MAX_RETRIES = 3
    settings.TASK_RETRY_DELAYS = [10, 100]

    def unreachable(context):
        raise StepTemporarilyFailed("Service down.")

    document = ingest(trivial)
    run(document, "convert")
    monkeypatch.setattr(PIPELINE[OCR], "run", unreachable)
    delays = [run(document, "ocr").retry_in for _ in range(3)]
    assert 9 <= delays[0] <= 11
    assert 90 <= delays[1] <= 110
    assert 90 <= delays[2] <= 110


def test_retry_delays_are_jittered_so_documents_that_failed_together_do_not_retry_together(
    ingest, samples, settings, monkeypatch
):
    settings.ENABLE_DEDUPLICATION = False
    settings.TASK_RETRY_DELAYS = [1000]

    def unreachable(context):
        raise StepTemporarilyFailed("Service down.")

    monkeypatch.setattr(PIPELINE[0], "run", unreachable)
    delays = {run(ingest(samples / "blank.pdf"), "convert").retry_in for _ in range(20)}
    assert len(delays) > 1
    assert all(900 <= delay <= 1100 for delay in delays)


def test_without_retries_allowed_a_temporary_failure_fails_at_once(ingest, trivial, monkeypatch):
    def unreachable(context):
        raise StepTemporarilyFailed("The OCR service did not answer.")

    document = ingest(trivial)
    run(document, "convert")
    monkeypatch.setattr(PIPELINE[OCR], "run", unreachable)

    outcome = run(document, "ocr", retries_allowed=False)

    assert outcome.outcome == "failure"
    assert step_of(document, "ocr").attempts == 1
    document = fresh(document)
    assert document.status == DocumentStatus.FAILED
    assert document.error == "The OCR service did not answer."


def test_with_no_retries_configured_a_temporary_failure_fails_at_once(ingest, trivial, settings, monkeypatch):
    settings.TASK_RETRY_MAX_RETRIES = 0

    def unreachable(context):
        raise StepTemporarilyFailed("The OCR service did not answer.")

    document = ingest(trivial)
    run(document, "convert")
    monkeypatch.setattr(PIPELINE[OCR], "run", unreachable)

    assert run(document, "ocr").outcome == "failure"
    assert fresh(document).status == DocumentStatus.FAILED


# --- Permanent failures and crashes --------------------------------------------------------


def test_a_permanent_failure_fails_the_document_with_the_steps_reason_and_keeps_the_original(
    ingest, trivial, monkeypatch
):
    def refuse(context):
        raise StepFailed("The document has 900 pages; the limit (MAX_PAGES) is 500.")

    document = ingest(trivial)
    monkeypatch.setattr(PIPELINE[0], "run", refuse)

    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.FAILED
    assert document.error == "The document has 900 pages; the limit (MAX_PAGES) is 500."
    assert stored_bytes(document.original_file) == trivial.read_bytes()
    assert not document.processed_file
    assert step_statuses(document) == {
        "convert": StepStatus.FAILURE,
        **{name: StepStatus.PENDING for name in STEP_NAMES[1:]},
    }


def test_an_unexpected_exception_fails_only_that_document_with_an_internal_error(
    engines, ingest, trivial, other_user, monkeypatch, caplog
):
    broken = ingest(trivial)
    healthy = ingest(trivial, user=other_user)
    real_run = PIPELINE[EXTRACT_METADATA].run

    def crash_on_broken(context):
        if context.document.pk == broken.pk:
            raise KeyError("secret-internal-detail")
        return real_run(context)

    monkeypatch.setattr(PIPELINE[EXTRACT_METADATA], "run", crash_on_broken)

    broken = pipeline_run_sync(document_id=broken.pk)
    healthy = pipeline_run_sync(document_id=healthy.pk)

    assert broken.status == DocumentStatus.FAILED
    assert broken.error == "Internal error in the extract_metadata step (KeyError); see the server log."
    assert "secret-internal-detail" not in broken.error  # internals stay in the server log
    assert "secret-internal-detail" in caplog.text
    assert step_of(broken, "extract_metadata").status == StepStatus.FAILURE
    assert stored_bytes(broken.original_file) == trivial.read_bytes()
    assert not broken.processed_file

    assert healthy.status == DocumentStatus.COMPLETED
    assert healthy.error == ""
    assert healthy.processed_file


# --- Lost intermediate files ---------------------------------------------------------------


def test_step_input_missing_resets_every_step_to_pending_and_starts_again_with_convert(
    engines, ingest, trivial, monkeypatch
):
    document = ingest(trivial)
    for name in STEP_NAMES[:EMBED_METADATA]:
        run(document, name)

    def input_gone(context):
        raise StepInputMissing("The intermediate PDF of this document is gone; processing starts over.")

    monkeypatch.setattr(PIPELINE[EMBED_METADATA], "run", input_gone)
    outcome = run(document, "embed_metadata")

    assert outcome.outcome == "restart"
    assert outcome.next_step == "convert"
    assert set(step_statuses(document).values()) == {StepStatus.PENDING}
    document = fresh(document)
    assert document.status == DocumentStatus.PENDING
    assert document.working_file == ""
    last = document.logs.last()
    assert last is not None
    assert (last.step_name, last.status) == ("embed_metadata", StepStatus.PENDING)
    assert "processing starts over" in last.message

    monkeypatch.undo()
    document = pipeline_run_sync(document_id=document.pk)
    assert document.status == DocumentStatus.COMPLETED


def test_a_swept_intermediate_pdf_makes_the_pipeline_start_over_and_still_complete(
    engines, ingest, trivial, document_storage
):
    document = ingest(trivial)
    for name in STEP_NAMES[:EMBED_METADATA]:
        run(document, name)
    # The scratch sweeper removed the OCR result before the next step ran.
    ocr_result = fresh(document).working_file
    assert ocr_result == f"tmp/{document.uuid.hex}/ocr.pdf"
    (document_storage / ocr_result).unlink()

    outcome = run(document, "embed_metadata")

    assert (outcome.outcome, outcome.next_step) == ("restart", "convert")
    assert fresh(document).status == DocumentStatus.PENDING
    document = pipeline_run_sync(document_id=document.pk)
    assert document.status == DocumentStatus.COMPLETED
    assert stored_bytes(document.processed_file)[:5] == b"%PDF-"


# --- Document status -----------------------------------------------------------------------


def test_the_document_status_follows_its_steps_from_pending_through_processing_to_completed(
    engines, ingest, trivial, monkeypatch
):
    document = ingest(trivial)
    assert document.status == DocumentStatus.PENDING
    seen_while_running = []
    real_run = PIPELINE[0].run

    def watching(context):
        seen_while_running.append(fresh(context.document).status)
        return real_run(context)

    monkeypatch.setattr(PIPELINE[0], "run", watching)

    statuses_after = []
    for name in STEP_NAMES:
        run(document, name)
        statuses_after.append(fresh(document).status)

    assert seen_while_running == [DocumentStatus.PROCESSING]
    assert statuses_after == [DocumentStatus.PROCESSING] * (len(STEP_NAMES) - 1) + [DocumentStatus.COMPLETED]
    assert fresh(document).error == ""


def test_any_failed_step_makes_the_document_failed_with_that_steps_error(
    engines, ingest, trivial, monkeypatch
):
    document = ingest(trivial)
    for name in STEP_NAMES[:EMBED_METADATA]:
        run(document, name)

    def refuse(context):
        raise StepFailed("The PDF structure cannot take metadata.")

    monkeypatch.setattr(PIPELINE[EMBED_METADATA], "run", refuse)
    run(document, "embed_metadata")

    document = fresh(document)
    assert document.status == DocumentStatus.FAILED
    assert document.error == "The PDF structure cannot take metadata."
    assert step_of(document, "embed_metadata").error == "The PDF structure cannot take metadata."


# --- Processing log ------------------------------------------------------------------------


def test_a_full_run_logs_every_transition_in_order(process, trivial):
    document = process(trivial)

    entries = list(document.logs.values_list("step_name", "status"))

    expected: list[tuple[str, str]] = [("ingest", DocumentStatus.PENDING)]
    for name in STEP_NAMES:
        finished = StepStatus.SKIPPED if name == "convert" else StepStatus.SUCCESS
        expected += [(name, StepStatus.IN_PROGRESS), (name, finished)]
    assert entries == expected
    assert len(entries) == 1 + 2 * len(STEP_NAMES)
    timestamps = list(document.logs.values_list("timestamp", flat=True))
    assert timestamps == sorted(timestamps)
    assert document.logs.filter(status=StepStatus.IN_PROGRESS).first().message == "Attempt 1"
    assert document.logs.last().message == f"Filed as {document.processed_file}"


def test_the_log_is_append_only_a_second_run_adds_entries_and_changes_none(process, trivial):
    document = process(trivial)
    first_run = log_entries(document)

    document_reprocess(document=document, enqueue=False)
    pipeline_run_sync(document_id=document.pk)

    everything = log_entries(document)
    assert everything[: len(first_run)] == first_run
    added = [step_name for _, step_name, _, _ in everything[len(first_run) :]]
    assert added == ["reprocess"] + [name for name in STEP_NAMES for _ in range(2)]


# --- Files ---------------------------------------------------------------------------------


def test_running_the_pipeline_twice_leaves_one_processed_file_and_one_sidecar(
    process, trivial, document_storage
):
    document = process(trivial)
    document_reprocess(document=document, enqueue=False)
    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.COMPLETED
    stem = Path(document.processed_file).stem
    folder = f"processed/{document.uuid.hex}"
    assert stored_files(document_storage / "processed") == sorted(
        [f"{document.uuid.hex}/{stem}.{ext}" for ext in ("json", "pdf")]
        + [f"{document.uuid.hex}/thumbnail.png"]
    )
    assert document.processed_file == f"{folder}/{stem}.pdf"
    assert len(list((document_storage / "originals").iterdir())) == 1
    assert not (document_storage / "tmp" / document.uuid.hex).exists()  # intermediate files cleaned up
