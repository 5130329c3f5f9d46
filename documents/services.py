"""Writes of the document lifecycle: ingest, reprocess, retry a step, delete.

Every channel (upload page, API, URL, ``ingest`` command, mail, watched folders) enters
through ``document_ingest``. Work for the worker is enqueued only after the transaction
commits, with ids only, so a worker never sees a row that is not there yet.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.audit import audit_record
from accounts.models import AuditAction, User
from docuelevate import diskspace
from docuelevate.errors import (
    ApplicationError,
    Conflict,
    InsufficientStorage,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from documents import storage
from documents.filetypes import kind_of, sanitize_filename, sniff_mime
from documents.integrations import url_fetcher
from documents.integrations.url_fetcher import FetchError, FetchFailure, UrlFetcher
from documents.models import Document, DocumentStatus, ProcessingStep, ResetKind, StepStatus, Tag
from documents.pipeline.state import log_event, steps_reset
from documents.pipeline.steps import STEP_NAMES
from documents.selectors import document_own_processed_files
from search.services import remove_document_enqueue

logger = logging.getLogger(__name__)


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
    source_ref: str = "",
    enqueue: bool = True,
) -> IngestResult:
    """Take in one file for ``owner``: store it, record it, and queue its processing.

    Streams to scratch space while hashing (never the whole file in memory), refuses
    unsupported content with UnsupportedMediaType before anything is stored, and records
    an exact re-upload (same SHA-256, same owner) as a ``duplicate`` of the first, with
    nothing queued. Below WORKDIR's free-space floor, or when the disk fills meanwhile, it
    refuses with InsufficientStorage (507) and keeps nothing (docuelevate.diskspace).
    ``enqueue=False`` leaves the pipeline to the caller (``--sync``).
    ``source_ref`` is where in its source it came from (a mailbox and UID, a path).
    """
    document = Document(owner=owner, source=source, source_ref=source_ref)
    _take_in(document, chunks=chunks, filename=filename, how=f"Received via {source}")
    if document.status == DocumentStatus.DUPLICATE:
        return IngestResult(document=document, task_id=None)
    task_id = str(uuid.uuid4()) if enqueue else None
    if task_id:
        pipeline_enqueue(document_id=document.pk, step_name=STEP_NAMES[0], task_id=task_id)
    return IngestResult(document=document, task_id=task_id)


def _take_in(document: Document, *, chunks: Iterable[bytes], filename: str, how: str) -> bool:
    """Store ``chunks`` as ``document``'s original and save it, or save it as a duplicate.

    ``document`` is a new row (an upload) or one waiting for its file (a URL's download).
    Streams to scratch space while hashing (never the whole file in memory) and refuses
    unsupported content with UnsupportedMediaType before anything is stored. False, with
    nothing stored, when a waiting document got its file meanwhile (a task delivered twice).
    """
    display_name = sanitize_filename(filename)
    owner = document.owner
    with storage.spooled_upload(chunks, max_size=settings.MAX_UPLOAD_SIZE) as upload:
        mime_type = sniff_mime(upload.head, display_name)
        if kind_of(mime_type) is None:
            raise UnsupportedMediaType(f"Files of type {mime_type} are not supported.")
        document.original_filename = display_name
        document.filehash = upload.sha256
        document.file_size = upload.size
        document.mime_type = mime_type
        with transaction.atomic():
            # Serialise ingests per owner so two copies arriving at once cannot both be "first".
            User.objects.select_for_update().filter(pk=owner.pk).first()
            if document.pk is not None and _got_its_file(document.pk):
                return False
            first = _first_copy(owner, upload.sha256)
            if first is not None:
                document.status = DocumentStatus.DUPLICATE
                document.duplicate_of = first
                document.save()
                log_event(
                    document.pk, "ingest", DocumentStatus.DUPLICATE, f"Same content as document {first.pk}"
                )
                return True
            # The copy needs as much room again as the spooled upload.
            diskspace.require_room(incoming=upload.size)
            try:
                document.original_file = storage.store_file(upload.path, storage.original_name())
            except OSError as exc:
                # store_file removed its partial copy; the spool goes when this block ends.
                if diskspace.is_disk_full(exc):
                    raise diskspace.no_room_error() from exc
                raise
            try:
                _record_original(document, how=how)
            except BaseException:
                storage.delete(document.original_file)
                raise
    return True


def _got_its_file(document_id: int) -> bool:
    """Whether a document waiting for its file has it, or is no longer waiting, meanwhile."""
    current = Document.objects.select_for_update().get(pk=document_id)
    return bool(current.original_file) or current.status != DocumentStatus.PENDING


# Fetching a document from a URL (``document_ingest_url``).
URL_MAX_LENGTH = 2048  # characters; the URL is kept as the document's source_ref
# The download task's hard time limit; a download waiting longer than it (plus the grace)
# has lost its worker.
URL_TASK_TIME_LIMIT = int(url_fetcher.TOTAL_TIMEOUT) + 120
URL_STALE_GRACE_SECONDS = 120


def document_ingest_url(*, owner: User, url: str, filename: str | None = None) -> IngestResult:
    """Accept ``url`` for ``owner``: a document waiting for its file, downloaded by a worker.

    The download may take minutes (the fetcher's ``TOTAL_TIMEOUT``), far too long to hold
    a web worker, so only the URL is checked here: only http(s), and a host whose every
    address is public (InvalidInput otherwise, at once). The document is answered with its
    id and status ``pending``; ``document_fetch_url``, on a worker, checks the address
    again, downloads and ingests. What goes wrong there (a 404, a file over the limit, a
    server that stops answering) fails the document with the reason.

    Private networks an operator lists in URL_FETCH_ALLOWED_NETWORKS (an intranet document
    server) are let through; cloud metadata addresses never are.
    """
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise InvalidInput(f"The URL is longer than {URL_MAX_LENGTH} characters.")
    try:
        target = UrlFetcher.from_settings().check(url)
    except FetchError as exc:
        raise _fetch_application_error(exc) from None
    diskspace.require_room()
    with transaction.atomic():
        document = Document.objects.create(
            owner=owner,
            source="url",
            source_ref=target.url,
            original_filename=sanitize_filename(filename or _url_path_name(target.url)),
            filehash="",
            file_size=0,
            mime_type="",
            original_file="",
        )
        log_event(document.pk, "fetch", DocumentStatus.PENDING, f"Waiting to download from {target.host}")
    task_id = str(uuid.uuid4())
    _fetch_enqueue(document_id=document.pk, task_id=task_id)
    return IngestResult(document=document, task_id=task_id)


def document_fetch_url(*, document_id: int) -> Document:
    """Download the file of a document accepted by URL, ingest it and queue its processing.

    Idempotent, for a task the broker delivers again: a document that already has its
    file only has its processing queued again if it never started. The fetcher
    (``documents.integrations.url_fetcher``) checks every address again, connects to the
    very address it checked and follows at most three redirects, each checked the same
    way. The body streams into storage under the MAX_UPLOAD_SIZE cap, within the fetcher's
    ``TOTAL_TIMEOUT``.

    The name is the one given with the URL, else the server's Content-Disposition, else
    the last segment of the URL path. (A name given that equals the URL's last segment
    counts as not given: the server's name may replace it.)
    """
    document = Document.objects.select_related("owner").get(pk=document_id)
    if document.status != DocumentStatus.PENDING:
        return document
    if document.original_file:
        if not document.steps.exclude(status=StepStatus.PENDING).exists():
            pipeline_enqueue(document_id=document.pk, step_name=STEP_NAMES[0], task_id=str(uuid.uuid4()))
        return document
    if not diskspace.has_room():
        # Not an attempt: the download waits, and the stale-download sweep sends it again.
        log_event(document.pk, "fetch", StepStatus.PENDING, diskspace.pause_reason())
        return document
    log_event(document.pk, "fetch", StepStatus.IN_PROGRESS, f"Attempt {_fetch_attempts(document) + 1}")
    try:
        taken_in = _download(document)
    except InsufficientStorage:
        log_event(document.pk, "fetch", StepStatus.PENDING, diskspace.pause_reason())
        return document
    except ApplicationError as exc:
        _fetch_fail(document, exc.message)
        document.refresh_from_db()
        return document
    if not taken_in:
        # Another delivery of the same task took the file in first; it queued the rest.
        document.refresh_from_db()
        return document
    if document.status != DocumentStatus.DUPLICATE:
        pipeline_enqueue(document_id=document.pk, step_name=STEP_NAMES[0], task_id=str(uuid.uuid4()))
    return document


def document_fetch_resume_stale(*, now: datetime.datetime | None = None) -> list[int]:
    """Send again the downloads whose worker vanished; fail those that vanished too often.

    A worker killed mid-download (out of memory, a node lost) acknowledges nothing, and
    the broker may hold its message back for hours. A download still waiting after the
    task's hard time limit has no worker left, so it is due again: the document's ids.
    Run every minute by beat, with the stuck-steps watchdog; idempotent.
    """
    stale_after = datetime.timedelta(seconds=URL_TASK_TIME_LIMIT + URL_STALE_GRACE_SECONDS)
    cutoff = (now or timezone.now()) - stale_after
    waiting = Document.objects.filter(source="url", status=DocumentStatus.PENDING, original_file="")
    stale = waiting.annotate(last_seen=Max("logs__timestamp")).filter(last_seen__lt=cutoff)
    resent = []
    for document in stale:
        if _fetch_attempts(document) > settings.TASK_RETRY_MAX_RETRIES:
            _fetch_fail(document, "The download stopped too often without finishing.")
            continue
        log_event(document.pk, "fetch", DocumentStatus.PENDING, "The download stopped; trying again.")
        _fetch_enqueue(document_id=document.pk, task_id=str(uuid.uuid4()))
        resent.append(document.pk)
    return resent


def _fetch_attempts(document: Document) -> int:
    """How many downloads of the document began: each logs its start."""
    return document.logs.filter(step_name="fetch", status=StepStatus.IN_PROGRESS).count()


def _fetch_fail(document: Document, reason: str) -> None:
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.FAILED, error=reason)
    log_event(document.pk, "fetch", DocumentStatus.FAILED, reason)


def _download(document: Document) -> bool:
    """Download and take in the document's file; False when another delivery was first."""
    name_given = document.original_filename != sanitize_filename(_url_path_name(document.source_ref))
    try:
        with UrlFetcher.from_settings().open(document.source_ref) as response:
            if response.declared_size is not None and response.declared_size > settings.MAX_UPLOAD_SIZE:
                raise PayloadTooLarge(
                    f"The file is larger than the limit of {settings.MAX_UPLOAD_SIZE} bytes."
                )
            name = (
                document.original_filename
                if name_given
                else response.served_name or _url_path_name(response.url)
            )
            return _take_in(
                document, chunks=response.chunks(), filename=name, how=f"Downloaded from {response.host}"
            )
    except FetchError as exc:
        raise _fetch_application_error(exc) from None


def _fetch_application_error(exc: FetchError) -> ApplicationError:
    """The fetcher's error as the API and the document show it: a timeout, or a bad URL."""
    if exc.kind is FetchFailure.TIMEOUT:
        return RequestTimeout(exc.message)
    return InvalidInput(exc.message)


def _fetch_enqueue(*, document_id: int, task_id: str) -> None:
    """Hand a download to the workers once the transaction has committed. A broker that
    does not take it (Redis away) fails nothing: the document waits with its log entry,
    and ``document_fetch_resume_stale`` sends it again once that entry is stale."""
    from documents.tasks import document_fetch_url_task

    def send() -> None:
        try:
            document_fetch_url_task.apply_async(args=(document_id,), task_id=task_id)
        except BrokerUnavailable:
            logger.warning(
                "the broker did not take the download of document %s; the watchdog sends it again",
                document_id,
                exc_info=True,
            )

    transaction.on_commit(send)


def _url_path_name(url: str) -> str:
    return unquote(PurePosixPath(urlsplit(url).path).name) or "download"


def document_reprocess(*, document: Document, force_ocr: bool = False, enqueue: bool = True) -> str:
    """Run the whole pipeline again from the original; returns the task id.

    ``enqueue=False`` only resets the steps, for a caller that runs them itself.
    """
    _refuse_duplicate(document)
    with transaction.atomic():
        steps_reset(
            document_id=document.pk,
            from_step=STEP_NAMES[0],
            reason=ResetKind.REPROCESS,
            log_step_name="reprocess",
            message="Reprocessing requested" + (" with forced OCR" if force_ocr else ""),
        )
        task_id = str(uuid.uuid4())
        if enqueue:
            pipeline_enqueue(
                document_id=document.pk, step_name=STEP_NAMES[0], task_id=task_id, force_ocr=force_ocr
            )
    return task_id


def document_retry_step(
    *,
    document: Document,
    step_name: str,
    force_ocr: bool = False,
    enqueue: bool = True,
    reason: ResetKind = ResetKind.MANUAL_RETRY,
) -> str:
    """Run one step again, and the steps after it; returns the task id.

    Refused while an earlier step has not succeeded, since this step needs its result.
    ``reason`` is a person's retry unless housekeeping says it is its own (RETRY_SWEEP).
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
        steps_reset(
            document_id=document.pk,
            from_step=step_name,
            reason=reason,
            log_step_name=step_name,
            message="Retry requested" + (" with forced OCR" if force_ocr else ""),
        )
        task_id = str(uuid.uuid4())
        if enqueue:
            pipeline_enqueue(
                document_id=document.pk, step_name=step_name, task_id=task_id, force_ocr=force_ocr
            )
    return task_id


def document_delete(*, document: Document) -> None:
    """Remove the document, its files, its history and its search entry. Refused under legal hold."""
    if document.legal_hold:
        raise Conflict("The document is under legal hold and cannot be deleted.")
    files = document_own_processed_files(document=document, processed_file=document.processed_file)
    # Duplicates have no original of their own; a first copy's original is its alone.
    if document.original_file:
        files.append(document.original_file)
    document_id = document.pk
    with transaction.atomic():
        audit_record(
            action=AuditAction.DOCUMENT_DELETED,
            target=f"document {document_id} {document.original_filename}",
            detail={"owner_id": document.owner_id, "sha256": document.filehash},
        )
        document.delete()
        transaction.on_commit(lambda: _delete_files(files, document.uuid))
        remove_document_enqueue(document_id=document_id)


def pipeline_enqueue(*, document_id: int, step_name: str, task_id: str, force_ocr: bool = False) -> None:
    """Hand one step to the workers once the current transaction (if any) has committed.

    The step is due from now (``ProcessingStep.due_at``). A broker that does not take the
    message (Redis away) costs no upload and no run: the step stays pending, and once it is
    overdue the watchdog sends it again (``documents.tasks.steps_resend_stalled_enqueue``).
    """
    from documents.tasks import pipeline_step_task

    ProcessingStep.objects.filter(document_id=document_id, name=step_name, status=StepStatus.PENDING).update(
        due_at=timezone.now()
    )

    def send() -> None:
        try:
            pipeline_step_task.apply_async(
                args=(document_id, step_name), kwargs={"force_ocr": force_ocr}, task_id=task_id
            )
        except BrokerUnavailable:
            logger.warning(
                "the broker did not take step %s of document %s; the watchdog sends it again",
                step_name,
                document_id,
                exc_info=True,
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


def _record_original(document: Document, *, how: str) -> None:
    """Save a document that has its original, with its pipeline steps waiting."""
    document.save()
    ProcessingStep.objects.bulk_create(
        ProcessingStep(document=document, name=name, position=position)
        for position, name in enumerate(STEP_NAMES)
    )
    # The owner's inbox tags (and the global ones) mark it new until someone has looked.
    document.tags.add(
        *Tag.objects.filter(Q(owner__isnull=True) | Q(owner_id=document.owner_id), is_inbox=True)
    )
    log_event(
        document.pk,
        "ingest",
        DocumentStatus.PENDING,
        f"{how} ({document.file_size} bytes, {document.mime_type})",
    )


def _refuse_duplicate(document: Document) -> None:
    if document.status == DocumentStatus.DUPLICATE:
        raise Conflict("This document is a duplicate; process the original instead.")


def _delete_files(names: list[str], document_uuid: uuid.UUID) -> None:
    for name in names:
        storage.delete(name)
    storage.delete_folder(storage.processed_folder(document_uuid))
    storage.delete_folder(storage.artifact_name(document_uuid, "").rstrip("/"))
