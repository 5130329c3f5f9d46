"""The built-in search: full text in the application's own database, no extra server.

The shared part lives here: the index bookkeeping (one SearchEntry per document),
visibility and filters as plain ORM filters on the documents, facets, paging and
highlight markup. What differs per engine (how text is stored, matched, ranked and
highlighted) is a small dialect: PostgreSQL full text search or SQLite FTS5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet
from django.db.models.functions import Coalesce, ExtractYear, TruncDate
from django.utils import timezone

from documents.models import Document
from search.backends.base import (
    FACET_LIMIT,
    Hit,
    SearchFilters,
    SearchPage,
    SearchRequest,
    marked,
)
from search.documents import INDEXED_STATUSES, IndexedDocument
from search.models import SearchEntry
from search.query import ParsedQuery

SNIPPET_CHARS = 240
# A few pages of text is what a search needs; PostgreSQL caps a tsvector at 1 MB.
MAX_INDEXED_TEXT = 400_000


class Dialect(Protocol):
    def write(self, records: Sequence[IndexedDocument]) -> None: ...
    def delete(self, file_ids: Sequence[int]) -> None: ...
    def orphaned_ids(self) -> set[int]: ...
    def match(self, documents: QuerySet[Document], query: ParsedQuery) -> QuerySet[Document]: ...
    def counting(self, query: ParsedQuery) -> AbstractContextManager[None]: ...
    def rank(self, documents: QuerySet[Document], query: ParsedQuery) -> QuerySet[Document]: ...
    def highlights(self, file_ids: list[int], query: ParsedQuery) -> dict[int, tuple[str, str]]: ...


def words_of_filename(filename: str) -> str:
    """``Linn_Sequencer-manual.pdf`` -> ``Linn Sequencer manual pdf``, so its parts are words."""
    return re.sub(r"[\W_]+", " ", filename).strip()


def names_of(record: IndexedDocument) -> str:
    return " ".join(filter(None, (record.correspondent, record.sender, record.recipient)))


class DatabaseBackend:
    name = "database"

    def __init__(self) -> None:
        self.dialect = self._dialect()

    @staticmethod
    def _dialect() -> Dialect:
        if connection.vendor == "postgresql":
            from search.backends.postgres import PostgresDialect

            return PostgresDialect()
        from search.backends.sqlite import SqliteDialect

        return SqliteDialect()

    def setup(self) -> None:
        """Nothing to do: the migrations create the index structures."""

    @transaction.atomic
    def index(self, records: Sequence[IndexedDocument]) -> None:
        if not records:
            return
        now = timezone.now()
        SearchEntry.objects.bulk_create(
            [SearchEntry(document_id=r.file_id, fingerprint=r.fingerprint, indexed_at=now) for r in records],
            update_conflicts=True,
            unique_fields=["document"],
            update_fields=["fingerprint", "indexed_at"],
        )
        self.dialect.write(records)

    @transaction.atomic
    def remove(self, file_ids: Sequence[int]) -> None:
        SearchEntry.objects.filter(document_id__in=file_ids).delete()
        self.dialect.delete(file_ids)

    def fingerprints(self) -> dict[int, str]:
        indexed = dict(SearchEntry.objects.values_list("document_id", "fingerprint"))
        # Text left behind without bookkeeping (SQLite's FTS rows) counts as orphaned.
        return {**dict.fromkeys(self.dialect.orphaned_ids() - indexed.keys(), ""), **indexed}

    def search(self, request: SearchRequest) -> SearchPage:
        documents = Document.objects.filter(status__in=INDEXED_STATUSES, search_entry__isnull=False)
        if request.owner_ids is not None:
            documents = documents.filter(owner_id__in=request.owner_ids)
        matched = self.dialect.match(_filtered(documents, request.filters), request.query)
        with self.dialect.counting(request.query):
            total = matched.count()
            facets = _facets(matched) if total else {}
        offset = (request.page - 1) * request.per_page
        page_ids = list(
            self.dialect.rank(matched, request.query).values_list("id", flat=True)[
                offset : offset + request.per_page
            ]
        )
        highlights = self.dialect.highlights(page_ids, request.query) if page_ids else {}
        hits = [
            Hit(file_id=file_id, formatted={"document_title": marked(title), "ocr_text": marked(text)})
            for file_id in page_ids
            for title, text in [highlights.get(file_id, ("", ""))]
        ]
        return SearchPage(hits=hits, total=total, facets=facets)


def _with_date(documents: QuerySet[Document]) -> QuerySet[Document]:
    return documents.annotate(search_date=Coalesce("document_date", TruncDate("created_at")))


def _filtered(documents: QuerySet[Document], filters: SearchFilters) -> QuerySet[Document]:
    exact = {
        "document_type": filters.document_type,
        "correspondent": filters.correspondent,
        "language": filters.language,
        "mime_type": filters.mime_type,
    }
    documents = documents.filter(**{name: value for name, value in exact.items() if value})
    for tag in filters.tags:
        documents = documents.filter(tags__name=tag)
    if filters.date_from or filters.date_to:
        bounds = {"search_date__gte": filters.date_from, "search_date__lte": filters.date_to}
        # Keyword names, because the type checker cannot see the annotated search_date.
        documents = _with_date(documents).filter(**{lookup: day for lookup, day in bounds.items() if day})
    return documents


def _facets(matched: QuerySet[Document]) -> dict[str, list[tuple[str, int]]]:
    """Counts over everything matched (not only this page), most frequent first."""
    unordered = matched.order_by()

    # Every join behind ``matched`` is one row per document (the entry, one per tag filter),
    # so a plain count is right, and much cheaper than counting distinct ids.
    def counts(documents: QuerySet[Document], field: str) -> list[tuple[str, int]]:
        rows = documents.values(field).annotate(count=Count("id")).order_by("-count", field)
        return [(str(row[field]), row["count"]) for row in rows[:FACET_LIMIT] if row[field] not in ("", None)]

    # Tags through their link table: a tag filter's join must not narrow the tag counts.
    tag_links = Document.tags.through.objects.filter(document_id__in=unordered.values("id"))
    tags = tag_links.values("tag__name").annotate(count=Count("document_id")).order_by("-count", "tag__name")
    return {
        "document_type": counts(unordered, "document_type"),
        "tags": [(row["tag__name"], row["count"]) for row in tags[:FACET_LIMIT]],
        "correspondent": counts(unordered, "correspondent"),
        "year": counts(_with_date(unordered).annotate(year=ExtractYear(F("search_date"))), "year"),
    }
