"""The only door to search: index, remove, search, reconcile; and saved searches.

Pages, the API, tasks and commands call these; none of them knows which engine answers.
The engine is the built-in database search unless MEILISEARCH_URL is set. Visibility is
part of every search request (``documents.models.visible_owner_ids``, for the user with
the rights of their credential), so totals and pages count only what the user may see.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from accounts.access import Viewer
from accounts.models import User
from docuelevate.bounds import MAX_PAGE
from docuelevate.errors import Conflict, InvalidInput, NotFound
from documents.models import Document, visible_owner_ids
from search.backends.base import FacetCount, SearchBackend, SearchFilters, SearchRequest
from search.documents import fingerprint, indexable_documents, indexed_records
from search.models import SavedSearch
from search.query import parse_query

logger = logging.getLogger(__name__)

INDEX_BATCH_SIZE = 200
MAX_PER_PAGE = 100


def search_backend() -> SearchBackend:
    if settings.MEILISEARCH_URL:
        from search.backends.meilisearch import MeilisearchBackend

        return MeilisearchBackend()
    from search.backends.database import DatabaseBackend

    return DatabaseBackend()


# --- Indexing ---------------------------------------------------------------------------------


def index_document(*, document_id: int) -> bool:
    """Bring the document's index entry up to date: add or replace it while the document is
    searchable, remove it otherwise (gone, failed, reprocessing). Returns True if indexed."""
    document = indexable_documents().prefetch_related("tags").filter(pk=document_id).first()
    backend = search_backend()
    if document is None:
        backend.remove([document_id])
        return False
    backend.index(list(indexed_records([document])))
    return True


def remove_document(*, document_id: int) -> None:
    search_backend().remove([document_id])


def index_document_enqueue(*, document_id: int) -> None:
    """Index the document in a worker once the current transaction has committed.

    Searching is a side effect of processing: if the index is down the task retries, and
    the hourly reconcile repairs whatever the retries did not; the document never fails.
    """
    from search.tasks import search_index_document_task

    transaction.on_commit(lambda: search_index_document_task.delay(document_id))


def remove_document_enqueue(*, document_id: int) -> None:
    from search.tasks import search_remove_document_task

    transaction.on_commit(lambda: search_remove_document_task.delay(document_id))


# --- Searching --------------------------------------------------------------------------------


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
    owner_ids = visible_owner_ids(viewer)
    if owner_ids == []:
        return SearchResults(query=query, results=[], total=0, page=page, per_page=per_page)
    found = search_backend().search(
        SearchRequest(
            query=parsed,
            owner_ids=owner_ids,
            filters=filters or SearchFilters(),
            page=page,
            per_page=per_page,
        )
    )
    # The rows come from the one visibility queryset, in the engine's order.
    ids = [hit.file_id for hit in found.hits]
    documents = Document.objects.visible_to(viewer).filter(pk__in=ids).prefetch_related("tags").in_bulk()
    results = [
        SearchResult(documents[hit.file_id], hit.formatted) for hit in found.hits if hit.file_id in documents
    ]
    return SearchResults(
        query=query, results=results, total=found.total, page=page, per_page=per_page, facets=found.facets
    )


# --- Drift ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftReport:
    """Differences between the documents and the index, and whether they were repaired."""

    missing: list[int]  # searchable documents not in the index
    stale: list[int]  # indexed at an older state of the document
    orphaned: list[int]  # index entries of documents that are gone or no longer searchable
    checked: int
    repaired: bool

    @property
    def drift(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.orphaned)


def reconcile(*, repair: bool) -> DriftReport:
    """Compare every searchable document with the index; with ``repair``, fix the difference."""
    backend = search_backend()
    _, report = _drift(backend, repair=repair)
    if repair:
        _index_ids(backend, report.missing + report.stale)
        if report.orphaned:
            backend.remove(report.orphaned)
    return report


def reindex_all() -> DriftReport:
    """Rebuild: apply the index settings, index every searchable document, drop the rest."""
    backend = search_backend()
    backend.setup()
    expected, report = _drift(backend, repair=True)
    _index_ids(backend, sorted(expected))
    if report.orphaned:
        backend.remove(report.orphaned)
    return report


def _drift(backend: SearchBackend, *, repair: bool) -> tuple[dict[int, str], DriftReport]:
    """The searchable documents' fingerprints, and how the index differs from them."""
    expected = {pk: fingerprint(updated_at) for pk, updated_at in _searchable_states()}
    indexed = backend.fingerprints()
    missing = sorted(expected.keys() - indexed.keys())
    orphaned = sorted(indexed.keys() - expected.keys())
    stale = sorted(pk for pk in expected.keys() & indexed.keys() if expected[pk] != indexed[pk])
    report = DriftReport(
        missing=missing, stale=stale, orphaned=orphaned, checked=len(expected), repaired=repair
    )
    if report.drift:
        logger.warning(
            "search index drift: %d missing, %d stale, %d orphaned%s",
            len(missing), len(stale), len(orphaned), " (repaired)" if repair else "",
        )  # fmt: skip
    return expected, report


def _searchable_states() -> Iterator[tuple[int, datetime.datetime]]:
    return indexable_documents().order_by("pk").values_list("pk", "updated_at").iterator()


def _index_ids(backend: SearchBackend, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), INDEX_BATCH_SIZE):
        batch = (
            indexable_documents()
            .filter(pk__in=ids[start : start + INDEX_BATCH_SIZE])
            .prefetch_related("tags")
        )
        backend.index(list(indexed_records(batch)))


# --- Saved searches ---------------------------------------------------------------------------

SAVED_FILTER_KEYS = frozenset(
    {"document_type", "tags", "correspondent", "language", "mime_type", "date_from", "date_to"}
)


def saved_search_create(*, user: User, name: str, query: str, filters: dict[str, object]) -> SavedSearch:
    """Keep a search under a name; names are unique per user (Conflict otherwise)."""
    saved = SavedSearch(owner=user)
    return _saved_search_write(saved, name=name, query=query, filters=filters)


def saved_search_update(
    *, user: User, saved_search_id: int, name: str, query: str, filters: dict[str, object]
) -> SavedSearch:
    return _saved_search_write(
        saved_search_get(user=user, saved_search_id=saved_search_id), name=name, query=query, filters=filters
    )


def saved_search_delete(*, user: User, saved_search_id: int) -> None:
    saved_search_get(user=user, saved_search_id=saved_search_id).delete()


def saved_search_get(*, user: User, saved_search_id: int) -> SavedSearch:
    """One of the user's own saved searches; anyone else's is NotFound, never Forbidden."""
    saved = SavedSearch.objects.filter(owner=user, pk=saved_search_id).first()
    if saved is None:
        raise NotFound("No such saved search.")
    return saved


def _saved_search_write(
    saved: SavedSearch, *, name: str, query: str, filters: dict[str, object]
) -> SavedSearch:
    name = name.strip()
    if not name:
        raise InvalidInput("A saved search needs a name.")
    parse_query(query)  # refuse now what the search would refuse later
    unknown = set(filters) - SAVED_FILTER_KEYS
    if unknown:
        raise InvalidInput(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
    if SavedSearch.objects.filter(owner_id=saved.owner_id, name=name).exclude(pk=saved.pk).exists():
        raise Conflict(f"You already have a saved search named {name!r}.")
    saved.name, saved.query, saved.filters = name, query, filters
    saved.save()
    return saved
