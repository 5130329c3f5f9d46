"""Shapes of the documents API: what a request must look like and what an answer contains.

Input serializers only check shape (types, ranges, choices); every rule about documents
lives in the services and selectors. Output serializers render what the selectors found,
in the field names existing clients (CLI, mobile app, browser extension) read.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from docuelevate.bounds import MAX_PAGE
from documents.models import (
    Document,
    DocumentStatus,
    LogStatus,
    LogStep,
    ProcessingLog,
    ProcessingStep,
    StepStatus,
)
from documents.selectors import SORT_FIELDS, document_stored_filename, processing_summary

# --- Requests ------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file sent in a multipart request. Described as binary in the schema, where
    drf-spectacular would otherwise call it a string, which clients then send as a plain
    form field instead of a file."""


class UploadRequestSerializer(serializers.Serializer[Any]):
    # Empty files are let through: the pipeline records them as a failed document with a reason.
    file = serializers.ListField(
        child=UploadedFileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        min_length=1,  # what allow_empty=False means, spelt so that the schema says it too
        help_text="One or more files; repeat the form field for several.",
    )


class ProcessUrlRequestSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=2048, help_text="An http:// or https:// URL of the file.")
    filename = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Name to give the document."
    )


class FileListQuerySerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=200, default=50)
    sort_by = serializers.ChoiceField(choices=list(SORT_FIELDS), default="created_at")
    sort_order = serializers.ChoiceField(choices=["asc", "desc"], default="desc")
    search = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    mime_type = serializers.CharField(required=False, allow_blank=True, default="", max_length=127)
    status = serializers.ChoiceField(
        choices=DocumentStatus.values, required=False, allow_blank=True, default=""
    )
    date_from = serializers.DateField(required=False, allow_null=True, default=None)
    date_to = serializers.DateField(required=False, allow_null=True, default=None)
    tags = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Comma-separated; documents having all."
    )


class DownloadQuerySerializer(serializers.Serializer[Any]):
    version = serializers.ChoiceField(
        choices=["processed", "original"],
        required=False,
        help_text="Default: the processed PDF when there is one, else the original.",
    )


class ReprocessQuerySerializer(serializers.Serializer[Any]):
    force_ocr = serializers.BooleanField(default=False, help_text="OCR every page, even those with text.")


class RetrySubtaskQuerySerializer(ReprocessQuerySerializer):
    subtask_name = serializers.CharField(max_length=64, help_text="The pipeline step to run again.")


# --- Answers -------------------------------------------------------------------------------


class ProcessingStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=DocumentStatus.choices)
    last_step = serializers.CharField(allow_null=True)
    has_errors = serializers.BooleanField()
    total_steps = serializers.IntegerField()


class _DocumentBaseSerializer(serializers.ModelSerializer[Document]):
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id", "original_filename", "file_size", "mime_type", "filehash", "created_at",
            "document_title", "document_type", "tags",
        ]  # fmt: skip

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, document: Document) -> list[str]:
        # Sorted here, not by the query, so the prefetched tags of a list serve as they are.
        return sorted(tag.name for tag in document.tags.all())


class FileListItemSerializer(_DocumentBaseSerializer):
    processing_status = serializers.SerializerMethodField()

    class Meta(_DocumentBaseSerializer.Meta):
        fields = [*_DocumentBaseSerializer.Meta.fields, "status", "processing_status"]

    @extend_schema_field(ProcessingStatusSerializer)
    def get_processing_status(self, document: Document) -> dict[str, Any]:
        return dict(processing_summary(document))


class PaginationSerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    total = serializers.IntegerField()
    pages = serializers.IntegerField()
    next = serializers.IntegerField(allow_null=True, help_text="Number of the next page, or null.")
    previous = serializers.IntegerField(allow_null=True, help_text="Number of the previous page, or null.")


class FileListSerializer(serializers.Serializer[Any]):
    files = FileListItemSerializer(many=True)
    pagination = PaginationSerializer()


class FileSerializer(_DocumentBaseSerializer):
    local_filename = serializers.SerializerMethodField()

    class Meta(_DocumentBaseSerializer.Meta):
        fields = [
            *_DocumentBaseSerializer.Meta.fields,
            "local_filename", "legal_hold", "correspondent", "document_date", "language",
        ]  # fmt: skip

    def get_local_filename(self, document: Document) -> str:
        """Name of the stored original, without its folder."""
        return document_stored_filename(document)


class LogEntrySerializer(serializers.ModelSerializer[ProcessingLog]):
    # Plain text rather than enums, so the schema has one "status" enum: the document's.
    step_name = serializers.CharField(help_text="One of " + ", ".join(LogStep.values) + ".")
    status = serializers.CharField(help_text="One of " + ", ".join(LogStatus.values) + ".")

    class Meta:
        model = ProcessingLog
        fields = ["id", "task_id", "step_name", "status", "message", "timestamp"]


@extend_schema_field({"type": "string", "description": "One of " + ", ".join(StepStatus.values) + "."})
class StepStatusField(serializers.CharField):
    """A step's status, described rather than an enum in the schema: a second enum under the
    name "status" (the document's has it) would need a settings override to be named, and
    ``manage.py check`` fails on schema warnings."""


class StepSerializer(serializers.ModelSerializer[ProcessingStep]):
    status = StepStatusField()

    class Meta:
        model = ProcessingStep
        fields = ["name", "status", "started_at", "finished_at", "attempts", "error"]


class FilesOnDiskSerializer(serializers.Serializer[Any]):
    original = serializers.BooleanField()
    processed = serializers.BooleanField()


class FileDetailSerializer(serializers.Serializer[Any]):
    file = FileSerializer()
    processing_status = ProcessingStatusSerializer()
    logs = LogEntrySerializer(many=True)
    files_on_disk = FilesOnDiskSerializer()
    status = serializers.ChoiceField(choices=DocumentStatus.choices)
    ocr_text = serializers.CharField()
    metadata = serializers.JSONField()
    steps = StepSerializer(many=True)
    deliveries = serializers.ListField(
        child=serializers.DictField(), help_text="Deliveries to destinations (none configured yet)."
    )


class FileLogsSerializer(serializers.Serializer[Any]):
    file_id = serializers.IntegerField()
    logs = LogEntrySerializer(many=True)


class DuplicateOfSerializer(serializers.Serializer[Any]):
    duplicate_type = serializers.CharField()
    original_file_id = serializers.IntegerField()
    original_filename = serializers.CharField()
    message = serializers.CharField()


class IngestAnswerSerializer(serializers.Serializer[Any]):
    """One file's outcome; which fields appear depends on ``status``."""

    # Plain text rather than an enum, so the schema has one "status" enum: the document's.
    status = serializers.CharField(help_text="queued, duplicate, or error (several files only).")
    task_id = serializers.CharField(required=False, help_text="With status queued.")
    document_id = serializers.IntegerField(required=False, help_text="With status queued or duplicate.")
    original_filename = serializers.CharField()
    stored_filename = serializers.CharField(required=False)
    duplicate_of = DuplicateOfSerializer(required=False, help_text="With status duplicate.")
    detail = serializers.CharField(required=False, help_text="With status error: why the file was refused.")


class IngestAnswersSerializer(serializers.Serializer[Any]):
    results = IngestAnswerSerializer(many=True)


class TaskQueuedSerializer(serializers.Serializer[Any]):
    task_id = serializers.CharField()
    document_id = serializers.IntegerField()
    status = serializers.CharField()


class QueueStatsSerializer(serializers.Serializer[Any]):
    queues = serializers.DictField(
        child=serializers.IntegerField(allow_null=True),
        help_text="Waiting messages per Celery queue; null when the broker cannot tell (no Redis).",
    )
    workers_online = serializers.IntegerField()
    documents_by_status = serializers.DictField(child=serializers.IntegerField())


class DocumentErrorSerializer(serializers.Serializer[Any]):
    """Every error of this API: one readable sentence."""

    detail = serializers.CharField()
