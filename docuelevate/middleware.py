"""Request-wide guards that belong to no single app."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from docuelevate.views import payload_too_large


class RequestBodyLimitMiddleware:
    """Refuses a declared body over MAX_REQUEST_BODY_SIZE before anything reads it.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when a view reads ``request.body`` or a
    form, and DRF's JSON parser reads the stream directly, so without this an API client
    could send any amount of JSON. Multipart uploads are exempt: their files stream to disk
    and each is held to MAX_UPLOAD_SIZE by the upload code.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        content_type = request.META.get("CONTENT_TYPE", "")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django itself treats a malformed length as no body
        if declared > settings.MAX_REQUEST_BODY_SIZE and not content_type.startswith("multipart/form-data"):
            return payload_too_large(request)
        return self.get_response(request)
