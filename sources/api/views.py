"""The sources API: a user's own mailboxes (and, for operators, the system-wide sources:
watched folders, shared mailboxes, the environment's) listed, made, changed, tested, polled
and removed. Thin: an input serializer checks the request's form, the selectors decide who
sees what, the services (and each kind's ``clean()``) decide everything else, and each
answer is rendered by the output serializer its schema names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from docuelevate.api import ErrorOutputSerializer
from sources.api import serializers as s
from sources.models import Source
from sources.selectors import source_get_for_viewer, sources_documents_since, sources_visible_to
from sources.services import (
    source_create,
    source_delete,
    source_owner,
    source_poll_now,
    source_test,
    source_update,
)

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 403, 404, 409, 413, 415)}
SOURCE_ID = OpenApiParameter("source_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _source(request: Request, source_id: int) -> Source:
    return source_get_for_viewer(viewer=viewer_for_request(request), source_id=source_id)


def _context(sources: Iterable[Source]) -> dict[str, Any]:
    """What the output serializer needs besides the rows: today's document counts, in one
    query for however many sources are answered."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return {"documents_today": sources_documents_since([source.pk for source in sources], midnight)}


def _answer(source: Source, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(s.SourceOutputSerializer(source, context=_context([source])).data, status=status_code)


class SourceListView(APIView):
    """The caller's sources (operators: the system-wide ones too); POST makes one."""

    @extend_schema(
        operation_id="sources_list",
        tags=["sources"],
        responses={200: s.SourceOutputSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        sources = list(sources_visible_to(viewer_for_request(request)))
        return Response(s.SourceOutputSerializer(sources, many=True, context=_context(sources)).data)

    @extend_schema(
        operation_id="sources_create",
        tags=["sources"],
        request=s.SourceCreateInputSerializer,
        responses={201: s.SourceOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.SourceCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = source_owner(viewer=viewer_for_request(request), system_wide=data.pop("system_wide"))
        source = source_create(owner=owner, **data)
        return _answer(source, status_code=status.HTTP_201_CREATED)


class SourceDetailView(APIView):
    """One source: read, change what is given (PATCH), remove (DELETE) with its ledger; the
    documents it made stay."""

    @extend_schema(
        operation_id="sources_retrieve",
        tags=["sources"],
        parameters=[SOURCE_ID],
        responses={200: s.SourceOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, source_id: int) -> Response:
        return _answer(_source(request, source_id))

    @extend_schema(
        operation_id="sources_update",
        tags=["sources"],
        parameters=[SOURCE_ID],
        request=s.SourceUpdateInputSerializer,
        responses={200: s.SourceOutputSerializer, **ERRORS},
    )
    def patch(self, request: Request, source_id: int) -> Response:
        source = _source(request, source_id)
        serializer = s.SourceUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _answer(source_update(source=source, **serializer.validated_data))

    @extend_schema(
        operation_id="sources_destroy",
        tags=["sources"],
        parameters=[SOURCE_ID],
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, source_id: int) -> Response:
        source_delete(source=_source(request, source_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SourceTestView(APIView):
    """Check that the source works: connect and sign in (a folder: read and write it), take
    nothing. The outcome is also recorded on the source, as a poll's would be."""

    @extend_schema(
        operation_id="sources_test",
        tags=["sources"],
        request=None,
        parameters=[SOURCE_ID],
        responses={200: s.SourceCheckOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, source_id: int) -> Response:
        source = _source(request, source_id)
        reason = source_test(source=source)
        # The kind is what source_test recorded: a client decides on it, not on the words.
        source.refresh_from_db(fields=["last_error_kind"])
        outcome = {
            "ok": not reason,
            "detail": reason or "It works: the source could be reached and read.",
            "failure_kind": source.last_error_kind or None,
        }
        return Response(s.SourceCheckOutputSerializer(outcome).data)


class SourcePollView(APIView):
    """Look at the source now, on a worker, besides its schedule (202: queued)."""

    @extend_schema(
        operation_id="sources_poll",
        tags=["sources"],
        request=None,
        parameters=[SOURCE_ID],
        responses={202: s.SourcePollQueuedOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, source_id: int) -> Response:
        source = _source(request, source_id)
        source_poll_now(source=source)
        answer = {"source_id": source.pk, "status": "queued"}
        return Response(s.SourcePollQueuedOutputSerializer(answer).data, status=status.HTTP_202_ACCEPTED)
