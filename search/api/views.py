"""The search API: GET /api/search and the saved searches. Thin: shapes in, services, shapes
out (each answer rendered by the output serializer its schema names)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import signed_in_user, viewer_for_request
from docuelevate.api import ErrorOutputSerializer, validated_query
from search.api import serializers as s
from search.backends.base import SearchFilters
from search.selectors import saved_search_list, search
from search.services import saved_search_create, saved_search_delete, saved_search_update

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 404, 409, 415)}


class SearchView(APIView):
    """Full-text search over the documents the caller may see."""

    @extend_schema(
        operation_id="search",
        tags=["search"],
        parameters=[s.SearchInputSerializer],
        responses={200: s.SearchResultsOutputSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = validated_query(s.SearchInputSerializer, request)
        found = search(
            viewer=viewer_for_request(request),
            query=query["q"],
            filters=SearchFilters.from_values(query),
            page=query["page"],
            per_page=query["per_page"],
        )
        return Response(s.SearchResultsOutputSerializer(found).data)


def _saved_search_input(request: Request) -> dict[str, Any]:
    serializer = s.SavedSearchInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    # Stored as JSON: dates go back to their ISO text.
    filters = data["filters"]
    stored = s.SavedSearchFiltersInputSerializer().to_representation(filters) if filters else {}
    return {
        "name": data["name"],
        "query": data["query"],
        "filters": {k: v for k, v in stored.items() if v is not None},
    }


class SavedSearchListView(APIView):
    @extend_schema(
        operation_id="saved_searches_list",
        tags=["search"],
        responses={200: s.SavedSearchOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        saved_searches = saved_search_list(user=signed_in_user(request))
        return Response(s.SavedSearchOutputSerializer(saved_searches, many=True).data)

    @extend_schema(
        operation_id="saved_searches_create",
        tags=["search"],
        request=s.SavedSearchInputSerializer,
        responses={201: s.SavedSearchOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        saved = saved_search_create(user=signed_in_user(request), **_saved_search_input(request))
        return Response(s.SavedSearchOutputSerializer(saved).data, status=status.HTTP_201_CREATED)


class SavedSearchDetailView(APIView):
    @extend_schema(
        operation_id="saved_searches_update",
        tags=["search"],
        request=s.SavedSearchInputSerializer,
        responses={200: s.SavedSearchOutputSerializer, **ERRORS},
    )
    def put(self, request: Request, saved_search_id: int) -> Response:
        saved = saved_search_update(
            user=signed_in_user(request),
            saved_search_id=saved_search_id,
            **_saved_search_input(request),
        )
        return Response(s.SavedSearchOutputSerializer(saved).data)

    @extend_schema(operation_id="saved_searches_delete", tags=["search"], responses={204: None, **ERRORS})
    def delete(self, request: Request, saved_search_id: int) -> Response:
        saved_search_delete(user=signed_in_user(request), saved_search_id=saved_search_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
