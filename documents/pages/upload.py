"""The upload page. It only renders: the browser sends each file straight to the upload API
(``/api/ui-upload``, ``/api/process-url``), so the page and every other client share one
ingest path and one set of answers. Progress comes from the light ``/files/status`` poll
(all rows in one request), not from each document's whole detail."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import ensure_csrf_cookie

from documents.pages.files import STATUS_LIMIT


@login_required
# The script posts with the CSRF token; the cookie it is checked against must exist before then.
@ensure_csrf_cookie
def upload_page(request: HttpRequest) -> HttpResponse:
    """Drop zone, file and folder pickers, and a URL form; the work happens in static/js/upload.js."""
    return render(
        request,
        "documents/upload.html",
        {
            # The script refuses a file over the limit before sending it, sparing the upload.
            "max_upload_size": settings.MAX_UPLOAD_SIZE,
            "max_upload_size_text": filesizeformat(settings.MAX_UPLOAD_SIZE),
            "status_limit": STATUS_LIMIT,
        },
    )
