"""The dashboard (``/``): counts by status, the newest documents and the failures.

Thin: it reads through the selectors and ``Document.objects.visible_to``, then renders.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.access import viewer_for_request
from documents.models import Document, DocumentStatus
from documents.selectors import LIST_DEFERRED_FIELDS, documents_by_status

# How many rows each list on the dashboard shows; the rest is one click away on /files.
DASHBOARD_RECENT = 10
DASHBOARD_FAILED = 10


def dashboard(request: HttpRequest) -> HttpResponse:
    """Counts by status, the newest documents and the failures that need attention.

    An anonymous visitor gets the welcome with a "Log in" button instead of a bare redirect:
    the front page is where people arrive, and it shows no document. With AUTH_ENABLED=false
    the single-user middleware has signed the visitor in already.
    """
    context: dict[str, object] = {"version": settings.VERSION}
    if request.user.is_authenticated:
        viewer = viewer_for_request(request)
        visible = (
            Document.objects.visible_to(viewer)
            .defer(*LIST_DEFERRED_FIELDS)
            .select_related("document_type", "correspondent")
        )
        counts = documents_by_status(viewer=viewer)  # one aggregate query
        context.update(
            counts=[(status.label, status.value, counts[status.value]) for status in DocumentStatus],
            total=sum(counts.values()),
            # Sliced lists, evaluated here, so the template cannot add queries.
            recent=list(visible[:DASHBOARD_RECENT]),
            failed=(
                list(visible.filter(status=DocumentStatus.FAILED)[:DASHBOARD_FAILED])
                if counts[DocumentStatus.FAILED]
                else []
            ),
            failed_count=counts[DocumentStatus.FAILED],
        )
    return render(request, "documents/dashboard.html", context)
