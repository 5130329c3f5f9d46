"""The /files list and the /files/{id} document page.

Thin: they read through the same selectors as ``GET /api/files`` (so the page and the API
filter, sort and page alike, and only through ``Document.objects.visible_to``) and change
documents only through the services.
"""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from accounts.access import Viewer, viewer_for_request
from destinations.selectors import deliveries_for_document
from destinations.services import deliveries_redeliver
from docuelevate.bounds import parse_id, parse_ids
from docuelevate.errors import ApplicationError, InvalidInput, NotFound, StaleEdit
from documents import storage
from documents.api.serializers import FileListInputSerializer
from documents.models import (
    BulkAction,
    BulkOperation,
    BulkStatus,
    ChangeOrigin,
    Correspondent,
    Document,
    DocumentChange,
    DocumentStatus,
    DocumentType,
    Note,
    StepStatus,
    StoragePath,
)
from documents.organise.bulk import bulk_edit_start, bulk_operation_get
from documents.organise.editing import document_history, document_update
from documents.organise.filters import FilterChoices, filter_choices
from documents.organise.notes import note_add, note_delete
from documents.organise.trash import document_trash
from documents.pages.forms import DocumentEditForm, NoteForm
from documents.selectors import (
    SORT_FIELDS,
    DocumentFilters,
    document_file,
    document_files_present,
    document_get_for_user,
    document_list_page,
    document_logs,
    document_preview_file,
    document_sources,
    document_thumbnail,
    documents_by_status,
    documents_progress,
)
from documents.services import document_retry_step
from sources.models import SourceKind

PER_PAGE_CHOICES = (25, 50, 100, 200)
# Statuses whose rows the page keeps polling; the others no longer change on their own.
IN_PROGRESS = (DocumentStatus.PENDING, DocumentStatus.PROCESSING)
# One request may act on at most a page's worth of documents (the largest page offered).
BULK_LIMIT = max(PER_PAGE_CHOICES)
# The status poll answers for as many ids; the upload page asks in batches of this size.
STATUS_LIMIT = BULK_LIMIT
# A ZIP is built on disk beyond this, so a large selection does not sit in a worker's memory.
ZIP_SPOOL_BYTES = 16 * 1024 * 1024
# The bulk form's selects of entries, by the action that sets them.
ENTRY_CHOICES = (
    (BulkAction.SET_DOCUMENT_TYPE, "document_type"),
    (BulkAction.SET_CORRESPONDENT, "correspondent"),
    (BulkAction.SET_STORAGE_PATH, "storage_path"),
)
# Operations whose progress page keeps polling.
RUNNING = (BulkStatus.PENDING, BulkStatus.RUNNING)
# How the source filter names the ways in that are not a source's kind (those have a label).
SOURCE_LABELS = {
    "upload": "Upload",
    "api": "API",
    "url": "From a URL",
    "ingest": "Ingest command",
    **dict(SourceKind.choices),
}
# A thumbnail's link carries the document's last change (``?v=``), so a new one has a new
# address and the browser may keep each for a day; the placeholder is asked again soon,
# since the document it stands for may be finished by then.
THUMBNAIL_CACHE = "private, max-age=86400"
PLACEHOLDER_CACHE = "private, max-age=60"
# What the grid and the search results show for a document without a thumbnail: a blank
# page with a folded corner, in greys that read on a light and a dark background.
THUMBNAIL_PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="424" viewBox="0 0 300 424">'
    '<path d="M20 12h200l60 60v340H20z" fill="#e5e7eb" stroke="#9ca3af" stroke-width="4"/>'
    '<path d="M220 12v60h60" fill="#d1d5db" stroke="#9ca3af" stroke-width="4"/>'
    '<path d="M60 140h180M60 180h180M60 220h180M60 260h120" stroke="#9ca3af" stroke-width="10"/>'
    "</svg>"
)
VIEWS = ("table", "grid")
# The list's parameters that narrow it (the others sort, page or lay it out).
FILTER_PARAMS = frozenset(
    {
        "search", "mime_type", "status", "source", "date_from", "date_to", "tags", "tag_tree",
        "custom_field", "cf_value", "cf_min", "cf_max", "cf_exists",
    }
)  # fmt: skip
COLUMNS = (
    ("original_filename", "Name"),
    ("document_title", "Title"),
    ("created_at", "Added"),
    ("file_size", "Size"),
    ("status", "Status"),
)


def _query(request: HttpRequest) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The list's parameters, checked like the API's; empty form fields count as absent."""
    raw = {name: str(value) for name, value in request.GET.items() if str(value).strip()}
    serializer = FileListInputSerializer(data=raw)
    if not serializer.is_valid():
        return None, raw
    return dict(serializer.validated_data), raw


def _link(params: dict[str, str], **changes: Any) -> str:
    merged = {**params, **changes}
    return "?" + urlencode({name: value for name, value in merged.items() if value not in (None, "")})


def _source_choices(viewer: Viewer, *, selected: str) -> list[tuple[str, str]]:
    """The source filter's options: the ways the viewer's documents came in, and the one
    asked for even when none of theirs came that way (so the form shows what it filters)."""
    values = document_sources(viewer=viewer)
    if selected and selected not in values:
        values.append(selected)
    return [(value, SOURCE_LABELS.get(value, value)) for value in values]


def _queue(viewer: Viewer) -> dict[str, int]:
    """How many of the viewer's documents wait or are being processed (one query)."""
    counts = documents_by_status(viewer=viewer)
    return {"pending": counts[DocumentStatus.PENDING], "processing": counts[DocumentStatus.PROCESSING]}


@login_required
@require_GET
def files_page(request: HttpRequest) -> HttpResponse:
    query, params = _query(request)
    viewer = viewer_for_request(request)
    context: dict[str, Any] = {
        "params": params,
        "statuses": DocumentStatus.choices,
        "sources": _source_choices(viewer, selected=params.get("source", "")),
        "per_page_choices": PER_PAGE_CHOICES,
        "queue": _queue(viewer),
        "in_progress": [status.value for status in IN_PROGRESS],
        "choices": filter_choices(viewer=viewer),
    }
    if query is None:
        context["error"] = "Some filters are not valid; check the dates and the page number."
        return render(request, "documents/files.html", context, status=400)
    try:
        filters = DocumentFilters.from_query(query)
        page = document_list_page(
            viewer=viewer, filters=filters, page=query["page"], per_page=query["per_page"]
        )
    except ApplicationError as error:
        # A custom field or tag that is not the viewer's, or a value not of the field's type.
        context["error"] = error.message
        return render(request, "documents/files.html", context, status=400)
    columns = []
    for field, title in COLUMNS:
        active = query["sort_by"] == field
        # A click on the sorted column turns it round; on another one it sorts that one.
        order = "asc" if active and query["sort_order"] == "desc" else "desc"
        if not active and field in {"original_filename", "document_title", "status"}:
            order = "asc"
        columns.append(
            {
                "title": title,
                "link": _link(params, sort_by=field, sort_order=order, page=None),
                "sort": ("ascending" if query["sort_order"] == "asc" else "descending") if active else "none",
            }
        )
    view = params.get("view") if params.get("view") in VIEWS else "table"
    context.update(
        page=page,
        columns=columns,
        view=view,
        # The other layout of the same documents: filters, sorting and the page stay.
        view_links={name: _link(params, view=None if name == "table" else name) for name in VIEWS},
        filtered=bool(set(params) & FILTER_PARAMS),
        bulk_choices=_bulk_choices(viewer, context["choices"]),
        next_link=_link(params, page=page.next) if page.next else "",
        previous_link=_link(params, page=page.previous) if page.previous else "",
        sort_fields=list(SORT_FIELDS),
    )
    return render(request, "documents/files.html", context)


def _bulk_choices(viewer: Viewer, filtering: FilterChoices) -> dict[str, Any]:
    """The entries the bulk form offers: those the viewer may use (one query per list; the
    tags and custom fields the filter form read already)."""
    return {
        "tags": filtering.tags,
        "document_types": list(DocumentType.objects.available_to(viewer).order_by("name", "pk")),
        "correspondents": list(Correspondent.objects.available_to(viewer).order_by("name", "pk")),
        "storage_paths": list(StoragePath.objects.available_to(viewer).order_by("name", "pk")),
        "custom_fields": filtering.custom_fields,
    }


@login_required
@require_GET
def files_status(request: HttpRequest) -> JsonResponse:
    """How far some documents are (status, running step, progress, failure) and the queue
    banner: what the files list and the upload page poll, in a few queries however many
    rows they ask about, instead of each document's whole detail."""
    ids = parse_ids(request.GET.get("ids", "").split(","), limit=STATUS_LIMIT)
    viewer = viewer_for_request(request)
    labels = dict(DocumentStatus.choices)
    return JsonResponse(
        {
            "documents": [
                {
                    "id": row.id,
                    "status": row.status,
                    "label": labels.get(row.status, row.status),
                    "step": row.step,
                    "progress": row.progress,
                    "error": row.error,
                }
                for row in documents_progress(viewer=viewer, ids=ids)
            ],
            "queue": _queue(viewer),
        }
    )


def _selected(request: HttpRequest) -> list[Document]:
    """The ticked documents the user may see; ids of others are ignored, as if absent."""
    ids = parse_ids(request.POST.getlist("ids"), limit=BULK_LIMIT)
    return list(Document.objects.visible_to(viewer_for_request(request)).filter(pk__in=ids).order_by("pk"))


def _back_to_list(request: HttpRequest) -> HttpResponse:
    # Back to the same filters and page; only a query string of our own list is followed.
    query = request.POST.get("return_query", "")
    return redirect(reverse("files") + (f"?{query}" if query and "//" not in query else ""))


@login_required
@require_POST
def files_bulk(request: HttpRequest) -> HttpResponse:
    """Start a bulk edit of the ticked documents, or of every result of the list's filter,
    and follow it on its progress page; redelivery happens at once, each document on its own."""
    action = request.POST.get("action", "")
    if action == "redeliver":
        return _redeliver(request)
    if action not in BulkAction.values:
        messages.error(request, "Choose what to do with the selected documents.")
        return _back_to_list(request)
    viewer = viewer_for_request(request)
    selection: dict[str, Any]
    if request.POST.get("scope") == "all":
        # Every result of the filter the list shows (its query string), not only this page.
        query = QueryDict(request.POST.get("return_query", ""))
        filters = {name: query[name] for name in sorted(FILTER_PARAMS) if query.get(name, "").strip()}
        selection = {"query": filters}
    else:
        ids = parse_ids(request.POST.getlist("ids"), limit=BULK_LIMIT)
        if not ids:
            messages.error(request, "Select at least one document first.")
            return _back_to_list(request)
        selection = {"documents": ids}
    try:
        operation = bulk_edit_start(
            viewer=viewer, selection=selection, action=action, parameters=_bulk_parameters(action, request)
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return _back_to_list(request)
    return redirect("files-bulk-progress", operation_id=operation.pk)


def _bulk_parameters(action: str, request: HttpRequest) -> dict[str, Any]:
    """The bulk form's fields as the action's parameters (an empty choice clears a field)."""
    form = request.POST
    if action in (BulkAction.ADD_TAGS, BulkAction.REMOVE_TAGS):
        tag = parse_id(form.get("tag", ""))
        return {"tags": [tag] if tag else []}
    for bulk_action, name in ENTRY_CHOICES:
        if action == bulk_action:
            return {name: parse_id(form.get(name, ""))}
    if action == BulkAction.SET_CUSTOM_FIELD:
        value = form.get("custom_value", "").strip()
        return {"field": parse_id(form.get("custom_field", "")), "value": value or None}
    return {}


def _redeliver(request: HttpRequest) -> HttpResponse:
    documents = _selected(request)
    if not documents:
        messages.error(request, "Select at least one document first.")
        return _back_to_list(request)
    done, refused = 0, []
    for document in documents:
        try:
            deliveries_redeliver(document=document)
            done += 1
        except ApplicationError as error:
            refused.append(f"{document.original_filename}: {error.message}")
    if done:
        messages.success(request, f"{done} document{'s' if done != 1 else ''} queued for delivery again.")
    for reason in refused:
        messages.error(request, reason)
    return _back_to_list(request)


@login_required
@require_GET
def files_bulk_progress(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """How far a bulk edit has come; the page asks files_bulk_status until it is over."""
    operation = _operation(request, operation_id)
    return render(
        request,
        "documents/bulk_progress.html",
        {
            "operation": operation,
            "state": _operation_state(operation),
            "running": operation.status in RUNNING,
        },
    )


@login_required
@require_GET
def files_bulk_status(request: HttpRequest, operation_id: uuid.UUID) -> JsonResponse:
    """The small answer the progress page polls: counts, status and the refusals."""
    return JsonResponse(_operation_state(_operation(request, operation_id)))


def _operation(request: HttpRequest, operation_id: uuid.UUID) -> BulkOperation:
    try:
        return bulk_operation_get(viewer=viewer_for_request(request), operation_id=str(operation_id))
    except NotFound:
        raise Http404("No such bulk operation.") from None


def _operation_state(operation: BulkOperation) -> dict[str, Any]:
    return {
        "status": operation.status,
        "label": operation.get_status_display(),
        "total": operation.total,
        "done": operation.done,
        "failed": operation.failed,
        "percent": round(100 * operation.done / operation.total) if operation.total else 100,
        "errors": operation.errors,
        "detail": operation.detail,
    }


@login_required
@require_POST
def files_zip(request: HttpRequest) -> HttpResponseBase:
    """One ZIP of the ticked documents: each one's processed PDF, or its original before that."""
    documents = _selected(request)
    if not documents:
        messages.error(request, "Select at least one document to download.")
        return _back_to_list(request)
    archive = tempfile.SpooledTemporaryFile(max_size=ZIP_SPOOL_BYTES)  # noqa: SIM115  # FileResponse closes it
    used: set[str] = set()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for document in documents:
            try:
                stored = document_file(document=document)
            except NotFound:
                continue  # nothing stored (yet): the others are still worth having
            entry_name = _unique(stored.filename, used)
            with storage.open_file(stored.name) as source, bundle.open(entry_name, "w") as entry:
                for chunk in storage.read_chunks(source):
                    entry.write(chunk)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename="documents.zip", content_type="application/zip")


def _unique(filename: str, used: set[str]) -> str:
    """``filename`` inside the ZIP, numbered when two documents share a name."""
    path = PurePosixPath(PurePosixPath(filename).name or "document")
    name, number = path.name, 1
    while name.lower() in used:
        number += 1
        name = f"{path.stem} ({number}){path.suffix}"
    used.add(name.lower())
    return name


def _document(request: HttpRequest, document_id: int) -> Document:
    try:
        return document_get_for_user(viewer=viewer_for_request(request), document_id=document_id)
    except NotFound:
        raise Http404("No such document.") from None


@login_required
@require_GET
def file_detail(request: HttpRequest, document_id: int) -> HttpResponse:
    document = _document(request, document_id)
    form = DocumentEditForm(document=document, viewer=viewer_for_request(request))
    return _detail_page(request, document, form=form)


def _detail_page(
    request: HttpRequest,
    document: Document,
    *,
    form: DocumentEditForm,
    conflict: dict[str, Any] | None = None,
    note_form: NoteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The document page, with the edit form as given (blank, refused with its errors, or
    in conflict with someone else's save)."""
    viewer = viewer_for_request(request)
    try:
        document_preview_file(document=document)
        has_preview = True
    except NotFound:
        has_preview = False
    steps = list(document.steps.order_by("position"))
    # What extraction found that the form does not edit.
    found = [
        ("Sender", document.sender),
        ("Recipient", document.recipient),
        ("Reference", document.reference_number),
        ("Amounts", ", ".join(str(amount) for amount in document.amounts) if document.amounts else ""),
        ("Confidence", f"{document.confidence} %" if document.confidence is not None else ""),
    ]
    notes = list(Note.objects.filter(document=document).select_related("author").order_by("created_at", "pk"))
    user_id = getattr(viewer.user, "pk", None)
    return render(
        request,
        "documents/document.html",
        {
            "document": document,
            "form": form,
            "conflict": conflict,
            "found": [(label, value) for label, value in found if value not in ("", None)],
            "tags": list(document.tags.order_by("name")),
            "steps": steps,
            "failure": StepStatus.FAILURE,
            "logs": list(document_logs(document=document)),
            "files": document_files_present(document),
            "has_preview": has_preview,
            "in_progress": document.status in IN_PROGRESS,
            "deliveries": deliveries_for_document(document),
            "completed": document.status == DocumentStatus.COMPLETED,
            "notes": [(note, viewer.operator or note.author_id == user_id) for note in notes],
            "note_form": note_form or NoteForm(),
            "changes": document_history(document=document),
        },
        status=status,
    )


@login_required
@require_POST
def file_edit(request: HttpRequest, document_id: int) -> HttpResponse:
    """Save the edit form through document_update, made on the version the form was opened
    on: a save in between is a conflict shown beside the person's own values, never lost."""
    viewer = viewer_for_request(request)
    document = _document(request, document_id)
    form = DocumentEditForm(request.POST, document=document, viewer=viewer)
    if not form.is_valid():
        return _detail_page(request, document, form=form, status=400)
    changes = form.changes()
    if not changes:
        messages.info(request, "Nothing to save: the form is as stored.")
        return redirect(reverse("file-detail", kwargs={"document_id": document.pk}) + "#edit-title")
    try:
        document_update(
            viewer=viewer,
            document_id=document.pk,
            changes=changes,
            expected_version=form.cleaned_data["version"],
            origin=ChangeOrigin.PAGE,
        )
    except StaleEdit as stale:
        return _conflict(request, document_id=document.pk, current_version=stale.current_version)
    except InvalidInput as error:
        # The service names no field; when one field was sent, it is that one's.
        only = form.field_for_change(next(iter(changes))) if len(changes) == 1 else None
        form.add_error(only, error.message)
        return _detail_page(request, document, form=form, status=400)
    except ApplicationError as error:
        form.add_error(None, error.message)
        return _detail_page(request, document, form=form, status=error.status_code)
    messages.success(request, "Saved.")
    return redirect(reverse("file-detail", kwargs={"document_id": document.pk}) + "#edit-title")


def _conflict(request: HttpRequest, *, document_id: int, current_version: int) -> HttpResponse:
    """The form again with the person's values and the stored version, and a table of
    their values beside the stored ones: saving again puts theirs over (a new conflict if
    someone saves once more in between)."""
    viewer = viewer_for_request(request)
    document = _document(request, document_id)
    data = request.POST.copy()
    data["version"] = str(current_version)
    form = DocumentEditForm(data, document=document, viewer=viewer)
    form.is_valid()
    last = DocumentChange.objects.filter(document=document).order_by("-at", "-pk").first()
    conflict = {"rows": form.differences(), "last": last}
    return _detail_page(request, document, form=form, conflict=conflict, status=409)


@login_required
@require_POST
def file_note_add(request: HttpRequest, document_id: int) -> HttpResponse:
    document = _document(request, document_id)
    note_form = NoteForm(request.POST)
    if note_form.is_valid():
        try:
            note_add(
                viewer=viewer_for_request(request),
                document_id=document.pk,
                text=note_form.cleaned_data["text"],
            )
        except ApplicationError as error:
            note_form.add_error("text", error.message)
        else:
            messages.success(request, "Note added.")
            return redirect(reverse("file-detail", kwargs={"document_id": document.pk}) + "#notes-title")
    form = DocumentEditForm(document=document, viewer=viewer_for_request(request))
    return _detail_page(request, document, form=form, note_form=note_form, status=400)


@login_required
@require_POST
def file_note_delete(request: HttpRequest, document_id: int, note_id: int) -> HttpResponse:
    document = _document(request, document_id)
    try:
        note_delete(viewer=viewer_for_request(request), document_id=document.pk, note_id=note_id)
    except NotFound:
        raise Http404("No such note.") from None
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Note removed.")
    return redirect(reverse("file-detail", kwargs={"document_id": document.pk}) + "#notes-title")


@login_required
@require_GET
def file_thumbnail(request: HttpRequest, document_id: int) -> HttpResponseBase:
    """The picture of the document's first page, or a placeholder while it has none: pages
    show either without asking first, so a grid costs no storage call per row."""
    document = _document(request, document_id)
    try:
        stored = document_thumbnail(document=document)
    except NotFound:
        placeholder = HttpResponse(THUMBNAIL_PLACEHOLDER, content_type="image/svg+xml")
        placeholder["Cache-Control"] = PLACEHOLDER_CACHE
        return placeholder
    response = FileResponse(storage.open_file(stored.name), content_type=stored.content_type)
    response["Cache-Control"] = THUMBNAIL_CACHE
    return response


@login_required
@require_POST
def file_redeliver(request: HttpRequest, document_id: int) -> HttpResponse:
    """Deliver the document again: to the destination the form names, or to all of them."""
    document = _document(request, document_id)
    named = request.POST.get("destination", "")
    destination_id = parse_id(named) if named else None
    try:
        if named and destination_id is None:
            raise NotFound("No such destination.")
        due = deliveries_redeliver(document=document, destination_id=destination_id)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if due:
            messages.success(request, f"{len(due)} deliver{'ies' if len(due) != 1 else 'y'} queued again.")
        else:
            messages.warning(
                request,
                "Nothing was queued: no enabled destination takes this document, or its deliveries are "
                "running and go round once more when they end.",
            )
    return redirect(reverse("file-detail", kwargs={"document_id": document.pk}) + "#deliveries-title")


@login_required
@require_POST
def file_retry(request: HttpRequest, document_id: int) -> HttpResponse:
    """Run one step again (and the steps after it)."""
    document = _document(request, document_id)
    step_name = request.POST.get("step", "")
    try:
        document_retry_step(document=document, step_name=step_name)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The {step_name} step is queued again.")
    return redirect("file-detail", document_id=document.pk)


@login_required
@require_POST
def file_delete(request: HttpRequest, document_id: int) -> HttpResponse:
    """Move the document to the trash, from where it can be restored until it is emptied."""
    document = _document(request, document_id)
    try:
        document_trash(viewer=viewer_for_request(request), document_id=document.pk)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("file-detail", document_id=document.pk)
    messages.success(
        request,
        format_html(
            '{} was moved to the trash. <a href="{}#trashed-{}">Restore it</a>',
            document.original_filename, reverse("trash"), document.pk,
        ),
    )  # fmt: skip
    return redirect("files")
