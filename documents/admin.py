"""Documents in the operators' admin: find them, see their steps and history, act on them.

Every action goes through the services, as the API's do: reprocess and retry reset the
steps and queue the work, delete removes the files and the search entry and leaves an audit
row. A bare queryset delete would leave files on disk and entries in the index, so the
admin never does one. Everything the pipeline wrote is read-only here; only the legal hold
is changed by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from docuelevate.errors import ApplicationError
from documents.models import (
    Correspondent,
    CustomField,
    Document,
    DocumentQuerySet,
    DocumentType,
    OwnerMatcher,
    ProcessingLog,
    ProcessingStep,
    StoragePath,
    Tag,
)
from documents.services import document_delete, document_reprocess, document_retry_step


def _is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class OperatorPermissions:
    """Every operator (staff) may use this admin, as the site shows them every document;
    no model permissions to hand out one by one."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)


class ReadOnlyInline(OperatorPermissions, admin.TabularInline[Any, Document]):
    """Rows the pipeline writes: shown, never added, changed or removed by hand."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ProcessingStepInline(ReadOnlyInline):
    model = ProcessingStep
    fields = readonly_fields = (
        "position", "name", "status", "attempts", "started_at", "finished_at", "error", "failure_kind",
        "task_id", "claimed_by", "claim_expires_at",
    )  # fmt: skip
    ordering = ["position"]


class ProcessingLogInline(ReadOnlyInline):
    model = ProcessingLog
    verbose_name_plural = "processing log"
    fields = readonly_fields = ("timestamp", "step_name", "status", "message", "kind", "task_id")
    ordering = ["timestamp", "id"]


@admin.register(Document)
class DocumentAdmin(OperatorPermissions, admin.ModelAdmin[Document]):
    list_display = [
        "id", "original_filename", "owner", "status", "document_type", "file_size", "legal_hold", "created_at"
    ]  # fmt: skip
    list_display_links = ["id", "original_filename"]
    list_filter = [
        "status",
        "document_type",
        ("owner", admin.RelatedOnlyFieldListFilter),
        "created_at",
        "legal_hold",
    ]
    # Names and titles anywhere in them; the SHA-256 from its start (pasted whole, or a prefix).
    search_fields = ["original_filename", "document_title", "^filehash"]
    search_help_text = "Name or title, or the start of the SHA-256 hash."
    date_hierarchy = "created_at"
    list_select_related = ["owner", "document_type"]
    autocomplete_fields = ["document_type", "correspondent", "storage_path"]
    # Counting a large archive for every page costs more than the number is worth.
    show_full_result_count = False
    list_per_page = 50
    inlines = [ProcessingStepInline, ProcessingLogInline]
    actions = ["reprocess", "retry_failed_step", "delete_selected"]
    fieldsets = [
        (None, {"fields": ["original_filename", "owner", "status", "error", "legal_hold"]}),
        ("File", {"fields": ["uuid", "source", "filehash", "file_size", "mime_type", "page_count"]}),
        ("Storage", {"fields": ["original_file", "processed_file", "working_file", "duplicate_of"]}),
        (
            "Metadata",
            {
                "fields": [
                    "document_title",
                    "document_type",
                    "correspondent",
                    "sender",
                    "recipient",
                    "document_date",
                    "language",
                    "reference_number",
                    "amounts",
                    "confidence",
                    "metadata",
                    "ocr_characters",
                ]
            },
        ),
        ("Times", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            name
            for fieldset in self.fieldsets or []
            for name in fieldset[1]["fields"]
            if isinstance(name, str) and name != "legal_hold"
        ]

    @admin.display(description="OCR text")
    def ocr_characters(self, document: Document) -> str:
        # Not the text itself: it may run to megabytes, and the API serves it to those who need it.
        return f"{len(document.ocr_text)} characters"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        queryset: QuerySet[Document] = super().get_queryset(request)
        return queryset.defer("metadata", "amounts")

    # --- Permissions: documents arrive by ingestion, never through this form ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A document under legal hold shows no delete button (the service refuses it anyway).
        return _is_operator(request) and not (obj is not None and obj.legal_hold)

    # --- Deleting: always through document_delete ---

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            document_delete(document=document)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # Steps and log rows go with their document; an operator needs no permission of
        # their own for them, which Django would otherwise ask for.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    @admin.action(description="Delete selected documents with their files", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Document]) -> HttpResponse | None:
        """Django's confirmation page, then ``delete_queryset`` (the service) for each."""
        held = list(queryset.filter(legal_hold=True).values_list("original_filename", flat=True))
        if held:
            self.message_user(
                request,
                f"Nothing deleted: {len(held)} selected document(s) are under legal hold "
                f"({', '.join(held[:5])}). Lift the hold first.",
                messages.ERROR,
            )
            return None
        response: HttpResponse | None = django_delete_selected(self, request, queryset)
        return response

    # --- Processing again ---

    @admin.action(description="Reprocess selected documents from the original", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        started, refused = 0, []
        for document in queryset:
            try:
                document_reprocess(document=document)
            except ApplicationError as exc:
                refused.append(f"{document.original_filename}: {exc.message}")
            else:
                started += 1
        self._report(request, f"Reprocessing {started} document(s).", refused)

    @admin.action(description="Retry the failed step of selected documents", permissions=["change"])
    def retry_failed_step(self, request: HttpRequest, queryset: DocumentQuerySet) -> None:
        started, refused = 0, []
        for document in queryset.with_failed_step():
            step: str | None = getattr(document, "failed_step", None)
            if step is None:
                refused.append(f"{document.original_filename}: no step has failed")
                continue
            try:
                document_retry_step(document=document, step_name=step)
            except ApplicationError as exc:
                refused.append(f"{document.original_filename}: {exc.message}")
            else:
                started += 1
        self._report(request, f"Retrying the failed step of {started} document(s).", refused)

    def _report(self, request: HttpRequest, done: str, refused: list[str]) -> None:
        self.message_user(request, done, messages.SUCCESS)
        if refused:
            more = f"; and {len(refused) - 10} more" if len(refused) > 10 else ""
            listed = "; ".join(refused[:10]) + more
            self.message_user(request, f"Skipped {len(refused)}: {listed}", messages.WARNING)


@admin.register(Tag, DocumentType, Correspondent, StoragePath, CustomField)
class TaxonomyEntryAdmin(OperatorPermissions, admin.ModelAdmin[Any]):
    """The managed lists, for operators; people keep them on their pages (/organise)."""

    list_display = ["name", "owner", "created_at"]
    list_filter = [("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    list_select_related = ["owner"]


@admin.register(OwnerMatcher)
class OwnerMatcherAdmin(OperatorPermissions, admin.ModelAdmin[Any]):
    """Each owner's learned matching, read only: when it was trained and on how much. Deleting
    one is harmless (beat trains it again); the signed blob is never shown or edited."""

    list_display = ["owner", "trained_at", "documents_trained", "sklearn_version"]
    list_select_related = ["owner"]
    fields = readonly_fields = ("owner", "trained_at", "documents_trained", "sklearn_version")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)
