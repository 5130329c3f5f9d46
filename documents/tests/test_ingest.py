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
    owner, corpus, document_storage
):
    with (corpus / "linn.pdf").open("rb") as handle:
        result = document_ingest(owner=owner, chunks=read_chunks(handle), filename="linn.pdf", enqueue=False)
    document = result.document
    assert document.status == DocumentStatus.PENDING
    assert document.mime_type == "application/pdf"
    assert document.file_size == (corpus / "linn.pdf").stat().st_size
    assert len(document.filehash) == 64
    assert (document_storage / document.original_file).read_bytes() == (corpus / "linn.pdf").read_bytes()
    steps = list(ProcessingStep.objects.filter(document=document).values_list("name", "status"))
    assert steps == [(name, StepStatus.PENDING) for name in STEP_NAMES]
    assert document.logs.get().step_name == "ingest"


def test_the_pipeline_is_queued_only_after_the_transaction_commits(
    owner, corpus, document_storage, django_capture_on_commit_callbacks, sent
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = document_ingest(
            owner=owner, chunks=[(corpus / "trivial.pdf").read_bytes()], filename="t.pdf"
        )
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
    ingest, corpus, document_storage
):
    first = ingest(corpus / "linn.pdf")
    stored_before = files_in(document_storage)
    again = ingest(corpus / "linn.pdf", "copy of linn.pdf")
    assert again.status == DocumentStatus.DUPLICATE
    assert again.duplicate_of == first
    assert again.original_filename == "copy of linn.pdf"
    assert not again.steps.exists()
    assert files_in(document_storage) == stored_before  # no second copy stored


def test_duplicates_are_per_owner(ingest, corpus, other_user):
    ingest(corpus / "linn.pdf")
    theirs = ingest(corpus / "linn.pdf", user=other_user)
    assert theirs.status == DocumentStatus.PENDING


def test_deduplication_can_be_switched_off(ingest, corpus, settings):
    settings.ENABLE_DEDUPLICATION = False
    ingest(corpus / "linn.pdf")
    assert ingest(corpus / "linn.pdf").status == DocumentStatus.PENDING


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
