"""Models of the document lifecycle: documents, their pipeline steps and processing log."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery

from documents.visibility import visibility_for

if TYPE_CHECKING:
    from accounts.access import Viewer


class DocumentStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DUPLICATE = "duplicate"


class StepStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"


class FailureKind(models.TextChoices):
    """Why a step failed (or waits to run again), for machines; the readable reason is its error.

    Decisions read this, never the wording of a message: the failed-documents retry
    (ops.housekeeping) gives TEMPORARY and WORKER_LOST one more run, nothing else.
    """

    TEMPORARY = "temporary"  # a passing problem (a service down); StepTemporarilyFailed
    PERMANENT = "permanent"  # would fail the same way again (a broken file); StepFailed
    TIMEOUT = "timeout"  # ran longer than STEP_TIMEOUT
    WORKER_LOST = "worker_lost"  # its worker vanished mid-run (watchdog, or a restarted worker)
    WORKER_LOST_REPEATEDLY = "worker_lost_repeatedly"  # the step keeps killing its worker
    INTERNAL_ERROR = "internal_error"  # a bug or an unforeseen input; details in the server log
    # Not a failure: WORKDIR fell below MIN_FREE_DISK_MB, so the step waits (pending) and runs
    # by itself once there is room again, without using up an attempt (docuelevate.diskspace).
    DISK_FULL = "disk_full"
    # Over a size limit (MAX_PAGES, MAX_IMAGE_PIXELS), refused before any engine rendered it;
    # the same again until the limit is raised (StepInputTooLarge).
    TOO_LARGE = "too_large"
    # Deliveries only: the destination's settings or credentials are wrong, so every delivery
    # to it fails until someone fixes them (destinations.kinds.base.DestinationMisconfigured).
    CONFIGURATION = "configuration"


class ResetKind(models.TextChoices):
    """Why steps were set back to pending: who started them afresh, and how far back.

    Each kind has one rule for the attempts count (documents.pipeline.state.steps_reset).
    """

    MANUAL_RETRY = "manual_retry"  # a person retried a step (page, API, admin, command)
    REPROCESS = "reprocess"  # a person reprocessed the whole document
    RETRY_SWEEP = "retry_sweep"  # housekeeping's one more run after a temporary failure
    INPUT_MISSING = "input_missing"  # the runner started over: a step's input file was gone
    EDIT = "edit"  # a person changed the metadata: written into the PDF and filed again


class LogStatus(models.TextChoices):
    """The status of a log entry: a step's status, or the document's for ingest and fetch."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    # Document-level outcomes, written under "ingest" and "fetch" (DocumentStatus values).
    FAILED = "failed"
    DUPLICATE = "duplicate"


class LogStep(models.TextChoices):
    """What a log entry is about: a pipeline step, or a stage of the document around it.

    A new step or stage adds a member here (and a migration records it); the pipeline's
    steps must all be listed (documents.tests.test_state checks STEP_NAMES against it).
    """

    INGEST = "ingest"  # the file was taken in (or found to be a duplicate)
    FETCH = "fetch"  # the download of a document given by URL
    CONVERT = "convert"
    OCR = "ocr", "OCR"
    EXTRACT_METADATA = "extract_metadata"
    EMBED_METADATA = "embed_metadata"
    FINALIZE = "finalize"
    REPROCESS = "reprocess"  # a person asked for the whole pipeline again
    RETRY_SWEEP = "retry_sweep"  # housekeeping gave a failed document one more run
    EDIT = "edit"  # a person changed the metadata (documents.organise.editing)
    # A delivery to one destination, by kind (destinations.services); established clients
    # read these names, so every kind DocuElevate delivers to is listed, built or not.
    UPLOAD_TO_S3 = "upload_to_s3", "Upload to S3"
    UPLOAD_TO_FTP = "upload_to_ftp", "Upload to FTP"
    UPLOAD_TO_SFTP = "upload_to_sftp", "Upload to SFTP"
    UPLOAD_TO_WEBDAV = "upload_to_webdav", "Upload to WebDAV"
    UPLOAD_TO_NEXTCLOUD = "upload_to_nextcloud", "Upload to Nextcloud"
    UPLOAD_TO_EMAIL = "upload_to_email", "Send by e-mail"
    UPLOAD_TO_PAPERLESS = "upload_to_paperless", "Upload to Paperless-ngx"
    UPLOAD_TO_DROPBOX = "upload_to_dropbox", "Upload to Dropbox"
    UPLOAD_TO_GOOGLE_DRIVE = "upload_to_google_drive", "Upload to Google Drive"
    UPLOAD_TO_ONEDRIVE = "upload_to_onedrive", "Upload to OneDrive"


class DocumentQuerySet(models.QuerySet["Document"]):
    def visible_to(self, viewer: Viewer) -> DocumentQuerySet:
        """The documents ``viewer`` may see (the rule: ``documents.visibility``), less the
        trash: a trashed document is gone for every page, search and API but the trash's."""
        return self.in_scope_of(viewer).filter(trashed_at__isnull=True)

    def trashed_visible_to(self, viewer: Viewer) -> DocumentQuerySet:
        """The documents in the trash ``viewer`` may see."""
        return self.in_scope_of(viewer).filter(trashed_at__isnull=False)

    def in_scope_of(self, viewer: Viewer) -> DocumentQuerySet:
        visibility = visibility_for(viewer)
        if visibility.all_owners:
            return self.all()
        return self.filter(owner_id__in=sorted(visibility.owner_ids))

    def with_failed_step(self) -> DocumentQuerySet:
        """Each document annotated with ``failed_step``: its first step that failed, or None."""
        first_failed = (
            ProcessingStep.objects.filter(document=OuterRef("pk"), status=StepStatus.FAILURE)
            .order_by("position")
            .values("name")[:1]
        )
        return self.annotate(failed_step=Subquery(first_failed))


class Document(models.Model):
    """One ingested file and everything the pipeline learned about it."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="documents")
    source = models.CharField(max_length=32, default="upload")
    # Where in its source the document came from: the URL, the mailbox and UID, the path.
    source_ref = models.CharField(max_length=2048, blank=True)
    original_filename = models.CharField(max_length=255)
    filehash = models.CharField(max_length=64)
    file_size = models.BigIntegerField()
    mime_type = models.CharField(max_length=127)
    # Names inside the document storage, never paths: see documents.storage.
    original_file = models.CharField(max_length=500)
    processed_file = models.CharField(max_length=500, blank=True)
    # The newest PDF of this document: each step reads it and may replace it.
    working_file = models.CharField(max_length=500, blank=True)

    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.TextField(blank=True)  # the readable reason of a failure
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    legal_hold = models.BooleanField(default=False)

    ocr_text = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    document_title = models.CharField(max_length=255, blank=True)
    document_type = models.ForeignKey(
        "documents.DocumentType", null=True, blank=True, on_delete=models.SET_NULL, related_name="documents"
    )
    correspondent = models.ForeignKey(
        "documents.Correspondent", null=True, blank=True, on_delete=models.SET_NULL, related_name="documents"
    )
    sender = models.CharField(max_length=255, blank=True)
    recipient = models.CharField(max_length=255, blank=True)
    document_date = models.DateField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True)
    reference_number = models.CharField(max_length=128, blank=True)
    amounts = models.JSONField(default=list, blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField("documents.Tag", blank=True, related_name="documents")
    storage_path = models.ForeignKey(
        "documents.StoragePath", null=True, blank=True, on_delete=models.SET_NULL, related_name="documents"
    )
    # Raised by every change of the fields a person edits (theirs or the pipeline's), so an
    # edit made on an older reading is refused instead of overwriting (ETag / If-Match).
    version = models.PositiveIntegerField(default=1)
    # The fields a person set: reprocessing keeps them instead of extracting them again.
    user_fields = models.JSONField(default=list, blank=True)
    # In the trash since then; emptied after EMPTY_TRASH_DELAY days (ops.housekeeping).
    trashed_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists read only what is not in the trash (visible_to): their indexes hold only
            # those rows (trashed_at IS NULL), so a page's count reads an index alone (an
            # index-only scan) instead of every matching row for its trashed_at.
            models.Index(
                fields=["status", "-created_at"],
                condition=Q(trashed_at__isnull=True),
                name="document_status_recent",
            ),
            models.Index(fields=["owner", "filehash"], name="document_owner_hash"),
            # The list (documents.selectors.document_list) reads a page straight from an
            # index in its order, instead of sorting the whole archive for 50 rows: one
            # index per sort_by it allows, ending in the id that breaks ties. Read backwards
            # an index serves the other direction too; document_date, which may be empty and
            # sorts empty last both ways, has a second, PostgreSQL-only index for descending
            # (migration 0003, with the search indexes).
            models.Index(fields=["created_at", "id"], name="document_recent"),
            models.Index(fields=["original_filename", "id"], name="document_filename_order"),
            models.Index(fields=["file_size", "id"], name="document_size_order"),
            models.Index(fields=["document_date", "id"], name="document_date_order"),
            models.Index(fields=["status", "id"], name="document_status_order"),
            models.Index(fields=["document_title", "id"], name="document_title_order"),
            # The mime_type filter, newest first (status has document_status_recent).
            models.Index(
                fields=["mime_type", "created_at", "id"],
                condition=Q(trashed_at__isnull=True),
                name="document_mime_recent",
            ),
            models.Index(
                fields=["trashed_at"], condition=Q(trashed_at__isnull=False), name="document_trashed"
            ),
            # A user's live documents, and everyone's (single-user), newest first; with the id,
            # so a filter's subquery of ids (tags, custom fields) joins them index-only.
            models.Index(
                fields=["owner", "-created_at", "-id"],
                condition=Q(trashed_at__isnull=True),
                name="document_live_owner_recent",
            ),
            models.Index(
                fields=["created_at", "id"], condition=Q(trashed_at__isnull=True), name="document_live_recent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} (#{self.pk})"

    # The names as clients and templates have always read them: text, empty when unset.
    # (Lists select_related the entries, so these cost no query.)
    @property
    def document_type_name(self) -> str:
        return self.document_type.name if self.document_type else ""

    @property
    def correspondent_name(self) -> str:
        return self.correspondent.name if self.correspondent else ""


class ProcessingStep(models.Model):
    """The state of one pipeline step of one document."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=32)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Set exactly when ``error`` is: what kind of failure the error describes.
    failure_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # "worker@host pid run" of the run in progress, to recognise runs whose worker died.
    claimed_by = models.CharField(max_length=255, blank=True)
    # Until when the run in progress holds the step; its worker renews it while the run goes
    # on (documents.pipeline.claims). Past it, the run's worker is gone, whatever its name.
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # When a pending step's message should reach a worker: the time it was handed to the
    # broker, or the end of its retry's wait. A step still pending well past it lost its
    # message (a send while the broker was away, a broker restarted without its queue), and
    # the watchdog sends it again (documents.tasks.steps_resend_stalled_enqueue).
    due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["document_id", "position"]
        constraints = [models.UniqueConstraint(fields=["document", "name"], name="one_step_row_per_name")]
        indexes = [
            # The watchdog's question: which steps have been in progress for too long?
            models.Index(
                fields=["started_at"],
                condition=Q(status="in_progress"),
                name="step_in_progress_since",
            ),
            # The watchdog's other question: which pending steps' messages are overdue?
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="step_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of document {self.document_id}: {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ProcessingLog(models.Model):
    """Append-only history of what happened to a document, step by step."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="logs")
    step_name = models.CharField(max_length=32, choices=LogStep.choices)
    status = models.CharField(max_length=16, choices=LogStatus.choices)
    message = models.TextField(blank=True)
    # A FailureKind on failures and pending retries, a ResetKind on resets; blank otherwise.
    kind = models.CharField(max_length=32, choices=FailureKind.choices + ResetKind.choices, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["document", "timestamp"], name="log_document_time")]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.step_name} {self.status}"
