"""API wiring shared by every app: one exception handler, so every error is JSON, and the
schema's names for the serializers that shape every answer.

Services raise the ApplicationError family; this maps them, DRF's own errors and Django's
404/403 to ``{"detail": ...}`` with the right status. Clients (the CLI, the mobile app,
the browser extension) only ever parse that one shape.

Every answer is rendered by the serializer its view names in ``extend_schema`` (an
``<Thing>OutputSerializer``), and every request is checked by an ``<Thing>InputSerializer``,
so the OpenAPI schema is the code that writes the answers, never a second description of it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from drf_spectacular import openapi
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from docuelevate.errors import ApplicationError, StaleEdit


class ErrorOutputSerializer(serializers.Serializer[Any]):
    """Every error of the API: one readable sentence, and a malformed request's field errors."""

    detail = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Added here: a class attribute "errors" would hide Serializer.errors from type checkers.
        fields["errors"] = serializers.JSONField(
            required=False, help_text="With a 400 for a malformed request: the messages of each field."
        )
        return fields


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, extended with our domain errors and a flat ``detail`` string."""
    if isinstance(exc, StaleEdit):
        # The version stored now, so the client can fetch it and merge.
        headers = {"ETag": f'"{exc.current_version}"'}
        return Response(ErrorOutputSerializer({"detail": exc.message}).data, status=412, headers=headers)
    if isinstance(exc, ApplicationError):
        return Response(ErrorOutputSerializer({"detail": exc.message}).data, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(ErrorOutputSerializer({"detail": "The request body is too large."}).data, status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    error: dict[str, Any] = {"detail": _first_message(exc.detail)}
    if isinstance(exc, exceptions.ValidationError):
        # Field errors stay available, but ``detail`` is always one readable sentence.
        error["errors"] = exc.detail
    # DRF's own answer keeps its status and headers (Retry-After, WWW-Authenticate).
    response.data = ErrorOutputSerializer(error).data
    return response


def retry_after_response(description: str) -> dict[str, Any]:
    """An OpenAPI response that asks the client to come back after ``Retry-After`` seconds,
    with the usual ``{"detail": ...}`` body (a schema hook adds it to the operations)."""
    return {
        "description": description,
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                }
            }
        },
    }


def validated_query(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    """The request's query parameters checked by ``serializer_class`` (400 when they are not)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def validated_body(
    serializer_class: type[serializers.Serializer[Any]], request: Request, *, partial: bool = False
) -> dict[str, Any]:
    """The request's body checked by ``serializer_class`` (400 when it is not)."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with components named after what they carry.

    A serializer's role is in its class name; its component keeps the name clients know:
    ``FileListOutputSerializer`` is ``FileList``, and ``UploadInputSerializer`` is
    ``UploadRequest`` (drf-spectacular's own spelling for a request body).
    """

    def get_serializer_name(self, serializer: serializers.Serializer[Any], direction: Any) -> str:
        return component_name(super().get_serializer_name(serializer, direction))


def component_name(class_name: str) -> str:
    """The schema component of a serializer class named ``class_name``."""
    if class_name.endswith("InputSerializer"):
        return class_name.removesuffix("InputSerializer") + "Request"
    return class_name.removesuffix("OutputSerializer").removesuffix("Serializer")


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()), ("", "Invalid input."))
        message = _first_message(value)
        return message if field in ("non_field_errors", "detail", "") else f"{field}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)
