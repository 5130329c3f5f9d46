"""The /trash page: the viewer's trashed documents, each restorable until beat empties it
after EMPTY_TRASH_DELAY days, and "Empty trash now". Thin: the rules (legal hold, who may
see what) are documents.organise.trash's, as for ``/api/trash``."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import viewer_for_request
from docuelevate.bounds import parse_id
from docuelevate.errors import NotFound
from documents.models import Document
from documents.organise.trash import document_restore, trash_empty
from documents.selectors import document_page

PER_PAGE = 100


@dataclass(frozen=True)
class TrashedRow:
    document: Document
    empties_on: datetime.datetime
    days_left: int


def _row(document: Document, *, now: datetime.datetime, delay: datetime.timedelta) -> TrashedRow:
    assert document.trashed_at is not None  # trashed_visible_to holds only trashed rows
    empties_on = document.trashed_at + delay
    # A part of a day left counts as a day: "0 days" only once beat may take it.
    left = max(0, math.ceil((empties_on - now).total_seconds() / 86400))
    return TrashedRow(document=document, empties_on=empties_on, days_left=left)


@login_required
@require_GET
def trash_page(request: HttpRequest) -> HttpResponse:
    viewer = viewer_for_request(request)
    number = parse_id(request.GET.get("page", "1")) or 1
    page = document_page(
        Document.objects.trashed_visible_to(viewer).order_by("-trashed_at", "-pk"),
        page=number,
        per_page=PER_PAGE,
    )
    now, delay = timezone.now(), datetime.timedelta(days=settings.EMPTY_TRASH_DELAY)
    return render(
        request,
        "documents/trash.html",
        {
            "page": page,
            "rows": [_row(document, now=now, delay=delay) for document in page.items],
            "delay_days": settings.EMPTY_TRASH_DELAY,
        },
    )


@login_required
@require_POST
def trash_restore(request: HttpRequest, document_id: int) -> HttpResponse:
    try:
        document = document_restore(viewer=viewer_for_request(request), document_id=document_id)
    except NotFound:
        # As for every page of a document: another user's, or none, is not there.
        raise Http404("No such document in the trash.") from None
    messages.success(request, f"{document.original_filename} is back among your files.")
    return redirect("trash")


@login_required
@require_POST
def trash_empty_now(request: HttpRequest) -> HttpResponse:
    """Delete the whole trash for good; documents under legal hold stay, and the page says so."""
    viewer = viewer_for_request(request)
    deleted = trash_empty(viewer=viewer, everything=True)
    held = Document.objects.trashed_visible_to(viewer).filter(legal_hold=True).count()
    if deleted:
        messages.success(request, f"{deleted} document{'s' if deleted != 1 else ''} deleted for good.")
    if held:
        messages.warning(
            request,
            f"{held} document{'s are' if held != 1 else ' is'} under legal hold and cannot be deleted: "
            f"{'they stay' if held != 1 else 'it stays'} in the trash.",
        )
    if not deleted and not held:
        messages.info(request, "The trash was already empty.")
    return redirect("trash")
