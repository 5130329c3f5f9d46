"""The reads of search: searching the documents a viewer may see, and a user's saved searches.

Pages and the API call these; none of them knows which engine answers. Visibility is part
of every search request (``documents.visibility``, for the user with the rights of their
credential), so totals, facets and pages count only what the user may see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import QuerySet

from accounts.access import Viewer
from accounts.models import User
from docuelevate.bounds import MAX_PAGE
from docuelevate.errors import InvalidInput, NotFound
from documents.models import CustomField, Document, Tag
from documents.organise.filters import FACETED_TYPES, custom_field_condition, tag_tree_ids
from documents.visibility import visibility_for
from search.backends import search_backend
from search.backends.base import (
    CustomFieldFacet,
    FacetCount,
    FacetField,
    SearchFilters,
    SearchRequest,
    TagTree,
)
from search.models import SavedSearch
from search.query import parse_query

MAX_PER_PAGE = 100


@dataclass(frozen=True)
class SearchResult:
    document: Document
    formatted: dict[str, str]


@dataclass(frozen=True)
class SearchResults:
    query: str
    results: list[SearchResult]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)
    custom_facets: list[CustomFieldFacet] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0


def search(
    *,
    viewer: Viewer,
    query: str,
    filters: SearchFilters | None = None,
    page: int = 1,
    per_page: int = 20,
) -> SearchResults:
    """Documents ``viewer`` may see that match ``query`` and ``filters``, best first.

    An empty query lists everything the filters admit, newest first; InvalidInput only for
    a query too long to be a search.
    """
    parsed = parse_query(query)
    if page > MAX_PAGE:
        raise InvalidInput(f"page must be at most {MAX_PAGE}.")
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    visibility = visibility_for(viewer)
    if visibility.is_nothing:
        return SearchResults(query=query, results=[], total=0, page=page, per_page=per_page)
    filters = filters or SearchFilters()
    found = search_backend().search(
        SearchRequest(
            query=parsed,
            visibility=visibility,
            filters=filters,
            page=page,
            per_page=per_page,
            tag_tree=_tag_tree(viewer, filters.tag_tree) if filters.tag_tree is not None else None,
            custom_field=(
                custom_field_condition(viewer=viewer, asked=filters.custom_field)
                if filters.custom_field is not None
                else None
            ),
            facet_fields=tuple(
                FacetField(id=pk, name=name, data_type=data_type)
                for pk, name, data_type in CustomField.objects.available_to(viewer)
                .filter(data_type__in=FACETED_TYPES)
                .order_by("name", "pk")
                .values_list("pk", "name", "data_type")
            ),
        )
    )
    # The rows come from the one visibility queryset, in the engine's order.
    ids = [hit.file_id for hit in found.hits]
    # The names every hit shows come with the rows (not one query per hit), and the text,
    # the widest column, stays behind: the hit's snippet comes from the engine.
    documents = (
        Document.objects.visible_to(viewer)
        .filter(pk__in=ids)
        .select_related("document_type", "correspondent")
        .prefetch_related("tags")
        .defer("ocr_text")
        .in_bulk()
    )
    results = [
        SearchResult(documents[hit.file_id], hit.formatted) for hit in found.hits if hit.file_id in documents
    ]
    return SearchResults(
        query=query,
        results=results,
        total=found.total,
        page=page,
        per_page=per_page,
        facets=found.facets,
        custom_facets=found.custom_facets,
    )


def _tag_tree(viewer: Viewer, tag_id: int) -> TagTree:
    """The tag ``tag_id`` and those nested under it, by id and by name; InvalidInput for a
    tag ``viewer`` may not use."""
    ids = tag_tree_ids(viewer=viewer, tag_id=tag_id)
    names = Tag.objects.filter(pk__in=ids).order_by("name").values_list("name", flat=True).distinct()
    return TagTree(ids=tuple(ids), names=tuple(names))


def saved_search_list(*, user: User) -> QuerySet[SavedSearch]:
    """The user's own saved searches, in the model's order."""
    return SavedSearch.objects.filter(owner=user)


def saved_search_get(*, user: User, saved_search_id: int) -> SavedSearch:
    """One of the user's own saved searches; anyone else's is NotFound, never Forbidden."""
    saved = SavedSearch.objects.filter(owner=user, pk=saved_search_id).first()
    if saved is None:
        raise NotFound("No such saved search.")
    return saved
