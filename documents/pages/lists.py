"""The /organise pages: the managed lists (tags, document types, correspondents, storage
paths, custom fields) with their document counts; entries added, changed, merged and
deleted.

Thin: they read through documents.organise.lists (the selector behind /api/tags and its
siblings, so the page and the API count alike) and change entries only through its
services, whose readable errors are shown as messages above the form, its values kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import Viewer, viewer_for_request
from docuelevate.errors import ApplicationError, NotFound
from documents.models import Tag
from documents.organise import lists
from documents.organise.lists import EntryKind
from documents.pages.list_forms import DEFAULT_COLOUR, DeleteForm, MergeForm, entry_form

TITLES = {
    "tags": "Tags",
    "document-types": "Document types",
    "correspondents": "Correspondents",
    "storage-paths": "Storage paths",
    "custom-fields": "Custom fields",
}
INTROS = {
    "tags": "Labels on documents, with a colour; a tag may sit under another. An inbox tag is "
    "given to every new document until someone has looked at it.",
    "document-types": "What a document is: invoice, payslip, contract, …",
    "correspondents": "Who a document is from or to.",
    "storage-paths": "Named filename templates, chosen per document instead of the server's own.",
    "custom-fields": "Typed fields of your own on documents: an invoice's total, a contract's end.",
}
# Where a count links to: the page that lists the documents carrying the entry, and its
# parameter. Storage paths and custom fields have no such filter yet.
DOCUMENTS_FILTER = {
    "tags": ("files", "tags"),
    "document-types": ("search", "document_type"),
    "correspondents": ("search", "correspondent"),
}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
TREE_INDENT_REM = 1.25
TREE_SEPARATOR = " \u203a "  # a single right-pointing angle quotation mark


@dataclass(frozen=True)
class Row:
    """One entry as a list page shows it."""

    entry: Any
    depth: int  # nested tags: how many ancestors above it
    path: str  # nested tags: the names from the top, joined by TREE_SEPARATOR
    parent_path: str  # nested tags: "Finance"
    owner_label: str
    changeable: bool
    documents_link: str
    colour: str = ""
    text_colour: str = ""

    @property
    def indent(self) -> str:
        return f"{self.depth * TREE_INDENT_REM}rem"

    @property
    def owner_status(self) -> str:
        """The badge's data-status: whose the entry is."""
        return {"Global": "global", "Yours": "own"}.get(self.owner_label, "other")

    @property
    def label(self) -> str:
        """How a select names the entry: its place in the tree, and whose it is."""
        whose = {"Yours": "", "Global": " (global)"}.get(self.owner_label, f" ({self.owner_label})")
        return f"{self.path or self.entry.name}{whose}"


def _kind(slug: str) -> EntryKind:
    try:
        return lists.entry_kind(slug)
    except NotFound:
        raise Http404("No such list.") from None


def _text_colour(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (its relative luminance)."""
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    channels = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    return "#111827" if luminance > 0.179 else "#ffffff"


def _owner_label(viewer: Viewer, entry: Any) -> str:
    if entry.owner_id is None:
        return "Global"
    if entry.owner_id == getattr(viewer.user, "pk", None):
        return "Yours"
    return str(entry.owner.get_username())


def _documents_link(kind: EntryKind, entry: Any) -> str:
    if kind.slug not in DOCUMENTS_FILTER or not entry.document_count:
        return ""
    route, parameter = DOCUMENTS_FILTER[kind.slug]
    if parameter == "tags" and "," in entry.name:
        return ""  # the files filter takes several tags, comma-separated: it cannot name this one
    return reverse(route) + "?" + urlencode({parameter: entry.name})


def _in_tree_order(entries: list[Any]) -> list[tuple[Any, int, str, str]]:
    """Tags depth first, each after its parent, with its depth and its path of names. A tag
    whose parent is not in the list (none is, but for a loop the admin made) is a root."""
    present = {entry.pk for entry in entries}
    children: dict[int | None, list[Any]] = {}
    for entry in entries:
        parent = entry.parent_id if entry.parent_id in present else None
        children.setdefault(parent, []).append(entry)
    ordered: list[tuple[Any, int, str, str]] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int, path: str) -> None:
        for entry in children.get(parent, []):
            if entry.pk in seen:
                continue
            seen.add(entry.pk)
            named = f"{path}{TREE_SEPARATOR}{entry.name}" if path else entry.name
            ordered.append((entry, depth, named, path))
            walk(entry.pk, depth + 1, named)

    walk(None, 0, "")
    # Tags only in a loop among themselves have no root: listed at the top level.
    ordered += [(entry, 0, entry.name, "") for entry in entries if entry.pk not in seen]
    return ordered


def _rows(viewer: Viewer, kind: EntryKind) -> list[Row]:
    """The list's entries with their document counts, in one query however many there are."""
    entries = list(lists.entries_available(viewer=viewer, kind=kind).select_related("owner"))
    placed = _in_tree_order(entries) if kind.model is Tag else [(entry, 0, "", "") for entry in entries]
    rows = []
    for entry, depth, path, parent_path in placed:
        colour = ""
        if kind.model is Tag:
            colour = entry.colour if _COLOUR.match(entry.colour or "") else DEFAULT_COLOUR
        rows.append(
            Row(
                entry=entry,
                depth=depth,
                path=path,
                parent_path=parent_path,
                owner_label=_owner_label(viewer, entry),
                changeable=lists.entry_changeable(viewer=viewer, entry=entry),
                documents_link=_documents_link(kind, entry),
                colour=colour,
                text_colour=_text_colour(colour) if colour else "",
            )
        )
    return rows


def _descendants(rows: list[Row], tag: Any) -> set[int]:
    """``tag`` and the tags under it: none of them can become its parent."""
    found = {tag.pk}
    for row in rows:  # tree order: a parent always comes before its children
        if row.entry.parent_id in found:
            found.add(row.entry.pk)
    return found


def _parent_choices(
    viewer: Viewer, kind: EntryKind, rows: list[Row], entry: Any = None
) -> list[tuple[int, str]]:
    """The tags a tag may sit under: the global ones and its owner's (a new tag is the
    viewer's own), never itself or one of its own descendants."""
    if kind.model is not Tag:
        return []
    owner_id = entry.owner_id if entry is not None else getattr(viewer.user, "pk", None)
    excluded = _descendants(rows, entry) if entry is not None else set()
    return [
        (row.entry.pk, row.label)
        for row in rows
        if row.entry.pk not in excluded and row.entry.owner_id in (None, owner_id)
    ]


def _list_context(viewer: Viewer, kind: EntryKind, rows: list[Row], form: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": TITLES[kind.slug],
        "intro": INTROS[kind.slug],
        "rows": rows,
        "form": form,
        "operator": viewer.operator,
        "is_tags": kind.model is Tag,
        "is_storage_paths": kind.slug == "storage-paths",
        "is_custom_fields": kind.slug == "custom-fields",
    }


@login_required
@require_GET
def organise_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "documents/organise.html",
        {"lists": [(slug, TITLES[slug], INTROS[slug]) for slug in lists.KINDS]},
    )


@login_required
@require_http_methods(["GET", "POST"])
def organise_list(request: HttpRequest, slug: str) -> HttpResponse:
    """A list's entries, and the form that adds one (POST here)."""
    kind = _kind(slug)
    viewer = viewer_for_request(request)
    rows = _rows(viewer, kind)
    posted = request.POST if request.method == "POST" else None
    form = entry_form(kind, posted, parents=_parent_choices(viewer, kind, rows))
    status = 200
    if posted is not None:
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                entry = lists.entry_create(
                    viewer=viewer, kind=kind, name=data["name"], global_entry=data["is_global"],
                    **form.attributes(),
                )  # fmt: skip
            except ApplicationError as error:
                messages.error(request, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Added the {kind.label} {entry.name}.")
                return redirect("organise-list", slug=kind.slug)
    return render(
        request, "documents/organise_list.html", _list_context(viewer, kind, rows, form), status=status
    )


def _entry_row(rows: list[Row], entry_id: int, kind: EntryKind) -> Row:
    for row in rows:
        if row.entry.pk == entry_id:
            return row
    raise Http404(f"No such {kind.label}.")


def _entry_page(
    request: HttpRequest,
    kind: EntryKind,
    entry_id: int,
    *,
    edit_data: Any = None,
    merge_data: Any = None,
    delete_data: Any = None,
    status: int = 200,
) -> HttpResponse:
    """One entry's page: its edit form, and the merge and delete forms with the entries
    the service would take (a form that was sent keeps its values)."""
    viewer = viewer_for_request(request)
    rows = _rows(viewer, kind)
    row = _entry_row(rows, entry_id, kind)
    entry = row.entry
    mergeable = kind.document_field is not None
    by_pk = {other.entry.pk: other for other in rows}
    sources = [
        (other.entry.pk, other.label)
        for other in rows
        if mergeable and lists.entries_mergeable(viewer=viewer, source=other.entry, target=entry)
    ]
    replacements = [
        (other.entry.pk, other.label)
        for other in rows
        if mergeable and lists.entries_mergeable(viewer=viewer, source=entry, target=other.entry)
    ]
    context = {
        "kind": kind,
        "title": TITLES[kind.slug],
        "row": row,
        "entry": entry,
        "parent": by_pk.get(entry.parent_id) if kind.model is Tag else None,
        "is_tags": kind.model is Tag,
        "is_custom_fields": kind.slug == "custom-fields",
        "form": entry_form(kind, edit_data, entry=entry, parents=_parent_choices(viewer, kind, rows, entry)),
        "merge_form": MergeForm(merge_data, candidates=sources, prefix="merge") if sources else None,
        "delete_form": DeleteForm(delete_data, candidates=replacements, prefix="delete"),
    }
    return render(request, "documents/organise_entry.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def organise_entry(request: HttpRequest, slug: str, entry_id: int) -> HttpResponse:
    """One entry: its page, and its changes (POST here)."""
    kind = _kind(slug)
    if request.method != "POST":
        return _entry_page(request, kind, entry_id)
    viewer = viewer_for_request(request)
    entry = _entry_for_change(viewer, kind, entry_id)
    rows = _rows(viewer, kind)
    form = entry_form(kind, request.POST, entry=entry, parents=_parent_choices(viewer, kind, rows, entry))
    if not form.is_valid():
        return _entry_page(request, kind, entry_id, edit_data=request.POST, status=400)
    try:
        changed = lists.entry_update(
            viewer=viewer, kind=kind, entry_id=entry_id,
            changes={"name": form.cleaned_data["name"], **form.attributes()},
        )  # fmt: skip
    except ApplicationError as error:
        messages.error(request, error.message)
        return _entry_page(request, kind, entry_id, edit_data=request.POST, status=_refused(error))
    messages.success(request, f"Saved the {kind.label} {changed.name}.")
    return redirect("organise-entry", slug=kind.slug, entry_id=changed.pk)


def _entry_for_change(viewer: Viewer, kind: EntryKind, entry_id: int) -> Any:
    """The entry a POST names, or 404 when it is not the viewer's to change and not global.
    A global one is the service's to refuse (403, shown as a message)."""
    try:
        entry = lists.entry_get(viewer=viewer, kind=kind, entry_id=entry_id)
    except NotFound:
        raise Http404(f"No such {kind.label}.") from None
    if entry.owner_id is not None and not lists.entry_changeable(viewer=viewer, entry=entry):
        raise Http404(f"No such {kind.label}.")  # another user's, seen in a shared archive
    return entry


def _refused(error: ApplicationError) -> int:
    """The status of a page that shows a refusal: a NotFound here is about another entry
    the form named (the entry itself was found), so the request was at fault: 400."""
    return 400 if isinstance(error, NotFound) else error.status_code


@login_required
@require_POST
def organise_entry_merge(request: HttpRequest, slug: str, entry_id: int) -> HttpResponse:
    """Merge the chosen entries into this one: their documents move over, they go."""
    kind = _kind(slug)
    viewer = viewer_for_request(request)
    target = _entry_for_change(viewer, kind, entry_id)
    # The choices are checked by the service, not by a form: it says why one is refused.
    sources = [int(value) for value in request.POST.getlist("merge-sources") if value.isdigit()]
    if not sources:
        messages.error(request, f"Choose the {kind.label} entries to merge into {target.name}.")
        return _entry_page(request, kind, entry_id, status=400)
    try:
        lists.entry_merge(viewer=viewer, kind=kind, source_ids=sources, target_id=entry_id)
    except ApplicationError as error:
        messages.error(request, error.message)
        return _entry_page(request, kind, entry_id, merge_data=request.POST, status=_refused(error))
    count = len(set(sources) - {entry_id})
    messages.success(
        request,
        f"Merged {count} {kind.label}{'s' if count != 1 else ''} into {target.name}: their documents moved.",
    )
    return redirect("organise-entry", slug=kind.slug, entry_id=entry_id)


@login_required
@require_POST
def organise_entry_delete(request: HttpRequest, slug: str, entry_id: int) -> HttpResponse:
    """Delete the entry; its documents move to the replacement when one is chosen."""
    kind = _kind(slug)
    viewer = viewer_for_request(request)
    entry = _entry_for_change(viewer, kind, entry_id)
    raw = request.POST.get("delete-replacement", "")
    replacement = int(raw) if raw.isdigit() else None
    if raw and replacement is None:
        messages.error(request, f"Choose a {kind.label} to move its documents to, or none.")
        return _entry_page(request, kind, entry_id, status=400)
    try:
        lists.entry_delete(viewer=viewer, kind=kind, entry_id=entry_id, replacement_id=replacement)
    except ApplicationError as error:
        messages.error(request, error.message)
        return _entry_page(request, kind, entry_id, delete_data=request.POST, status=_refused(error))
    messages.success(request, f"Deleted the {kind.label} {entry.name}.")
    return redirect("organise-list", slug=kind.slug)
