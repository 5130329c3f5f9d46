"""HTML pages for documents. Thin: they call selectors and services and render."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def dashboard(request: HttpRequest) -> HttpResponse:
    """The landing page."""
    return render(request, "documents/dashboard.html", {"version": settings.VERSION})
