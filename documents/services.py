"""Writes of the document lifecycle: ingest, reprocess, retry a step, delete.

Every channel (upload page, API, URL, ``ingest`` command, mail, watched folders) enters
through ``document_ingest``. Work for the worker is enqueued only after the transaction
commits, with ids only, so a worker never sees a row that is not there yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from docuelevate.errors import Conflict, InvalidInput, UnsupportedMediaType
from documents import storage
from documents.filetypes import kind_of, sanitize_filename, sniff_mime
from documents.models import Document, DocumentStatus, ProcessingStep, StepStatus
from documents.pipeline.runner import document_refresh_status, log_event
from documents.pipeline.steps import STEP_NAMES


@dataclass(frozen=True)
class IngestResult:
    """The new document, and the task that will process it (None for a duplicate)."""

    document: Document
    task_id: str | None

    @property
    def is_duplicate(self) -> bool:
        return self.document.status == DocumentStatus.DUPLICATE


def document_ingest(
    *,
    owner: User,
    chunks: Iterable[bytes],
    filename: str,
    source: str = "upload",
    enqueue: bool = True,
) -> IngestResult:
    """Take in one file for ``owner``: store it, record it, and queue its processing.

    Streams to scratch space while hashing (never the whole file in memory), refuses
    unsupported content with UnsupportedMediaType before anything is stored, and records
    an exact re-upload (same SHA-256, same owner) as a ``duplicate`` of the first, with
    nothing queued. ``enqueue=False`` leaves the pipeline to the caller (``--sync``).
    """
    display_name = sanitize_filename(filename)
    with storage.spooled_upload(chunks, max_size=settings.MAX_UPLOAD_SIZE) as upload:
        mime_type = sniff_mime(upload.head, display_name)
        if kind_of(mime_type) is None:
            raise UnsupportedMediaType(f"Files of type {mime_type} are not supported.")
        received = {
            "owner": owner,
            "source": source,
            "original_filename": display_name,
            "filehash": upload.sha256,
            "file_size": upload.size,
            "mime_type": mime_type,
        }
        with transaction.atomic():
            # Serialise ingests per owner so two copies arriving at once cannot both be "first".
            User.objects.select_for_update().filter(pk=owner.pk).first()
            first = _first_copy(owner, upload.sha256)
            if first is not None:
                duplicate = Document.objects.create(
                    **received, status=DocumentStatus.DUPLICATE, duplicate_of=first
                )
                log_event(
                    duplicate.pk, "ingest", DocumentStatus.DUPLICATE, f"Same content as document {first.pk}"
                )
                return IngestResult(document=duplicate, task_id=None)
            stored_name = storage.store_file(upload.path, storage.original_name())
            try:
                document = _create_document(received, stored_name)
            except BaseException:
                storage.delete(stored_name)
                raise
    task_id = str(uuid.uuid4()) if enqueue else None
    if task_id:
        pipeline_enqueue(document_id=document.pk, step_name=STEP_NAMES[0], task_id=task_id)
    return IngestResult(document=document, task_id=task_id)


def document_reprocess(*, document: Document, force_ocr: bool = False, enqueue: bool = True) -> str:
    """Run the whole pipeline again from the original; returns the task id.

    ``enqueue=False`` only resets the steps, for a caller that runs them itself.
    """
    _refuse_duplicate(document)
    with transaction.atomic():
        document.steps.update(
            status=StepStatus.PENDING, attempts=0, error="", started_at=None, finished_at=None, claimed_by=""
        )
        Document.objects.filter(pk=document.pk).update(working_file="", error="")
        log_event(
            document.pk,
            "reprocess",
            StepStatus.PENDING,
            "Reprocessing requested" + (" with forced OCR" if force_ocr else ""),
        )
        document_refresh_status(Document.objects.get(pk=document.pk))
        task_id = str(uuid.uuid4())
        if enqueue:
            pipeline_enqueue(
                document_id=document.pk, step_name=STEP_NAMES[0], task_id=task_id, force_ocr=force_ocr
            )
    return task_id


def document_retry_step(
    *, document: Document, step_name: str, force_ocr: bool = False, enqueue: bool = True
) -> str:
    """Run one step again, and the steps after it; returns the task id.

    Refused while an earlier step has not succeeded, since this step needs its result.
    """
    _refuse_duplicate(document)
    if step_name not in STEP_NAMES:
        raise InvalidInput(f"Unknown step {step_name!r}; steps are {', '.join(STEP_NAMES)}.")
    with transaction.atomic():
        steps = list(
            ProcessingStep.objects.select_for_update().filter(document=document).order_by("position")
        )
        position = STEP_NAMES.index(step_name)
        unfinished = [
            step.name
            for step in steps[:position]
            if step.status not in {StepStatus.SUCCESS, StepStatus.SKIPPED}
        ]
        if unfinished:
            raise Conflict(f"The {unfinished[0]} step has not succeeded yet; retry that step first.")
        ProcessingStep.objects.filter(document=document, position__gte=position).update(
            # A retry by hand starts the step's count afresh, so it gets its automatic retries again.
            status=StepStatus.PENDING,
            attempts=0,
            error="",
            started_at=None,
            finished_at=None,
            claimed_by="",
        )
        log_event(
            document.pk,
            step_name,
            StepStatus.PENDING,
            "Retry requested" + (" with forced OCR" if force_ocr else ""),
        )
        document_refresh_status(Document.objects.get(pk=document.pk))
        task_id = str(uuid.uuid4())
        if enqueue:
            pipeline_enqueue(
                document_id=document.pk, step_name=step_name, task_id=task_id, force_ocr=force_ocr
            )
    return task_id


def document_delete(*, document: Document) -> None:
    """Remove the document, its files and its history. Refused under legal hold."""
    if document.legal_hold:
        raise Conflict("The document is under legal hold and cannot be deleted.")
    files = [document.processed_file, document.processed_file.removesuffix(".pdf") + ".json"]
    # Duplicates have no original of their own; a first copy's original is its alone.
    if document.original_file:
        files.append(document.original_file)
    with transaction.atomic():
        document.delete()
        transaction.on_commit(lambda: _delete_files(files, document.uuid))


def pipeline_enqueue(*, document_id: int, step_name: str, task_id: str, force_ocr: bool = False) -> None:
    """Hand one step to the workers once the current transaction (if any) has committed."""
    from documents.tasks import pipeline_step_task

    def send() -> None:
        pipeline_step_task.apply_async(
            args=(document_id, step_name), kwargs={"force_ocr": force_ocr}, task_id=task_id
        )

    transaction.on_commit(send)


def _first_copy(owner: User, sha256: str) -> Document | None:
    if not settings.ENABLE_DEDUPLICATION:
        return None
    return (
        Document.objects.filter(owner=owner, filehash=sha256)
        .exclude(status=DocumentStatus.DUPLICATE)
        .order_by("pk")
        .first()
    )


def _create_document(received: dict[str, Any], stored_name: str) -> Document:
    document = Document.objects.create(**received, original_file=stored_name)
    ProcessingStep.objects.bulk_create(
        ProcessingStep(document=document, name=name, position=position)
        for position, name in enumerate(STEP_NAMES)
    )
    log_event(
        document.pk,
        "ingest",
        DocumentStatus.PENDING,
        f"Received via {document.source} ({document.file_size} bytes, {document.mime_type})",
    )
    return document


def _refuse_duplicate(document: Document) -> None:
    if document.status == DocumentStatus.DUPLICATE:
        raise Conflict("This document is a duplicate; process the original instead.")


def _delete_files(names: list[str], document_uuid: uuid.UUID) -> None:
    for name in names:
        storage.delete(name)
    storage.delete_folder(storage.artifact_name(document_uuid, "").rstrip("/"))
