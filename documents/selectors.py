"""Reads of documents. Every read of a user's document goes through ``document_get_for_user``,
every list through ``Document.objects.visible_to``."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import reduce
from pathlib import PurePosixPath
from typing import Any, Literal, TypedDict

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from accounts.access import Viewer
from destinations.selectors import DeliveryView, deliveries_for_document
from docuelevate.bounds import MAX_PAGE
from docuelevate.errors import InvalidInput, NotFound
from documents import storage
from documents.models import (
    Correspondent,
    CustomFieldValue,
    Document,
    DocumentStatus,
    ProcessingLog,
    ProcessingStep,
    StepStatus,
    Tag,
)
from documents.organise.filters import (
    SORT_PREFIX,
    CustomFieldAsk,
    CustomFieldCondition,
    custom_field_condition,
    custom_field_sort_column,
    tag_tree_ids,
    tagged_document_ids,
)
from documents.organise.storage_paths import document_download_name
from documents.pipeline.thumbnails import CONTENT_TYPE as THUMBNAIL_CONTENT_TYPE
from documents.visibility import visibility_for

# What a list may be sorted by (the API's ``sort_by``), and the column behind each; each has
# an index ending in the id (Document.Meta.indexes), so a page is read in order from it.
SORT_FIELDS: dict[str, str] = {
    "created_at": "created_at",
    "original_filename": "original_filename",
    "file_size": "file_size",
    "document_date": "document_date",
    "status": "status",
    "document_title": "document_title",
}
# The sort columns that may be empty; empty ones come last in both directions. Only these
# get NULLS LAST: on a NOT NULL column it changes nothing, yet PostgreSQL then no longer
# reads the order from an index and sorts the whole archive instead.
NULLABLE_SORT_FIELDS = frozenset({"document_date"})
# What the list never shows and may be large: left in the table, not sent for every row.
LIST_DEFERRED_FIELDS = ("ocr_text", "metadata", "amounts")
SortOrder = Literal["asc", "desc"]
FileVersion = Literal["processed", "original"]


def document_get_for_user(*, viewer: Viewer, document_id: int) -> Document:
    """The document if ``viewer`` (a user with the rights of their credential) may see it;
    NotFound otherwise.

    Not found rather than forbidden: a stranger must not learn that the id exists.
    """
    document = (
        Document.objects.visible_to(viewer)
        .select_related("document_type", "correspondent", "storage_path")
        .filter(pk=document_id)
        .first()
    )
    if document is None:
        raise NotFound("No such document.")
    return document


# --- Lists ---------------------------------------------------------------------------------


# What each of DocumentFilters' fields is, for counting (document_list_page): a condition on
# the document's own columns, one on other tables' rows naming documents, or the order.
# Every field is in exactly one of these (a test holds them to it).
DOCUMENT_COLUMN_FILTERS = ("search", "mime_type", "status", "source", "date_from", "date_to")
RELATED_ROW_FILTERS = ("tags", "tag_tree", "custom_field")
ORDER_FIELDS = ("sort_by", "sort_order")


@dataclass(frozen=True)
class DocumentFilters:
    """What a list of documents is narrowed to and how it is ordered."""

    search: str = ""
    mime_type: str = ""
    status: str = ""
    date_from: date | None = None  # created on or after this day
    date_to: date | None = None  # created on or before this day
    tags: tuple[str, ...] = ()  # documents carrying all of them
    source: str = ""  # how they came in: "upload", "url", a source's kind ("imap", "watch")
    tag_tree: int | None = None  # documents carrying this tag or one nested under it
    custom_field: CustomFieldAsk | None = None  # documents whose value of a custom field matches
    # A key of SORT_FIELDS, or "custom_field:<id>" (documents without a value come last).
    sort_by: str = "created_at"
    sort_order: SortOrder = "desc"

    def narrows_document_columns(self) -> bool:
        """True when a filter on the document's own columns is set (DOCUMENT_COLUMN_FILTERS)."""
        return any(getattr(self, name) for name in DOCUMENT_COLUMN_FILTERS)

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> DocumentFilters:
        """From a checked files-list query (FileListInputSerializer): the API and the page alike.

        ``tags`` arrives comma-separated.
        """
        return cls(
            search=query["search"],
            mime_type=query["mime_type"],
            status=query["status"],
            date_from=query["date_from"],
            date_to=query["date_to"],
            tags=tuple(tag.strip() for tag in query["tags"].split(",") if tag.strip()),
            source=query["source"],
            tag_tree=query.get("tag_tree"),
            custom_field=CustomFieldAsk.from_query(query),
            sort_by=query["sort_by"],
            sort_order=query["sort_order"],
        )


def document_list(*, viewer: Viewer, filters: DocumentFilters) -> QuerySet[Document]:
    """The documents ``viewer`` may see that match ``filters``, in the asked order.

    Tags (by name) and steps (by position) are prefetched, so listing any number of
    documents with their tags and processing summary costs the same few queries, whatever
    the size of the archive; a tags filter costs one more. The OCR text, metadata and
    amounts are deferred: a list does not show them. A tag tree filter costs one more query
    (the viewer's tags), a custom field filter or sort one more (the field's type); each
    then narrows by a subquery on an index, never by a join.
    """
    return _filtered_documents(
        viewer=viewer, filters=filters, related=_related_rows(viewer=viewer, filters=filters)
    )


def document_list_page(*, viewer: Viewer, filters: DocumentFilters, page: int, per_page: int) -> Page:
    """Page ``page`` of ``document_list(viewer, filters)``, with its exact total.

    The total is the one part of a page whose cost grows with the archive: the page itself
    is read in order from an index and stops after ``per_page`` rows, the count visits every
    match. When the only narrowing is by other tables' rows (tags, a tag tree, a custom
    field's values) and the viewer sees every owner's documents, the count reads those rows'
    indexes alone and leaves out the trashed documents, a short list, instead of matching
    them against every live document (at 100,000 documents, 8 ms instead of 25 ms for a tag
    tree on half of them: bench/api.py).
    """
    related = _related_rows(viewer=viewer, filters=filters)
    documents = _filtered_documents(viewer=viewer, filters=filters, related=related)
    quick = (
        related.required
        and related.without_value is None
        and not related.none_match
        and not filters.narrows_document_columns()
        and visibility_for(viewer).all_owners
    )
    total = _live_documents_among(related.required) if quick else None
    return document_page(documents, page=page, per_page=per_page, total=total)


def _live_documents_among(document_id_sets: list[QuerySet[Any]]) -> int:
    """How many documents that are not in the trash are in every one of ``document_id_sets``
    (subqueries of ``document_id``, a document possibly more than once in each)."""
    first, *others = document_id_sets
    ids = first
    for other in others:
        ids = ids.filter(document_id__in=other)
    trashed = Document.objects.filter(trashed_at__isnull=False).values("pk")
    return ids.exclude(document_id__in=trashed).order_by().values("document_id").distinct().count()


@dataclass(frozen=True)
class _RelatedRows:
    """A list's filters on other tables' rows, resolved once (tag names and trees to ids,
    the custom field checked against its type)."""

    # Subqueries of document ids; a listed document is in each.
    required: list[QuerySet[Any]]
    # A custom field filter for documents without a value of the field, if asked.
    without_value: CustomFieldCondition | None
    # A tag was named that does not exist: nothing matches.
    none_match: bool


def _related_rows(*, viewer: Viewer, filters: DocumentFilters) -> _RelatedRows:
    required: list[QuerySet[Any]] = []
    tag_groups = _tag_id_groups(filters.tags) if filters.tags else []
    required.extend(tagged_document_ids(ids) for ids in tag_groups if ids)
    if filters.tag_tree is not None:
        required.append(tagged_document_ids(tag_tree_ids(viewer=viewer, tag_id=filters.tag_tree)))
    without_value = None
    if filters.custom_field is not None:
        condition = custom_field_condition(viewer=viewer, asked=filters.custom_field)
        if condition.exists is False:
            without_value = condition
        else:
            required.append(condition.matching_document_ids())
    return _RelatedRows(
        required=required, without_value=without_value, none_match=any(not ids for ids in tag_groups)
    )


def _filtered_documents(
    *, viewer: Viewer, filters: DocumentFilters, related: _RelatedRows
) -> QuerySet[Document]:
    custom_sort = custom_field_sort_column(viewer=viewer, sort_by=filters.sort_by)
    if custom_sort is None and filters.sort_by not in SORT_FIELDS:
        choices = ", ".join([*SORT_FIELDS, f"{SORT_PREFIX}<id>"])
        raise InvalidInput(f"Cannot sort by {filters.sort_by!r}; choose one of {choices}.")
    documents: QuerySet[Document] = Document.objects.visible_to(viewer)
    if filters.search:
        # On PostgreSQL each column has a trigram index on UPPER(column) for this (migration
        # 0003 of documents); UPPER(...) LIKE is what icontains is written as there.
        documents = documents.filter(
            Q(original_filename__icontains=filters.search)
            | Q(document_title__icontains=filters.search)
            # The correspondents are a short list: their ids first, no join of the documents.
            | Q(
                correspondent_id__in=Correspondent.objects.filter(name__icontains=filters.search).values("pk")
            )
        )
    if filters.mime_type:
        documents = documents.filter(mime_type=filters.mime_type)
    if filters.status:
        documents = documents.filter(status=filters.status)
    if filters.source:
        documents = documents.filter(source=filters.source)
    # Whole days in the current time zone, as created_at__date counts them, but as a range
    # of created_at itself: an index serves a range, not a date computed for every row.
    # From the first day there can be, or to the last, nothing is left out: no bound (the
    # day after the last one would overflow).
    if filters.date_from and filters.date_from > date.min:
        documents = documents.filter(created_at__gte=_start_of_day(filters.date_from))
    if filters.date_to and filters.date_to < date.max:
        documents = documents.filter(created_at__lt=_start_of_day(filters.date_to + timedelta(days=1)))
    if related.none_match:
        documents = documents.none()
    for document_ids in related.required:
        documents = documents.filter(pk__in=document_ids)
    if related.without_value is not None:
        documents = related.without_value.apply(documents, document_key="pk")
    nulls_last = True if filters.sort_by in NULLABLE_SORT_FIELDS or custom_sort else None
    if custom_sort is not None:
        # The document's value of the field, read per row of the page's ordering; one value
        # at most per document and field (one_value_per_field).
        field_id = int(filters.sort_by.removeprefix(SORT_PREFIX))
        value = CustomFieldValue.objects.filter(document_id=OuterRef("pk"), field_id=field_id)
        documents = documents.annotate(custom_sort=Subquery(value.values(custom_sort)[:1]))
        column = F("custom_sort")
    else:
        column = F(SORT_FIELDS[filters.sort_by])
    order = (
        column.asc(nulls_last=nulls_last)
        if filters.sort_order == "asc"
        else column.desc(nulls_last=nulls_last)
    )
    # The id breaks ties, so pages never overlap or skip a document.
    tie_breaker = "id" if filters.sort_order == "asc" else "-id"
    return (
        documents.order_by(order, tie_breaker)
        .defer(*LIST_DEFERRED_FIELDS)
        .select_related("document_type", "correspondent")
        .prefetch_related("tags", Prefetch("steps", queryset=ProcessingStep.objects.order_by("position")))
    )


def document_sources(*, viewer: Viewer) -> list[str]:
    """The ways the documents ``viewer`` may see came in ("upload", "imap", …), each once:
    what the files list's source filter offers."""
    rows = Document.objects.visible_to(viewer).order_by("source").values_list("source", flat=True).distinct()
    return list(rows)


def _start_of_day(day: date) -> datetime:
    """The first moment of ``day`` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _tag_id_groups(names: tuple[str, ...]) -> list[list[int]]:
    """The ids of the tags of each of ``names`` (case-insensitive), in the names' order;
    an empty group for a name no tag has.

    The ids are looked up first, in one query for all names, so PostgreSQL plans with the id
    of each tag and its statistics tell how many documents carry it; behind a join by name it
    guesses the same share for every tag, and picks poor plans for common ones.
    """
    # The database compares the names, so a name matches here exactly as it would in a join.
    matches = {
        f"name_{i}": ExpressionWrapper(Q(name__iexact=name), output_field=BooleanField())
        for i, name in enumerate(names)
    }
    rows = list(
        Tag.objects.filter(reduce(operator.or_, (Q(name__iexact=name) for name in names)))
        .annotate(**matches)
        .values("pk", *matches)
    )
    return [[row["pk"] for row in rows if row[match]] for match in matches]


@dataclass(frozen=True)
class Page:
    """One page of a list, with what a client needs to ask for the next one."""

    items: list[Document]
    page: int
    per_page: int
    total: int
    pages: int

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None

    @property
    def previous(self) -> int | None:
        return min(self.page - 1, self.pages) if self.page > 1 else None


def document_page(
    documents: QuerySet[Document], *, page: int, per_page: int, total: int | None = None
) -> Page:
    """Page ``page`` (from 1) of ``documents``; past the end it is empty, not an error.
    ``total``: how many ``documents`` holds, when the caller counted them a quicker way."""
    if page < 1 or per_page < 1:
        raise InvalidInput("page and per_page start at 1.")
    if page > MAX_PAGE:
        raise InvalidInput(f"page must be at most {MAX_PAGE}.")
    if total is None:
        total = documents.count()
    offset = (page - 1) * per_page
    items = list(documents[offset : offset + per_page]) if offset < total else []
    return Page(
        items=items, page=page, per_page=per_page, total=total, pages=max(1, math.ceil(total / per_page))
    )


# --- One document --------------------------------------------------------------------------


class ProcessingSummary(TypedDict):
    status: str
    last_step: str | None
    has_errors: bool
    total_steps: int


def processing_summary(document: Document) -> ProcessingSummary:
    """Where the document is in the pipeline, from its steps (prefetched ones when there are).

    ``last_step`` is the furthest step that has started, None before the first one.
    """
    steps = sorted(document.steps.all(), key=lambda step: step.position)
    started = [step for step in steps if step.status != StepStatus.PENDING]
    return {
        "status": document.status,
        "last_step": started[-1].name if started else None,
        "has_errors": bool(document.error) or any(step.status == StepStatus.FAILURE for step in steps),
        "total_steps": len(steps),
    }


@dataclass(frozen=True)
class DocumentProgress:
    """How far one document is, in the few words a live row shows."""

    id: int
    status: str
    # The step running now, or None (waiting, or finished).
    step: str | None
    # Finished steps (done, failed or skipped) over all steps, 0 before they exist.
    progress: float
    # The readable reason of a failure: the failed step and its error, else the document's.
    error: str


_STEP_FINISHED = frozenset({StepStatus.SUCCESS, StepStatus.FAILURE, StepStatus.SKIPPED})


def documents_progress(*, viewer: Viewer, ids: list[int]) -> list[DocumentProgress]:
    """The progress of those of ``ids`` that ``viewer`` may see (others are left out, as if
    absent), in two queries whatever their number: what the pages poll instead of each
    document's whole detail."""
    documents = list(
        Document.objects.visible_to(viewer).filter(pk__in=ids).order_by("pk").values("pk", "status", "error")
    )
    steps: dict[int, list[dict[str, Any]]] = {row["pk"]: [] for row in documents}
    if steps:
        rows = (
            ProcessingStep.objects.filter(document_id__in=list(steps))
            .order_by("document_id", "position")
            .values("document_id", "name", "status", "error")
        )
        for step_row in rows:
            steps[step_row["document_id"]].append(dict(step_row))
    answers = []
    for row in documents:
        own = steps[row["pk"]]
        running = next((step["name"] for step in own if step["status"] == StepStatus.IN_PROGRESS), None)
        failed = next((step for step in own if step["status"] == StepStatus.FAILURE and step["error"]), None)
        finished = sum(1 for step in own if step["status"] in _STEP_FINISHED)
        error = f"{failed['name']}: {failed['error']}" if failed else row["error"]
        answers.append(
            DocumentProgress(
                id=row["pk"],
                status=row["status"],
                step=running,
                progress=round(finished / len(own), 2) if own else 0.0,
                error=error if row["status"] == DocumentStatus.FAILED else "",
            )
        )
    return answers


def document_logs(*, document: Document) -> QuerySet[ProcessingLog]:
    """The document's processing history, oldest first."""
    return ProcessingLog.objects.filter(document=document).order_by("timestamp", "id")


def document_original_name(document: Document) -> str:
    """Storage name of the document's original; a duplicate shares its first copy's."""
    if document.original_file:
        return document.original_file
    if document.duplicate_of_id is not None:
        first = Document.objects.filter(pk=document.duplicate_of_id).values_list("original_file", flat=True)
        return first.first() or ""
    return ""


def document_stored_filename(document: Document) -> str:
    """The original's name in the storage without its folder (``stored_filename`` in the API)."""
    return PurePosixPath(document_original_name(document)).name


def document_files_present(document: Document) -> dict[str, bool]:
    """Whether the original and the processed file are really in the storage."""
    return {
        "original": storage.exists(document_original_name(document)),
        "processed": storage.exists(document.processed_file),
    }


@dataclass(frozen=True)
class DocumentDetail:
    """One document and everything its detail answer shows (GET /api/files/{id})."""

    document: Document
    processing_status: ProcessingSummary
    logs: QuerySet[ProcessingLog]
    steps: QuerySet[ProcessingStep]
    files_on_disk: dict[str, bool]
    deliveries: list[DeliveryView]
    custom_fields: list[CustomFieldValue]


def document_detail(*, document: Document) -> DocumentDetail:
    """``document`` with its processing state, history, steps, stored files and deliveries."""
    return DocumentDetail(
        document=document,
        processing_status=processing_summary(document),
        logs=document_logs(document=document),
        steps=document.steps.order_by("position"),
        files_on_disk=document_files_present(document),
        deliveries=deliveries_for_document(document),
        custom_fields=list(
            CustomFieldValue.objects.filter(document=document)
            .select_related("field")
            .order_by("field__name", "pk")
        ),
    )


def document_own_processed_files(*, document: Document, processed_file: str) -> list[str]:
    """The stored files of ``processed_file`` (the PDF and its sidecar) that are the
    document's alone, so that removing them touches no other document.

    A name in the document's own folder (``processed/<uuid>/``) is always its own. Before
    names had folders, two documents finalised at the same moment could be given one flat
    ``processed/<name>.pdf``; such a file is kept while another document still names it.
    """
    if not processed_file:
        return []
    names = [processed_file, storage.sidecar_name(processed_file)]
    if processed_file.startswith(storage.processed_folder(document.uuid) + "/"):
        return names
    shared = Document.objects.filter(processed_file=processed_file).exclude(pk=document.pk).exists()
    return [] if shared else names


@dataclass(frozen=True)
class StoredFile:
    """A file to hand out: its storage name, the name the user sees, and its type."""

    name: str
    filename: str
    content_type: str


def document_file(*, document: Document, version: FileVersion | None = None) -> StoredFile:
    """The file a download of ``version`` serves; without a version the processed PDF when
    there is one, else the original.

    The processed file is named ``2024-03-12_Invoice.pdf`` whatever name a filename
    template gave it in the storage (``processed/<uuid>/2024/ACME/Invoice.pdf``), the
    original after the name it was uploaded with. NotFound when the file is not there.
    """
    if version is None:
        version = "processed" if storage.exists(document.processed_file) else "original"
    if version == "processed":
        if not storage.exists(document.processed_file):
            raise NotFound("This document has no processed file yet.")
        name = document.processed_file
        return StoredFile(
            name=name, filename=document_download_name(document), content_type="application/pdf"
        )
    name = document_original_name(document)
    if not storage.exists(name):
        raise NotFound("The original file of this document is missing.")
    return StoredFile(name=name, filename=document.original_filename, content_type=document.mime_type)


def document_preview_file(*, document: Document) -> StoredFile:
    """The PDF to show in a browser: the processed one, or the original while that is a PDF
    and nothing is processed yet. NotFound when there is no PDF to show."""
    if storage.exists(document.processed_file):
        return document_file(document=document, version="processed")
    if document.mime_type == "application/pdf":
        return document_file(document=document, version="original")
    raise NotFound("There is no PDF to preview yet; the document has not been processed.")


def document_thumbnail(*, document: Document) -> StoredFile:
    """The picture of the document's first page that finalize made; NotFound while there is
    none (not processed yet, failed, its rendering failed, or processed before thumbnails)."""
    name = storage.thumbnail_name(document.uuid)
    if not storage.exists(name):
        raise NotFound("This document has no thumbnail.")
    return StoredFile(name=name, filename=f"{document.uuid.hex}.png", content_type=THUMBNAIL_CONTENT_TYPE)


# --- Operations ----------------------------------------------------------------------------


def documents_by_status(*, viewer: Viewer) -> dict[str, int]:
    """How many of the documents ``viewer`` may see are in each status; every status is present."""
    counts = dict.fromkeys(DocumentStatus.values, 0)
    rows = Document.objects.visible_to(viewer).order_by().values("status").annotate(count=Count("id"))
    for row in rows:
        counts[row["status"]] = row["count"]
    return counts
