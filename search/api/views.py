"""The search API: GET /api/search and the saved searches. Thin: shapes in, services, shapes out."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import signed_in_user, viewer_for_request
from docuelevate.api import validated_query
from search.api import serializers as s
from search.backends.base import FACET_FIELDS, SearchFilters
from search.models import SavedSearch
from search.selectors import SearchResult, saved_search_list, search
from search.services import saved_search_create, saved_search_delete, saved_search_update

ERRORS = {code: OpenApiResponse(description='`{"detail": ...}`') for code in (400, 401, 404, 409)}


def search_hit_data(result: SearchResult) -> dict[str, Any]:
    document = result.document
    return {
        "file_id": document.pk,
        "original_filename": document.original_filename,
        "document_title": document.document_title,
        "document_type": document.document_type,
        "correspondent": document.correspondent,
        "tags": sorted(tag.name for tag in document.tags.all()),
        "mime_type": document.mime_type,
        "document_date": document.document_date.isoformat() if document.document_date else None,
        "created_at": document.created_at.isoformat(),
        "_formatted": result.formatted,
    }


class SearchView(APIView):
    """Full-text search over the documents the caller may see."""

    @extend_schema(
        operation_id="search",
        tags=["search"],
        parameters=[s.SearchQuerySerializer],
        responses={200: s.SearchResultsSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = validated_query(s.SearchQuerySerializer, request)
        found = search(
            viewer=viewer_for_request(request),
            query=query["q"],
            filters=SearchFilters.from_values(query),
            page=query["page"],
            per_page=query["per_page"],
        )
        return Response(
            {
                "results": [search_hit_data(result) for result in found.results],
                "total": found.total,
                "page": found.page,
                "pages": found.pages,
                "per_page": found.per_page,
                "query": found.query,
                "facets": {
                    name: [{"value": value, "count": count} for value, count in found.facets.get(name, [])]
                    for name in FACET_FIELDS
                },
            }
        )


def _saved_search_input(request: Request) -> dict[str, Any]:
    serializer = s.SavedSearchSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    # Stored as JSON: dates go back to their ISO text.
    filters = s.SavedSearchFiltersSerializer().to_representation(data["filters"]) if data["filters"] else {}
    return {
        "name": data["name"],
        "query": data["query"],
        "filters": {k: v for k, v in filters.items() if v is not None},
    }


def _saved_search_data(saved: SavedSearch) -> dict[str, Any]:
    data = dict(s.SavedSearchSerializer(saved).data)
    data["filters"] = saved.filters  # as saved: only the filters the user set
    return data


class SavedSearchListView(APIView):
    @extend_schema(
        operation_id="saved_searches_list",
        tags=["search"],
        responses={200: s.SavedSearchSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        user = signed_in_user(request)
        return Response([_saved_search_data(saved) for saved in saved_search_list(user=user)])

    @extend_schema(
        operation_id="saved_searches_create",
        tags=["search"],
        request=s.SavedSearchSerializer,
        responses={201: s.SavedSearchSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        saved = saved_search_create(user=signed_in_user(request), **_saved_search_input(request))
        return Response(_saved_search_data(saved), status=status.HTTP_201_CREATED)


class SavedSearchDetailView(APIView):
    @extend_schema(
        operation_id="saved_searches_update",
        tags=["search"],
        request=s.SavedSearchSerializer,
        responses={200: s.SavedSearchSerializer, **ERRORS},
    )
    def put(self, request: Request, saved_search_id: int) -> Response:
        saved = saved_search_update(
            user=signed_in_user(request),
            saved_search_id=saved_search_id,
            **_saved_search_input(request),
        )
        return Response(_saved_search_data(saved))

    @extend_schema(operation_id="saved_searches_delete", tags=["search"], responses={204: None, **ERRORS})
    def delete(self, request: Request, saved_search_id: int) -> Response:
        saved_search_delete(user=signed_in_user(request), saved_search_id=saved_search_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
