"""Shapes of the documents API: what a request must look like and what an answer contains.

Input serializers only check shape (types, ranges, choices); every rule about documents
lives in the services and selectors. Output serializers render what the selectors and
services found, in the field names existing clients (CLI, mobile app, browser extension)
read: each answer is one of them, and the schema names the same class.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from destinations.models import DeliveryStatus, DestinationKind
from docuelevate.bounds import MAX_ID, MAX_PAGE
from documents.api.organise_serializers import CustomValueOutputSerializer, OrganiseFiltersInputSerializer
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


class UploadInputSerializer(serializers.Serializer[Any]):
    # Empty files are let through: the pipeline records them as a failed document with a reason.
    file = serializers.ListField(
        child=UploadedFileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        min_length=1,  # what allow_empty=False means, spelt so that the schema says it too
        help_text="One or more files; repeat the form field for several.",
    )


class ProcessUrlInputSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=2048, help_text="An http:// or https:// URL of the file.")
    filename = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Name to give the document."
    )


class FileListInputSerializer(OrganiseFiltersInputSerializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=200, default=50)
    sort_by = serializers.CharField(
        default="created_at",
        max_length=40,
        help_text=f"One of {', '.join(SORT_FIELDS)}, or custom_field:<id> to sort by a custom field's "
        "value (documents without one last).",
    )
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
    # The query parameter clients send is "source", the name of a Field attribute too; the
    # serializer's metaclass takes declared fields off the class, so that attribute is untouched.
    source = serializers.CharField(  # type: ignore[assignment]  # see above
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="Only documents that came in this way: upload, url, ingest, imap, watch, …",
    )

    def validate_sort_by(self, value: str) -> str:
        # The field's id is checked against the viewer's fields by the selector.
        if value in SORT_FIELDS or re.fullmatch(r"custom_field:[1-9][0-9]{0,17}", value):
            return value
        raise serializers.ValidationError(f"Choose one of {', '.join(SORT_FIELDS)}, or custom_field:<id>.")


class DownloadInputSerializer(serializers.Serializer[Any]):
    version = serializers.ChoiceField(
        choices=["processed", "original"],
        required=False,
        help_text="Default: the processed PDF when there is one, else the original.",
    )


class ReprocessInputSerializer(serializers.Serializer[Any]):
    force_ocr = serializers.BooleanField(default=False, help_text="OCR every page, even those with text.")


class RetrySubtaskInputSerializer(ReprocessInputSerializer):
    subtask_name = serializers.CharField(max_length=64, help_text="The pipeline step to run again.")


class RedeliverInputSerializer(serializers.Serializer[Any]):
    destination = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Only this destination; default: all of them.",
    )


# --- Answers -------------------------------------------------------------------------------


class ProcessingStatusOutputSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=DocumentStatus.choices)
    last_step = serializers.CharField(allow_null=True)
    has_errors = serializers.BooleanField()
    total_steps = serializers.IntegerField()


class _DocumentBaseOutputSerializer(serializers.ModelSerializer[Document]):
    tags = serializers.SerializerMethodField()
    # The names, as clients have always read them ("" when unset); ids are in the detail.
    document_type = serializers.CharField(source="document_type_name")

    class Meta:
        model = Document
        fields = [
            "id", "original_filename", "file_size", "mime_type", "filehash", "created_at",
            "document_title", "document_type", "tags", "source", "source_ref",
        ]  # fmt: skip
        extra_kwargs = {
            "source": {
                "help_text": "How it came in: upload, url, ingest, or a source's kind (imap, watch, …)."
            },
            "source_ref": {"help_text": "Where in its source: the URL, the mailbox and message, the path."},
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, document: Document) -> list[str]:
        # Sorted here, not by the query, so the prefetched tags of a list serve as they are.
        return sorted(tag.name for tag in document.tags.all())


class FileListItemOutputSerializer(_DocumentBaseOutputSerializer):
    processing_status = serializers.SerializerMethodField()

    class Meta(_DocumentBaseOutputSerializer.Meta):
        fields = [*_DocumentBaseOutputSerializer.Meta.fields, "status", "processing_status"]

    @extend_schema_field(ProcessingStatusOutputSerializer)
    def get_processing_status(self, document: Document) -> dict[str, Any]:
        # Rendered by the serializer the schema names: a summary is computed, not a column.
        return ProcessingStatusOutputSerializer(processing_summary(document)).data


class PaginationOutputSerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    total = serializers.IntegerField()
    pages = serializers.IntegerField()
    next = serializers.IntegerField(allow_null=True, help_text="Number of the next page, or null.")
    previous = serializers.IntegerField(allow_null=True, help_text="Number of the previous page, or null.")


# Renders a documents.selectors.Page. (Docstrings of serializers are the schema's
# descriptions, for clients; notes for developers are comments.)
class FileListOutputSerializer(serializers.Serializer[Any]):
    files = FileListItemOutputSerializer(source="items", many=True)
    pagination = PaginationOutputSerializer(source="*")


class FileOutputSerializer(_DocumentBaseOutputSerializer):
    local_filename = serializers.SerializerMethodField()
    correspondent = serializers.CharField(source="correspondent_name")
    storage_path = serializers.SerializerMethodField()
    tag_ids = serializers.SerializerMethodField()
    version = serializers.IntegerField(help_text="Send it back (If-Match or version) with an edit.")

    class Meta(_DocumentBaseOutputSerializer.Meta):
        fields = [
            *_DocumentBaseOutputSerializer.Meta.fields,
            "local_filename", "legal_hold", "correspondent", "document_date", "language",
            "document_type_id", "correspondent_id", "storage_path", "storage_path_id", "tag_ids",
            "version", "user_fields", "confidence",
        ]  # fmt: skip

    def get_storage_path(self, document: Document) -> str:
        return document.storage_path.name if document.storage_path else ""

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_tag_ids(self, document: Document) -> list[int]:
        return sorted(tag.pk for tag in document.tags.all())

    def get_local_filename(self, document: Document) -> str:
        """Name of the stored original, without its folder."""
        return document_stored_filename(document)


class LogEntryOutputSerializer(serializers.ModelSerializer[ProcessingLog]):
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


class StepOutputSerializer(serializers.ModelSerializer[ProcessingStep]):
    status = StepStatusField()

    class Meta:
        model = ProcessingStep
        fields = ["name", "status", "started_at", "finished_at", "attempts", "error"]


class FilesOnDiskOutputSerializer(serializers.Serializer[Any]):
    original = serializers.BooleanField()
    processed = serializers.BooleanField()


@extend_schema_field({"type": "string", "description": "One of " + ", ".join(DeliveryStatus.values) + "."})
class DeliveryStatusField(serializers.CharField):
    """A delivery's status, described rather than an enum (see StepStatusField)."""


# Renders a destinations.selectors.DeliveryView.
class DeliveryOutputSerializer(serializers.Serializer[Any]):
    destination = serializers.CharField(help_text="The destination's name.")
    destination_id = serializers.IntegerField()
    kind = serializers.CharField(
        help_text="The destination's kind: " + ", ".join(DestinationKind.values) + "."
    )
    status = DeliveryStatusField()
    attempts = serializers.IntegerField()
    remote_path = serializers.CharField(help_text="Where the file is (or last was) on the destination.")
    delivered_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the last attempt failed or was skipped; empty otherwise.")


# Renders a documents.selectors.DocumentDetail.
class FileDetailOutputSerializer(serializers.Serializer[Any]):
    file = FileOutputSerializer(source="document")
    processing_status = ProcessingStatusOutputSerializer()
    logs = LogEntryOutputSerializer(many=True)
    files_on_disk = FilesOnDiskOutputSerializer()
    status = serializers.ChoiceField(source="document.status", choices=DocumentStatus.choices)
    ocr_text = serializers.CharField(source="document.ocr_text")
    metadata = serializers.JSONField(source="document.metadata")
    steps = StepOutputSerializer(many=True)
    deliveries = DeliveryOutputSerializer(many=True, help_text="One per destination the document goes to.")
    custom_fields = CustomValueOutputSerializer(many=True)


class RedeliverOutputSerializer(serializers.Serializer[Any]):
    document_id = serializers.IntegerField()
    queued = serializers.IntegerField(help_text="How many deliveries were queued.")
    deliveries = DeliveryOutputSerializer(many=True, help_text="The document's deliveries, as they are now.")


class FileLogsOutputSerializer(serializers.Serializer[Any]):
    file_id = serializers.IntegerField()
    logs = LogEntryOutputSerializer(many=True)


class DuplicateOfOutputSerializer(serializers.Serializer[Any]):
    duplicate_type = serializers.CharField()
    original_file_id = serializers.IntegerField()
    original_filename = serializers.CharField()
    message = serializers.CharField()


class IngestAnswerOutputSerializer(serializers.Serializer[Any]):
    """One file's outcome; which fields appear depends on ``status``."""

    # Renders the views' outcome dicts: a field that is not required and whose key an
    # outcome lacks is left out of the answer, not written as null. In this order, each
    # kind of outcome keeps the order of keys clients have always received.
    task_id = serializers.CharField(required=False, help_text="With status queued.")
    # Plain text rather than an enum, so the schema has one "status" enum: the document's.
    status = serializers.CharField(help_text="queued, duplicate, or error (several files only).")
    original_filename = serializers.CharField()
    stored_filename = serializers.CharField(required=False)
    document_id = serializers.IntegerField(required=False, help_text="With status queued or duplicate.")
    duplicate_of = DuplicateOfOutputSerializer(required=False, help_text="With status duplicate.")
    detail = serializers.CharField(required=False, help_text="With status error: why the file was refused.")


class IngestAnswersOutputSerializer(serializers.Serializer[Any]):
    results = IngestAnswerOutputSerializer(many=True)


class TaskQueuedOutputSerializer(serializers.Serializer[Any]):
    task_id = serializers.CharField()
    document_id = serializers.IntegerField()
    status = serializers.CharField()


class QueueStatsOutputSerializer(serializers.Serializer[Any]):
    queues = serializers.DictField(
        child=serializers.IntegerField(allow_null=True),
        help_text="Waiting messages per Celery queue; null when the broker cannot tell (no Redis).",
    )
    workers_online = serializers.IntegerField()
    documents_by_status = serializers.DictField(child=serializers.IntegerField())
