"""The /sources pages: a person's mailboxes listed with how their polls go, added, changed,
tested, polled at once and removed; operators see and manage the system-wide sources
(theirs, the environment's, watched folders) there too.

Thin: they read through the same selectors as ``/api/sources`` (so the page and the API
show the same sources to the same person) and change them only through the services,
whose readable errors are shown on the form or as a message.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import viewer_for_request
from docuelevate.errors import ApplicationError, NotFound
from documents.models import FailureKind
from sources.kinds import KINDS, kind_class
from sources.models import Source, SourceKind
from sources.pages.forms import SourceForm
from sources.selectors import (
    source_get_for_viewer,
    source_secret_names,
    sources_documents_since,
    sources_visible_to,
)
from sources.services import (
    source_create,
    source_delete,
    source_document_owner_set,
    source_owner,
    source_poll_now,
    source_test,
    source_update,
)


def _kind_label(kind: str) -> str:
    return str(SourceKind(kind).label) if kind in SourceKind.values else kind


def _error_kind_label(kind: str) -> str:
    return str(FailureKind(kind).label) if kind in FailureKind.values else kind


def _source(request: HttpRequest, source_id: int) -> Source:
    try:
        return source_get_for_viewer(viewer=viewer_for_request(request), source_id=source_id)
    except NotFound:
        raise Http404("No such source.") from None


def _start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def _row(source: Source, taken_today: int) -> dict[str, Any]:
    return {
        "source": source,
        "kind_label": _kind_label(source.kind),
        # The badge's data-status (which the stylesheet colours) and its words.
        "state_badge": ("failing", "Failing")
        if source.failing
        else ("ok", "Working")
        if source.last_success_at
        else ("unknown", "Not polled yet"),
        "error_kind_label": _error_kind_label(source.last_error_kind),
        "taken_today": taken_today,
        "secrets_unreadable": source_secret_names(source) is None,
    }


@login_required
@require_GET
def sources_page(request: HttpRequest) -> HttpResponse:
    viewer = viewer_for_request(request)
    sources = list(sources_visible_to(viewer).select_related("document_owner"))
    taken = sources_documents_since([source.pk for source in sources], _start_of_today())
    rows = [_row(source, taken.get(source.pk, 0)) for source in sources]
    return render(
        request,
        "sources/sources.html",
        {
            "own": [row for row in rows if not row["source"].is_system],
            "system": [row for row in rows if row["source"].is_system],
            "operator": viewer.operator,
            # A watched folder is on the server: only operators are offered one.
            "kinds": [
                (kind, _kind_label(kind))
                for kind in KINDS
                if viewer.operator or not kind_class(kind).system_wide_only
            ],
        },
    )


@never_cache
@sensitive_post_parameters()  # an error report must not show the password entered
@login_required
@require_http_methods(["GET", "POST"])
def source_new(request: HttpRequest) -> HttpResponse:
    """A new source of the kind the query names (``?kind=imap``)."""
    kind = request.GET.get("kind", "")
    viewer = viewer_for_request(request)
    if kind not in KINDS:
        messages.error(request, "Choose the kind of source to add.")
        return redirect("sources")
    if kind_class(kind).system_wide_only and not viewer.operator:
        messages.error(request, f"Only operators can add a {_kind_label(kind).lower()}.")
        return redirect("sources")
    form = SourceForm(
        request.POST if request.method == "POST" else None,
        kind=kind_class(kind),
        may_make_system_wide=viewer.operator,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            source = source_create(
                kind=kind,
                name=data["name"],
                owner=source_owner(viewer=viewer, system_wide=form.system_wide()),
                settings=form.settings_values(),
                secrets=form.secrets_given(),
                poll_interval_minutes=data["poll_interval_minutes"],
                document_owner=data.get("document_owner"),
                enabled=data["enabled"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved {source.name}. Test the connection to see that it works.")
            return redirect("sources")
    context = {"form": form, "kind": kind, "kind_label": _kind_label(kind), "source": None}
    return render(
        request, "sources/source_form.html", context, status=400 if request.method == "POST" else 200
    )


@never_cache
@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def source_edit(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(request, source_id)
    form = SourceForm(
        request.POST if request.method == "POST" else None, kind=kind_class(source.kind), source=source
    )
    if request.method == "POST" and form.is_valid():
        try:
            source_update(source=source, **form.changes())
            if "document_owner" in form.fields:
                source_document_owner_set(source=source, document_owner=form.cleaned_data["document_owner"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved {source.name}.")
            return redirect("sources")
    context = {"form": form, "kind": source.kind, "kind_label": _kind_label(source.kind), "source": source}
    return render(
        request, "sources/source_form.html", context, status=400 if request.method == "POST" else 200
    )


@login_required
@require_POST
def source_test_page(request: HttpRequest, source_id: int) -> HttpResponse:
    """Connect and sign in now, reading nothing; the reason is shown when it fails."""
    source = _source(request, source_id)
    reason = source_test(source=source)
    if reason:
        source.refresh_from_db(fields=["last_error_kind"])
        messages.error(request, f"{source.name}: {reason} ({_error_kind_label(source.last_error_kind)})")
    else:
        messages.success(request, f"{source.name}: the connection works.")
    return redirect("sources")


@login_required
@require_POST
def source_poll_page(request: HttpRequest, source_id: int) -> HttpResponse:
    """A poll at once, on a worker; what it finds shows in Files and on this page."""
    source = _source(request, source_id)
    try:
        source_poll_now(source=source)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{source.name} is being polled now; new documents appear in Files.")
    return redirect("sources")


@login_required
@require_POST
def source_remove(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(request, source_id)
    try:
        source_delete(source=source)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {source.name}. The documents it made stay.")
    return redirect("sources")
