from __future__ import annotations

import pytest

from docuelevate.errors import PayloadTooLarge, UnsupportedMediaType
from documents.models import Document, DocumentStatus, ProcessingStep, StepStatus
from documents.pipeline.steps import STEP_NAMES
from documents.services import document_ingest
from documents.storage import read_chunks

PIPELINE_TASK = "documents.tasks.pipeline_step_task"

pytestmark = pytest.mark.django_db


def files_in(folder):
    return sorted(path.relative_to(folder) for path in folder.rglob("*") if path.is_file())


def test_ingest_stores_the_original_records_the_document_and_its_pending_steps(
    owner, samples, document_storage
):
    with (samples / "scan.pdf").open("rb") as handle:
        result = document_ingest(owner=owner, chunks=read_chunks(handle), filename="scan.pdf", enqueue=False)
    document = result.document
    assert document.status == DocumentStatus.PENDING
    assert document.mime_type == "application/pdf"
    assert document.file_size == (samples / "scan.pdf").stat().st_size
    assert len(document.filehash) == 64
    assert (document_storage / document.original_file).read_bytes() == (samples / "scan.pdf").read_bytes()
    steps = list(ProcessingStep.objects.filter(document=document).values_list("name", "status"))
    assert steps == [(name, StepStatus.PENDING) for name in STEP_NAMES]
    assert document.logs.get().step_name == "ingest"


def test_the_pipeline_is_queued_only_after_the_transaction_commits(
    owner, samples, document_storage, django_capture_on_commit_callbacks, sent
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = document_ingest(owner=owner, chunks=[(samples / "blank.pdf").read_bytes()], filename="t.pdf")
    assert sent == []  # nothing reaches the broker before the row is committed
    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [
        {
            "task": PIPELINE_TASK,
            "args": (result.document.pk, "convert"),
            "kwargs": {"force_ocr": False},
            "task_id": result.task_id,
        }
    ]


def test_the_same_file_again_is_a_duplicate_of_the_first_with_nothing_queued(
    ingest, samples, document_storage
):
    first = ingest(samples / "scan.pdf")
    stored_before = files_in(document_storage)
    again = ingest(samples / "scan.pdf", "copy of scan.pdf")
    assert again.status == DocumentStatus.DUPLICATE
    assert again.duplicate_of == first
    assert again.original_filename == "copy of scan.pdf"
    assert not again.steps.exists()
    assert files_in(document_storage) == stored_before  # no second copy stored


def test_duplicates_are_per_owner(ingest, samples, other_user):
    ingest(samples / "scan.pdf")
    theirs = ingest(samples / "scan.pdf", user=other_user)
    assert theirs.status == DocumentStatus.PENDING


def test_deduplication_can_be_switched_off(ingest, samples, settings):
    settings.ENABLE_DEDUPLICATION = False
    ingest(samples / "scan.pdf")
    assert ingest(samples / "scan.pdf").status == DocumentStatus.PENDING


def test_an_unsupported_type_is_refused_by_content_and_nothing_is_stored(owner, document_storage):
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 100
    with pytest.raises(UnsupportedMediaType, match="are not supported"):
        document_ingest(owner=owner, chunks=[elf], filename="invoice.pdf", enqueue=False)
    assert not Document.objects.exists()
    assert files_in(document_storage) == []


def test_a_file_over_the_size_limit_is_refused_and_its_partial_copy_removed(
    owner, document_storage, settings
):
    settings.MAX_UPLOAD_SIZE = 1000
    with pytest.raises(PayloadTooLarge):
        document_ingest(
            owner=owner, chunks=[b"%PDF-1.4 " + b"x" * 600] * 2, filename="big.pdf", enqueue=False
        )
    assert not Document.objects.exists()
    assert files_in(document_storage) == []
