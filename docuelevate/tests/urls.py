"""The project's routes plus views that fail outside DRF, to test the error handlers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path

# Django takes the error handlers from the root URLconf module, so this one names them too.
from docuelevate.urls import handler400, handler403, handler404, handler500  # noqa: F401


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail: /srv/private/path password=hunter2")


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/test-crash", crash),
    path("test-crash", crash),
    path("", include("docuelevate.urls")),
]
