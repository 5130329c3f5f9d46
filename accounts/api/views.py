"""The accounts API: API tokens and "who am I". Thin: shape checks, then a service or selector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import signed_in_user
from accounts.api.serializers import (
    ApiTokenCreatedOutputSerializer,
    ApiTokenCreateInputSerializer,
    ApiTokenOutputSerializer,
    DeviceTokenInputSerializer,
    DeviceTokenOutputSerializer,
    ProfileOutputSerializer,
)
from accounts.permissions import IsSessionAuthenticated, request_has_operator_rights
from accounts.selectors import token_list_for_user, user_profile
from accounts.services import token_create, token_create_for_device, token_revoke
from docuelevate.api import ErrorOutputSerializer
from docuelevate.bounds import parse_id
from docuelevate.errors import NotFound

UNAUTHENTICATED = OpenApiResponse(
    ErrorOutputSerializer, description="Not signed in, or the token is invalid."
)
SESSION_ONLY = OpenApiResponse(
    ErrorOutputSerializer, description="Called with an API token instead of a session."
)
# Routes that take only a session say so in the schema, instead of offering the token. Typed
# Any because drf-spectacular's hint says strings, while it emits these items verbatim as
# OpenAPI security requirements, which are objects.
SESSION_AUTH: Any = [{"cookieAuth": []}]
INVALID = OpenApiResponse(
    ErrorOutputSerializer, description="The request is not acceptable; `detail` says why."
)


class ApiTokenListView(APIView):
    def get_permissions(self) -> Sequence[BasePermission]:
        # A token may list its owner's tokens, but only a session may make new ones: else a
        # leaked token could mint a successor that survives its own revocation.
        if self.request.method == "POST":
            return [IsSessionAuthenticated()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="api_tokens_list",
        tags=["api-tokens"],
        summary="List your API tokens",
        responses={200: ApiTokenOutputSerializer(many=True), 401: UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        tokens = token_list_for_user(user=signed_in_user(request))
        return Response(ApiTokenOutputSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="api_tokens_create",
        tags=["api-tokens"],
        summary="Create an API token (shown once)",
        description="Needs a signed-in session. `operator_scope` is for operators only.",
        request=ApiTokenCreateInputSerializer,
        auth=SESSION_AUTH,
        responses={
            201: ApiTokenCreatedOutputSerializer,
            400: INVALID,
            401: UNAUTHENTICATED,
            403: SESSION_ONLY,
        },
    )
    def post(self, request: Request) -> Response:
        shape = ApiTokenCreateInputSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        token, raw_token = token_create(user=signed_in_user(request), **shape.validated_data)
        body = {"id": token.pk, "name": token.name, "token_prefix": token.token_prefix, "token": raw_token}
        return Response(ApiTokenCreatedOutputSerializer(body).data, status=status.HTTP_201_CREATED)


class ApiTokenDetailView(APIView):
    @extend_schema(
        operation_id="api_tokens_revoke",
        tags=["api-tokens"],
        summary="Revoke one of your API tokens",
        responses={
            204: OpenApiResponse(description="Revoked (also when it already was)."),
            401: UNAUTHENTICATED,
            404: OpenApiResponse(ErrorOutputSerializer, description="No such token of yours."),
        },
    )
    def delete(self, request: Request, token_id: str) -> Response:
        # The route takes any segment so that a non-number, or one beyond any id, is a JSON
        # 404 like any unknown id.
        number = parse_id(token_id)
        if number is None:
            raise NotFound("No such API token.")
        token_revoke(user=signed_in_user(request), token_id=number)
        return Response(status=status.HTTP_204_NO_CONTENT)


WHOAMI_SCHEMA: dict[str, Any] = {
    "summary": "The signed-in user",
    "responses": {200: ProfileOutputSerializer, 401: UNAUTHENTICATED},
}


class WhoAmIView(APIView):
    @extend_schema(operation_id="whoami", tags=["account"], **WHOAMI_SCHEMA)
    def get(self, request: Request) -> Response:
        profile = user_profile(user=signed_in_user(request), is_admin=request_has_operator_rights(request))
        return Response(ProfileOutputSerializer(profile).data)


class MobileWhoAmIView(WhoAmIView):
    @extend_schema(operation_id="mobile_whoami", tags=["mobile"], **WHOAMI_SCHEMA)
    def get(self, request: Request) -> Response:
        return super().get(request)


class MobileGenerateTokenView(APIView):
    permission_classes = [IsSessionAuthenticated]

    @extend_schema(
        operation_id="mobile_generate_token",
        tags=["mobile"],
        summary="Create a token for the mobile app (shown once)",
        description="Called by the mobile app while signed in with a session, never with a token.",
        request=DeviceTokenInputSerializer,
        auth=SESSION_AUTH,
        responses={201: DeviceTokenOutputSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: SESSION_ONLY},
    )
    def post(self, request: Request) -> Response:
        shape = DeviceTokenInputSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        token, raw_token = token_create_for_device(
            user=signed_in_user(request), device_name=shape.validated_data["device_name"]
        )
        body: dict[str, Any] = {
            "token": raw_token,
            "token_id": token.pk,
            "name": token.name,
            "created_at": token.created_at,
        }
        return Response(DeviceTokenOutputSerializer(body).data, status=status.HTTP_201_CREATED)
