"""Meilisearch, through its official client, for large archives and instant search.

One index (MEILISEARCH_INDEX_NAME, primary key ``file_id``) holds the flat records of
search.documents. Visibility and filters become Meilisearch filter expressions on
``owner_id`` and the filterable attributes, so totals and facets count only what the
user may see. Writes wait for their task where the next read depends on them (settings
before indexing, removal before reconcile counts), with a bound on the wait.
"""

from __future__ import annotations

import calendar
import datetime
import json
from collections.abc import Sequence
from typing import Any

import meilisearch
from django.conf import settings

from docuelevate.errors import InvalidInput
from documents.visibility import Visibility
from search.backends.base import (
    FACET_FIELDS,
    FACET_LIMIT,
    MARK_END,
    MARK_START,
    FacetCount,
    Hit,
    SearchFilters,
    SearchPage,
    SearchRequest,
    TagTree,
    marked,
)
from search.documents import IndexedDocument
from search.query import ParsedQuery, Term

INDEX_SETTINGS: dict[str, Any] = {
    "searchableAttributes": [
        "title", "filename", "ocr_text", "tags", "correspondent", "sender", "recipient", "document_type",
    ],
    "filterableAttributes": [
        "file_id", "owner_id", "document_type", "language", "tags", "correspondent", "sender",
        "date", "year", "mime_type",
    ],
    "sortableAttributes": ["date", "created_at", "size", "confidence"],
    "faceting": {"maxValuesPerFacet": FACET_LIMIT},
    "pagination": {"maxTotalHits": 100_000},
}  # fmt: skip
# How long a request waits for Meilisearch to apply a write it depends on.
TASK_WAIT_MS = 30_000
DOCUMENTS_PAGE = 1000
CROP_WORDS = 30


def _epoch(day: datetime.date) -> int:
    return calendar.timegm(day.timetuple())


def meili_document(record: IndexedDocument) -> dict[str, Any]:
    return {
        "file_id": record.file_id,
        "owner_id": record.owner_id,
        "title": record.title,
        "filename": record.filename,
        "ocr_text": record.text,
        "tags": list(record.tags),
        "correspondent": record.correspondent,
        "sender": record.sender,
        "recipient": record.recipient,
        "document_type": record.document_type,
        "language": record.language,
        "mime_type": record.mime_type,
        "date": _epoch(record.date),
        "year": record.date.year,
        "size": record.size,
        "confidence": record.confidence,
        "created_at": int(record.created_at.timestamp()),
        "fingerprint": record.fingerprint,
    }


def meili_term(term: Term) -> str:
    text = f'"{term.text}"' if term.is_phrase else term.text
    return f"-{text}" if term.excluded else text


def meili_query(query: ParsedQuery) -> str:
    """The parsed query in Meilisearch's syntax, which matches ours: phrases, ``-``, and a
    prefix on the last word unless the query ends with a space."""
    text = " ".join(meili_term(term) for term in query.terms)
    last = query.terms[-1] if query.terms else None
    return text if last is not None and last.prefix else text + " " if text else ""


def _quoted(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid filter string literal


def meili_filter(
    visibility: Visibility, filters: SearchFilters, tag_tree: TagTree | None = None
) -> list[str]:
    """Filter expressions, all of which must hold (Meilisearch ANDs the list). A tag tree is
    matched by its tags' names, as the index holds them."""
    expressions = []
    if not visibility.all_owners:
        owners = ", ".join(str(owner) for owner in sorted(visibility.owner_ids))
        expressions.append(f"owner_id IN [{owners}]")
    for name in ("document_type", "correspondent", "language", "mime_type"):
        value = getattr(filters, name)
        if value:
            expressions.append(f"{name} = {_quoted(value)}")
    expressions += [f"tags = {_quoted(tag)}" for tag in filters.tags]
    if tag_tree is not None:
        expressions.append(f"tags IN [{', '.join(_quoted(name) for name in tag_tree.names)}]")
    if filters.date_from:
        expressions.append(f"date >= {_epoch(filters.date_from)}")
    if filters.date_to:
        expressions.append(f"date <= {_epoch(filters.date_to)}")
    return expressions


class MeilisearchBackend:
    name = "meilisearch"

    def __init__(self) -> None:
        self.client = meilisearch.Client(
            str(settings.MEILISEARCH_URL), settings.MEILISEARCH_API_KEY, timeout=settings.MEILISEARCH_TIMEOUT
        )
        self.index_name = settings.MEILISEARCH_INDEX_NAME
        self.index_ = self.client.index(self.index_name)

    def _wait(self, task: Any) -> None:
        self.client.wait_for_task(task.task_uid, timeout_in_ms=TASK_WAIT_MS)

    def setup(self) -> None:
        """Create the index if needed and apply the settings; re-applying equal settings is a no-op."""
        self._wait(self.client.create_index(self.index_name, {"primaryKey": "file_id"}))
        self._wait(self.index_.update_settings(INDEX_SETTINGS))

    def index(self, records: Sequence[IndexedDocument]) -> None:
        if records:
            # Asynchronous on purpose: Meilisearch batches additions; the reconcile catches failures.
            self.index_.add_documents([meili_document(record) for record in records], primary_key="file_id")

    def remove(self, file_ids: Sequence[int]) -> None:
        if file_ids:
            ids = ", ".join(str(int(file_id)) for file_id in file_ids)
            self._wait(self.index_.delete_documents(filter=f"file_id IN [{ids}]"))

    def fingerprints(self) -> dict[int, str]:
        found: dict[int, str] = {}
        offset = 0
        while True:
            page = self.index_.get_documents(
                {"fields": ["file_id", "fingerprint"], "limit": DOCUMENTS_PAGE, "offset": offset}
            )
            for document in page.results:
                found[int(document.file_id)] = str(getattr(document, "fingerprint", ""))
            offset += DOCUMENTS_PAGE
            if offset >= page.total:
                return found

    def search(self, request: SearchRequest) -> SearchPage:
        if request.custom_field is not None:
            # The index holds no custom field values yet (docs/search.md): refused, rather
            # than answered as if the filter were not there.
            raise InvalidInput(
                "Filtering by a custom field needs the database search; Meilisearch has no values."
            )
        params: dict[str, Any] = {
            "filter": meili_filter(request.visibility, request.filters, request.tag_tree),
            "page": request.page,
            "hitsPerPage": request.per_page,
            "facets": list(FACET_FIELDS),
            "attributesToRetrieve": ["file_id", "title", "ocr_text"],
            "attributesToHighlight": ["title", "ocr_text"],
            "attributesToCrop": ["ocr_text"],
            "cropLength": CROP_WORDS,
            "highlightPreTag": MARK_START,
            "highlightPostTag": MARK_END,
            # Every word must occur, as in the database search (Meilisearch drops words by default).
            "matchingStrategy": "all",
        }
        if not request.query.required:
            params["sort"] = ["created_at:desc"]  # newest first, as the database search lists
        answer = self.index_.search(meili_query(request.query), params)
        hits = [
            Hit(
                file_id=int(hit["file_id"]),
                formatted={
                    "document_title": marked(hit.get("_formatted", {}).get("title", "")),
                    "ocr_text": marked(hit.get("_formatted", {}).get("ocr_text", "")),
                },
            )
            for hit in answer["hits"]
        ]
        distribution = answer.get("facetDistribution", {})
        facets = {
            name: [
                FacetCount(value, count)
                for value, count in sorted(
                    distribution.get(name, {}).items(), key=lambda item: (-item[1], item[0])
                )[:FACET_LIMIT]
            ]
            for name in FACET_FIELDS
        }
        return SearchPage(hits=hits, total=int(answer.get("totalHits", 0)), facets=facets)
