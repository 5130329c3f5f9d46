"""The search API: GET /api/search and the saved searches. Thin: shapes in, services, shapes
out (each answer rendered by the output serializer its schema names)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from accounts.models import User
from docuelevate.api import ErrorOutputSerializer, validated_query
from search.api import serializers as s
from search.backends.base import SearchFilters
from search.models import SavedSearch
from search.services import saved_search_create, saved_search_delete, saved_search_update, search

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 404, 409)}


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
        user: User = request.user  # type: ignore[assignment]  # IsAuthenticated
        return Response(s.SavedSearchOutputSerializer(SavedSearch.objects.filter(owner=user), many=True).data)

    @extend_schema(
        operation_id="saved_searches_create",
        tags=["search"],
        request=s.SavedSearchInputSerializer,
        responses={201: s.SavedSearchOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        saved = saved_search_create(user=request.user, **_saved_search_input(request))  # type: ignore[arg-type]
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
            user=request.user,  # type: ignore[arg-type]  # IsAuthenticated
            saved_search_id=saved_search_id,
            **_saved_search_input(request),
        )
        return Response(s.SavedSearchOutputSerializer(saved).data)

    @extend_schema(operation_id="saved_searches_delete", tags=["search"], responses={204: None, **ERRORS})
    def delete(self, request: Request, saved_search_id: int) -> Response:
        saved_search_delete(user=request.user, saved_search_id=saved_search_id)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)
