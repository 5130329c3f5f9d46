"""API wiring shared by every app: one exception handler, so every error is JSON.

Services raise the ApplicationError family; this maps them, DRF's own errors and Django's
404/403 to ``{"detail": ...}`` with the right status. Clients (the CLI, the mobile app,
the browser extension) only ever parse that one shape.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from docuelevate.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, extended with our domain errors and a flat ``detail`` string."""
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large."}, status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        # Field errors stay available, but ``detail`` is always one readable sentence.
        response.data = {"detail": _first_message(exc.detail), "errors": exc.detail}
    return response


def validated_query(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    """The request's query parameters checked by ``serializer_class`` (400 when they are not)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()), ("", "Invalid input."))
        message = _first_message(value)
        return message if field in ("non_field_errors", "detail", "") else f"{field}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)
