"""Celery tasks of the search: thin wrappers around search.services."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from search.services import index_document, index_documents, reconcile, remove_document

logger = logging.getLogger(__name__)

# An index that is down for a while (Meilisearch restarting) is retried for about an hour;
# after that the hourly reconcile picks the document up.
RETRY_POLICY: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "retry_backoff": 30,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "max_retries": 6,
}


@shared_task(bind=True, name="search.tasks.search_index_document_task", acks_late=True, **RETRY_POLICY)
def search_index_document_task(self: Task[Any, Any], document_id: int) -> bool:
    """Index (or un-index) one document after processing; idempotent, so a redelivery or a
    retry after a half-done attempt leaves the same entry."""
    return index_document(document_id=document_id)


@shared_task(bind=True, name="search.tasks.search_index_documents_task", acks_late=True, **RETRY_POLICY)
def search_index_documents_task(self: Task[Any, Any], document_ids: list[int]) -> None:
    """Re-index a batch of documents whose names changed (a tag renamed, entries merged, a
    bulk edit); idempotent, each entry is rewritten from the document as it is."""
    index_documents(document_ids=document_ids)


@shared_task(bind=True, name="search.tasks.search_remove_document_task", acks_late=True, **RETRY_POLICY)
def search_remove_document_task(self: Task[Any, Any], document_id: int) -> None:
    """Drop a deleted document from the index; removing an absent entry is a no-op."""
    remove_document(document_id=document_id)


@shared_task(name="search.tasks.search_reconcile_task", acks_late=True, ignore_result=True)
def search_reconcile_task() -> dict[str, int]:
    """Hourly: find and repair drift (missing, stale, orphaned entries) between documents
    and the index, so one lost message or index outage never leaves search wrong for long."""
    report = reconcile(repair=True)
    return {"missing": len(report.missing), "stale": len(report.stale), "orphaned": len(report.orphaned)}
