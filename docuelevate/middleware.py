"""Request-wide guards that belong to no single app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from docuelevate.api import retry_after_response
from docuelevate.views import payload_too_large, service_unavailable

logger = logging.getLogger(__name__)


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


class DatabaseUnavailableMiddleware:
    """Answers 503 with ``Retry-After`` when a view (an API view too: DRF passes on what its
    handler does not map) met a database that cannot be reached, instead of a 500: the
    database restarting or failing over is passing, and a client should send the request
    again rather than report a bug. JSON under /api/, a page elsewhere, no exception text.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("the database is unavailable: %s answered 503", request.path, exc_info=True)
        return service_unavailable(request)


def document_database_unavailable(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every API operation may answer 503 while the
    database is away (DatabaseUnavailableMiddleware); the probes describe their own 503."""
    unavailable = retry_after_response(
        "The database is unavailable for the moment (a restart or failover); nothing of the request "
        "was kept; send it again after `Retry-After` seconds."
    )
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("503", unavailable)
    return result
