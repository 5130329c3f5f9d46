"""The writes of search: index, remove, reconcile, and saved searches.

Tasks, commands and the pipeline call these; none of them knows which engine answers
(``search.backends.search_backend``: the built-in database search unless MEILISEARCH_URL
is set). The reads, searching itself and a user's saved searches, are in
``search.selectors``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.models import User
from docuelevate.errors import Conflict, InvalidInput
from search.backends import search_backend
from search.backends.base import SearchBackend
from search.documents import fingerprint, indexable_documents, indexed_records
from search.models import SavedSearch
from search.query import parse_query
from search.selectors import saved_search_get

logger = logging.getLogger(__name__)

INDEX_BATCH_SIZE = 200


# --- Indexing ---------------------------------------------------------------------------------


def index_document(*, document_id: int) -> bool:
    """Bring the document's index entry up to date: add or replace it while the document is
    searchable, remove it otherwise (gone, failed, reprocessing). Returns True if indexed."""
    document = indexable_documents().filter(pk=document_id).first()
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

    transaction.on_commit(lambda: _send_or_leave_to_reconcile(search_index_document_task, document_id))


def index_documents(*, document_ids: Sequence[int]) -> None:
    """Bring these documents' entries up to date, in batches: indexed while searchable,
    removed otherwise. Idempotent."""
    backend = search_backend()
    for start in range(0, len(document_ids), INDEX_BATCH_SIZE):
        batch = list(document_ids[start : start + INDEX_BATCH_SIZE])
        documents = list(indexable_documents().filter(pk__in=batch))
        if documents:
            backend.index(list(indexed_records(documents)))
        if gone := set(batch) - {document.pk for document in documents}:
            backend.remove(sorted(gone))


def index_documents_now(*, document_ids: Sequence[int]) -> None:
    """Index these documents in this process, after commit: a person who just edited one
    searches for what they typed next. An index that cannot be reached costs nothing but
    time: a worker tries again (and the hourly reconcile after it)."""

    def index() -> None:
        try:
            index_documents(document_ids=document_ids)
        except Exception:
            logger.warning("search index unreachable; indexing %d documents in a worker", len(document_ids))
            _send_index_tasks(document_ids)

    transaction.on_commit(index)


def index_documents_enqueue(*, document_ids: Sequence[int]) -> None:
    """Index many documents in workers once the current transaction has committed (a tag
    renamed or merged changes every document that carries it)."""
    transaction.on_commit(lambda: _send_index_tasks(document_ids))


def _send_index_tasks(document_ids: Sequence[int]) -> None:
    from search.tasks import search_index_documents_task

    for start in range(0, len(document_ids), INDEX_BATCH_SIZE):
        search_index_documents_task.delay(list(document_ids[start : start + INDEX_BATCH_SIZE]))


def remove_document_enqueue(*, document_id: int) -> None:
    from search.tasks import search_remove_document_task

    transaction.on_commit(lambda: _send_or_leave_to_reconcile(search_remove_document_task, document_id))


def _send_or_leave_to_reconcile(task: Task[Any, Any], document_id: int) -> None:
    """Send ``task`` for the document; a broker that does not take it (Redis away) leaves
    the entry to the hourly reconcile, rather than failing whatever processed the document."""
    try:
        task.delay(document_id)
    except BrokerUnavailable:
        logger.warning("the broker refused %s of document %s; reconcile repairs it", task.name, document_id)


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
    states = indexable_documents().select_related(None).prefetch_related(None)
    return states.order_by("pk").values_list("pk", "updated_at").iterator()


def _index_ids(backend: SearchBackend, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), INDEX_BATCH_SIZE):
        batch = indexable_documents().filter(pk__in=ids[start : start + INDEX_BATCH_SIZE])
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
