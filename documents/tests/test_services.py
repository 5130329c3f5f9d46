"""Services of the document lifecycle: reprocess, retry a step, delete, enqueue, visibility."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from accounts.access import Viewer
from docuelevate.errors import Conflict, InvalidInput, NotFound
from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.base import StepFailed, StepTemporarilyFailed
from documents.pipeline.runner import pipeline_run_sync, pipeline_step_run
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from documents.selectors import document_get_for_user
from documents.services import document_delete, document_reprocess, document_retry_step, pipeline_enqueue

PIPELINE_TASK = "documents.tasks.pipeline_step_task"

pytestmark = pytest.mark.django_db

OCR = STEP_NAMES.index("ocr")


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def step_of(document: Document, name: str) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, name=name)


def stored_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def fail_ocr(monkeypatch, message: str = "The OCR engine is not installed.") -> None:
    def broken(context):
        raise StepFailed(message)

    monkeypatch.setattr(PIPELINE[OCR], "run", broken)


# --- Reprocess -----------------------------------------------------------------------------


def test_reprocess_resets_every_step_and_the_pipeline_runs_again_with_forced_ocr(process, samples):
    # A tiny PDF whose page already has text: normally OCR is skipped for it.
    document = process(samples / "no-docinfo.pdf")
    assert step_of(document, "ocr").status == StepStatus.SKIPPED

    document_reprocess(document=document, force_ocr=True, enqueue=False)

    reset = fresh(document)
    assert reset.status == DocumentStatus.PENDING
    assert reset.working_file == ""
    assert set(reset.steps.values_list("status", "attempts", "error")) == {(StepStatus.PENDING, 0, "")}
    last = reset.logs.last()
    assert last is not None
    assert (last.step_name, last.message) == ("reprocess", "Reprocessing requested with forced OCR")

    document = pipeline_run_sync(document_id=document.pk, force_ocr=True)

    assert document.status == DocumentStatus.COMPLETED
    ocr = step_of(document, "ocr")
    assert (ocr.status, ocr.attempts) == (StepStatus.SUCCESS, 1)  # OCR really ran this time
    assert (
        document.logs.filter(step_name="ocr", status=StepStatus.SUCCESS)
        .get()
        .message.startswith("OCR with tesseract on page(s) 1 of 1")
    )
    assert document.logs.filter(step_name="finalize", status=StepStatus.SUCCESS).count() == 2


def test_reprocess_without_forced_ocr_says_so_in_the_log(process, trivial):
    document = process(trivial)
    document_reprocess(document=document, enqueue=False)
    assert document.logs.last().message == "Reprocessing requested"


def test_reprocess_of_a_failed_document_clears_its_error_and_can_complete(
    engines, ingest, trivial, monkeypatch
):
    fail_ocr(monkeypatch)
    document = pipeline_run_sync(document_id=ingest(trivial).pk)
    assert document.status == DocumentStatus.FAILED

    monkeypatch.undo()
    document_reprocess(document=document, enqueue=False)
    assert (fresh(document).status, fresh(document).error) == (DocumentStatus.PENDING, "")
    assert pipeline_run_sync(document_id=document.pk).status == DocumentStatus.COMPLETED


def test_reprocess_queues_the_first_step_with_force_ocr_only_after_commit(
    process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task_id = document_reprocess(document=document, force_ocr=True)
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [
        {
            "task": PIPELINE_TASK,
            "args": (document.pk, "convert"),
            "kwargs": {"force_ocr": True},
            "task_id": task_id,
        }
    ]


# --- Retry a step --------------------------------------------------------------------------


def test_retrying_an_unknown_step_is_invalid_input_that_lists_the_steps(ingest, trivial):
    document = ingest(trivial)
    with pytest.raises(InvalidInput, match="Unknown step 'thumbnail'; steps are convert, ocr,"):
        document_retry_step(document=document, step_name="thumbnail", enqueue=False)


def test_retrying_a_later_step_while_an_earlier_one_failed_is_a_conflict_naming_the_earlier_step(
    ingest, trivial, monkeypatch
):
    fail_ocr(monkeypatch)
    document = pipeline_run_sync(document_id=ingest(trivial).pk)
    logs_before = document.logs.count()

    with pytest.raises(Conflict, match=r"^The ocr step has not succeeded yet; retry that step first\.$"):
        document_retry_step(document=document, step_name="embed_metadata", enqueue=False)

    document = fresh(document)
    assert document.status == DocumentStatus.FAILED  # nothing changed
    assert step_of(document, "ocr").status == StepStatus.FAILURE
    assert document.logs.count() == logs_before


def test_retrying_a_failed_step_after_its_cause_is_fixed_completes_the_document(
    engines, ingest, trivial, monkeypatch
):
    fail_ocr(monkeypatch, "The OCR engine is not installed.")
    document = pipeline_run_sync(document_id=ingest(trivial).pk)
    assert (document.status, document.error) == (DocumentStatus.FAILED, "The OCR engine is not installed.")

    monkeypatch.undo()  # the operator installed the engine
    document_retry_step(document=document, step_name="ocr", enqueue=False)

    retried = fresh(document)
    assert retried.error == ""
    assert retried.status == DocumentStatus.PROCESSING
    assert step_of(document, "convert").status == StepStatus.SKIPPED  # earlier steps are kept
    assert step_of(document, "ocr").status == StepStatus.PENDING
    last = retried.logs.last()
    assert last is not None
    assert (last.step_name, last.message) == ("ocr", "Retry requested")

    document = pipeline_run_sync(document_id=document.pk)
    assert document.status == DocumentStatus.COMPLETED
    assert step_of(document, "convert").attempts == 1  # not run again
    assert step_of(document, "ocr").status == StepStatus.SUCCESS
    assert document.processed_file


def test_retrying_a_step_of_a_completed_document_runs_it_and_the_steps_after_it_again(
    process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)
    with django_capture_on_commit_callbacks(execute=True):
        task_id = document_retry_step(document=document, step_name="extract_metadata")

    assert sent == [
        {
            "task": PIPELINE_TASK,
            "args": (document.pk, "extract_metadata"),
            "kwargs": {"force_ocr": False},
            "task_id": task_id,
        }
    ]
    statuses = dict(fresh(document).steps.values_list("name", "status"))
    assert statuses == {
        "convert": StepStatus.SKIPPED,
        "ocr": StepStatus.SUCCESS,
        "extract_metadata": StepStatus.PENDING,
        "embed_metadata": StepStatus.PENDING,
        "finalize": StepStatus.PENDING,
    }


def test_retrying_the_first_step_of_a_failed_document_clears_its_old_error_while_it_waits(
    process, sent, django_capture_on_commit_callbacks
):
    document = process(b"", "empty.pdf")
    assert (document.status, document.error) == (DocumentStatus.FAILED, "The file is empty.")

    with django_capture_on_commit_callbacks(execute=True):
        document_retry_step(document=document, step_name="convert")

    queued = fresh(document)
    assert queued.status == DocumentStatus.PENDING
    assert queued.error == ""  # a pending document shows no failure reason


def test_a_step_retried_by_hand_gets_automatic_retries_for_temporary_failures_again(
    ingest, trivial, settings, monkeypatch
):
    settings.TASK_RETRY_MAX_RETRIES = 1

    def unreachable(context):
        raise StepTemporarilyFailed("The OCR service did not answer.")

    document = ingest(trivial)
    pipeline_step_run(document_id=document.pk, step_name="convert")
    monkeypatch.setattr(PIPELINE[OCR], "run", unreachable)
    outcomes = [pipeline_step_run(document_id=document.pk, step_name="ocr").outcome for _ in range(2)]
    assert outcomes == ["retry", "failure"]

    document_retry_step(document=fresh(document), step_name="ocr", enqueue=False)
    assert pipeline_step_run(document_id=document.pk, step_name="ocr").outcome == "retry"


# --- Duplicates ----------------------------------------------------------------------------


def test_a_duplicate_cannot_be_reprocessed_or_retried(ingest, trivial, sent):
    ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")
    assert duplicate.status == DocumentStatus.DUPLICATE

    with pytest.raises(Conflict, match="duplicate; process the original instead"):
        document_reprocess(document=duplicate)
    with pytest.raises(Conflict, match="duplicate; process the original instead"):
        document_retry_step(document=duplicate, step_name="convert")

    duplicate = fresh(duplicate)
    assert duplicate.status == DocumentStatus.DUPLICATE
    assert list(duplicate.logs.values_list("step_name", flat=True)) == ["ingest"]
    assert sent == []


# --- Delete --------------------------------------------------------------------------------


def test_delete_removes_the_document_its_history_and_all_its_files(
    process, trivial, document_storage, django_capture_on_commit_callbacks
):
    document = process(trivial)
    pk = document.pk
    original = document_storage / document.original_file
    processed = document_storage / document.processed_file
    sidecar = processed.with_suffix(".json")
    assert original.exists()
    assert processed.exists()
    assert sidecar.exists()

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)

    assert not Document.objects.filter(pk=pk).exists()
    assert not ProcessingStep.objects.filter(document_id=pk).exists()
    assert not ProcessingLog.objects.filter(document_id=pk).exists()
    assert stored_files(document_storage) == []


def test_files_are_deleted_only_once_the_deletion_is_committed(
    process, trivial, document_storage, django_capture_on_commit_callbacks
):
    document = process(trivial)
    files = stored_files(document_storage)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document_delete(document=document)
    assert stored_files(document_storage) == files  # a rolled-back delete must not lose files
    for callback in callbacks:
        callback()
    assert stored_files(document_storage) == []


def test_delete_of_a_half_processed_document_removes_its_intermediate_files(
    engines, ingest, trivial, document_storage, django_capture_on_commit_callbacks, monkeypatch
):
    def refuse(context):
        raise StepFailed("No.")

    monkeypatch.setattr(PIPELINE[STEP_NAMES.index("finalize")], "run", refuse)
    document = pipeline_run_sync(document_id=ingest(trivial).pk)
    assert any(name.startswith("tmp/") for name in stored_files(document_storage))

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)

    assert stored_files(document_storage) == []


def test_a_document_under_legal_hold_cannot_be_deleted_and_keeps_everything(
    process, trivial, document_storage, django_capture_on_commit_callbacks
):
    document = process(trivial)
    Document.objects.filter(pk=document.pk).update(legal_hold=True)
    document = fresh(document)
    files = stored_files(document_storage)
    logs = document.logs.count()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict, match="legal hold"):
        document_delete(document=document)

    document = fresh(document)
    assert document.status == DocumentStatus.COMPLETED
    assert document.steps.count() == len(STEP_NAMES)
    assert document.logs.count() == logs
    assert stored_files(document_storage) == files


def test_deleting_the_first_copy_keeps_its_duplicates(
    ingest, trivial, document_storage, django_capture_on_commit_callbacks
):
    first = ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")
    assert duplicate.duplicate_of == first

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=first)

    duplicate = fresh(duplicate)
    assert duplicate.duplicate_of is None
    assert duplicate.status == DocumentStatus.DUPLICATE
    assert duplicate.original_filename == "again.pdf"


def test_deleting_a_duplicate_leaves_the_first_copy_and_its_original(
    ingest, trivial, document_storage, django_capture_on_commit_callbacks
):
    first = ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=duplicate)

    assert not Document.objects.filter(pk=duplicate.pk).exists()
    assert (document_storage / fresh(first).original_file).read_bytes() == trivial.read_bytes()


# --- Enqueue -------------------------------------------------------------------------------


def test_a_step_is_sent_to_the_workers_only_after_the_transaction_commits(
    ingest, trivial, sent, django_capture_on_commit_callbacks
):
    document = ingest(trivial)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pipeline_enqueue(document_id=document.pk, step_name="ocr", task_id="task-1", force_ocr=True)
        assert sent == []

    assert sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [
        {
            "task": PIPELINE_TASK,
            "args": (document.pk, "ocr"),
            "kwargs": {"force_ocr": True},
            "task_id": "task-1",
        }
    ]


def test_nothing_is_sent_when_the_transaction_rolls_back(
    ingest, trivial, sent, django_capture_on_commit_callbacks
):
    document = ingest(trivial)

    class Abort(Exception):
        pass

    @transaction.atomic
    def enqueue_then_fail() -> None:
        pipeline_enqueue(document_id=document.pk, step_name="convert", task_id="task-1")
        raise Abort

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Abort):
        enqueue_then_fail()

    assert sent == []


# --- Who sees which document ---------------------------------------------------------------


@pytest.fixture
def owners_document(ingest, trivial) -> Document:
    return ingest(trivial)


@pytest.fixture
def others_document(ingest, samples, other_user) -> Document:
    return ingest(samples / "outline.pdf", user=other_user)


def test_with_multi_user_each_user_sees_only_their_own_documents(
    settings, owner, other_user, owners_document, others_document
):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True

    assert document_get_for_user(viewer=Viewer(owner), document_id=owners_document.pk) == owners_document
    assert list(Document.objects.visible_to(Viewer(owner))) == [owners_document]
    assert list(Document.objects.visible_to(Viewer(other_user))) == [others_document]


def test_another_users_document_is_not_found_just_like_a_missing_one(settings, other_user, owners_document):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True

    with pytest.raises(NotFound) as foreign:
        document_get_for_user(viewer=Viewer(other_user), document_id=owners_document.pk)
    with pytest.raises(NotFound) as missing:
        document_get_for_user(viewer=Viewer(other_user), document_id=owners_document.pk + 1000)
    assert foreign.value.message == missing.value.message  # the id's existence is not revealed
    assert foreign.value.status_code == 404


def test_an_operator_with_operator_rights_sees_every_users_documents(
    settings, operator, owners_document, others_document
):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True
    with_rights = Viewer(operator, operator=True)

    assert set(Document.objects.visible_to(with_rights)) == {owners_document, others_document}
    assert document_get_for_user(viewer=with_rights, document_id=others_document.pk) == others_document


def test_an_operator_without_operator_rights_sees_only_their_own_documents(
    settings, operator, owners_document, ingest, samples
):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True
    operators_document = ingest(samples / "outline.pdf", user=operator)
    # A staff user's everyday or mobile token: the person is staff, the credential is not.
    without_rights = Viewer(operator)

    assert list(Document.objects.visible_to(without_rights)) == [operators_document]
    with pytest.raises(NotFound):
        document_get_for_user(viewer=without_rights, document_id=owners_document.pk)


@pytest.mark.parametrize("multi_user", [True, False])
def test_an_anonymous_visitor_sees_nothing_while_authentication_is_on(
    settings, anonymous, owners_document, multi_user
):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = multi_user

    assert not Document.objects.visible_to(Viewer(anonymous)).exists()
    with pytest.raises(NotFound):
        document_get_for_user(viewer=Viewer(anonymous), document_id=owners_document.pk)


def test_without_multi_user_all_logged_in_users_share_one_archive(
    settings, owner, other_user, owners_document, others_document
):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = False

    assert document_get_for_user(viewer=Viewer(other_user), document_id=owners_document.pk) == owners_document
    assert document_get_for_user(viewer=Viewer(owner), document_id=others_document.pk) == others_document
    assert set(Document.objects.visible_to(Viewer(other_user))) == {owners_document, others_document}


@pytest.mark.parametrize("multi_user", [True, False])
def test_without_authentication_everything_is_visible_to_everyone(
    settings, anonymous, other_user, owners_document, others_document, multi_user
):
    settings.AUTH_ENABLED = False
    settings.MULTI_USER_ENABLED = multi_user

    assert set(Document.objects.visible_to(Viewer(anonymous))) == {owners_document, others_document}
    assert document_get_for_user(viewer=Viewer(anonymous), document_id=owners_document.pk) == owners_document
    assert document_get_for_user(viewer=Viewer(other_user), document_id=owners_document.pk) == owners_document
