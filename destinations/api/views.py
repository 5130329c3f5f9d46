"""The destinations API: a user's own destinations (and, for operators, the system-wide
ones) listed, made, changed, tested and removed. Thin: an input serializer checks the
request's form, the selectors decide who sees what, the services decide everything else,
and each answer is rendered by the output serializer its schema names.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from destinations.api import serializers as s
from destinations.health import destination_test
from destinations.models import Destination
from destinations.selectors import destination_get_for_viewer, destinations_visible_to
from destinations.services import (
    destination_create,
    destination_delete,
    destination_owner,
    destination_update,
)
from docuelevate.api import ErrorOutputSerializer

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 403, 404, 409, 413, 415)}
DESTINATION_ID = OpenApiParameter("destination_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _destination(request: Request, destination_id: int) -> Destination:
    return destination_get_for_viewer(viewer=viewer_for_request(request), destination_id=destination_id)


class DestinationListView(APIView):
    """The caller's destinations (operators: the system-wide ones too); POST makes one."""

    @extend_schema(
        operation_id="destinations_list",
        tags=["destinations"],
        responses={200: s.DestinationOutputSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        destinations = destinations_visible_to(viewer_for_request(request))
        return Response(s.DestinationOutputSerializer(destinations, many=True).data)

    @extend_schema(
        operation_id="destinations_create",
        tags=["destinations"],
        request=s.DestinationCreateInputSerializer,
        responses={201: s.DestinationOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.DestinationCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner = destination_owner(viewer=viewer_for_request(request), system_wide=data.pop("system_wide"))
        destination = destination_create(owner=owner, **data)
        return Response(s.DestinationOutputSerializer(destination).data, status=status.HTTP_201_CREATED)


class DestinationDetailView(APIView):
    """One destination: read, change what is given (PATCH), remove (DELETE)."""

    @extend_schema(
        operation_id="destinations_retrieve",
        tags=["destinations"],
        parameters=[DESTINATION_ID],
        responses={200: s.DestinationOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, destination_id: int) -> Response:
        return Response(s.DestinationOutputSerializer(_destination(request, destination_id)).data)

    @extend_schema(
        operation_id="destinations_update",
        tags=["destinations"],
        parameters=[DESTINATION_ID],
        request=s.DestinationUpdateInputSerializer,
        responses={200: s.DestinationOutputSerializer, **ERRORS},
    )
    def patch(self, request: Request, destination_id: int) -> Response:
        destination = _destination(request, destination_id)
        serializer = s.DestinationUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        destination = destination_update(destination=destination, **serializer.validated_data)
        return Response(s.DestinationOutputSerializer(destination).data)

    @extend_schema(
        operation_id="destinations_destroy",
        tags=["destinations"],
        parameters=[DESTINATION_ID],
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, destination_id: int) -> Response:
        destination_delete(destination=_destination(request, destination_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DestinationTestView(APIView):
    """Check that the destination works: connect, sign in, write a test file and remove it."""

    @extend_schema(
        operation_id="destinations_test",
        tags=["destinations"],
        request=None,
        parameters=[DESTINATION_ID],
        responses={200: s.DestinationCheckOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, destination_id: int) -> Response:
        outcome = destination_test(destination=_destination(request, destination_id))
        return Response(s.DestinationCheckOutputSerializer(outcome).data)
