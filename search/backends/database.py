"""The built-in search: full text in the application's own database, no extra server.

The shared part lives here: the index bookkeeping (one SearchEntry per document),
visibility and filters as plain ORM filters on the documents, facets, paging and
highlight markup. What differs per engine (how text is stored, matched, ranked and
highlighted) is a small dialect: PostgreSQL full text search or SQLite FTS5.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Value
from django.db.models.functions import ExtractYear
from django.utils import timezone

from documents.models import CustomFieldType, CustomFieldValue, Document, Tag
from documents.organise.filters import with_any_tag
from search.backends.base import (
    FACET_FIELDS,
    FACET_LIMIT,
    CustomFieldFacet,
    FacetCount,
    FacetField,
    Hit,
    SearchFilters,
    SearchPage,
    SearchRequest,
    marked,
)
from search.documents import IndexedDocument
from search.models import SearchEntry
from search.query import ParsedQuery

if TYPE_CHECKING:
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

SNIPPET_CHARS = 240
# How many matches are ranked by relevance at most (see DatabaseBackend._page_ids).
RANK_WINDOW = 1000
# Total and facets in one pass over the matches. ``{matched}`` selects the matched entries
# (document_type, correspondent, tag_ids, year, and for ``{candidates}`` document_id,
# created_at and prominent); ``{tag_ids}`` turns a combination's
# tag_ids into rows with a ``value`` column, which each database spells its own way. Tags
# are counted per combination of tags first: an archive has far fewer combinations than
# documents, and unpacking a JSON list per matched document cost more than all the rest.
COUNTS_SQL = """
WITH matched AS ({matched})
SELECT facet, value, n FROM (
    SELECT facet, value, n, ROW_NUMBER() OVER (PARTITION BY facet ORDER BY n DESC, value) AS position
    FROM (
        SELECT 'document_type' AS facet, document_type AS value, COUNT(*) AS n
            FROM matched WHERE document_type <> '' GROUP BY document_type
        UNION ALL SELECT 'correspondent', correspondent, COUNT(*)
            FROM matched WHERE correspondent <> '' GROUP BY correspondent
        UNION ALL SELECT 'year', CAST(year AS TEXT), COUNT(*)
            FROM matched WHERE year IS NOT NULL GROUP BY year
        UNION ALL SELECT 'tags', tag.name, CAST(SUM(combination.n) AS BIGINT)
            FROM (SELECT tag_ids, COUNT(*) AS n FROM matched GROUP BY tag_ids) AS combination,
                {tag_ids}, {tags} AS tag
            WHERE tag.id = CAST(tag_id.value AS BIGINT)
            GROUP BY tag.name
        UNION ALL SELECT 'total', NULL, COUNT(*) FROM matched{custom_fields}{candidates}
    ) AS counted
) AS ordered
WHERE position <= {limit} OR facet IN ('total', 'newest', 'prominent')
"""
# The values of the SELECT and BOOLEAN custom fields ``{field_ids}`` (of which ``{boolean_ids}``
# are BOOLEAN) that the matched documents have, as facets named ``field:<id>``.
CUSTOM_FIELDS_SQL = """
        UNION ALL SELECT facet, value, COUNT(*) FROM (
            SELECT 'field:' || CAST(field_value.field_id AS TEXT) AS facet,
                CASE WHEN field_value.field_id IN ({boolean_ids})
                    THEN CASE WHEN field_value.value_bool THEN 'true'
                        WHEN NOT field_value.value_bool THEN 'false' END
                    ELSE field_value.value_text END AS value
            FROM matched JOIN {values} AS field_value ON field_value.document_id = matched.document_id
            WHERE field_value.field_id IN ({field_ids})
        ) AS field_values WHERE value IS NOT NULL GROUP BY facet, value"""
# For a search with words: the candidates for ranking (see DatabaseBackend._page_ids) from
# the same pass, so the matches are found once per search, not once per question.
CANDIDATES_SQL = """
        UNION ALL SELECT 'newest', CAST(document_id AS TEXT), 0 FROM (
            SELECT document_id FROM matched ORDER BY created_at DESC, document_id DESC LIMIT {window}
        ) AS newest
        UNION ALL SELECT 'prominent', CAST(document_id AS TEXT), 0 FROM (
            SELECT document_id FROM matched WHERE prominent
            ORDER BY created_at DESC, document_id DESC LIMIT {window}
        ) AS prominent"""
# A few pages of text is what a search needs; PostgreSQL caps a tsvector at 1 MB.
MAX_INDEXED_TEXT = 400_000


class Dialect(Protocol):
    # A FROM item that turns ``matched.tag_ids`` (a JSON list) into rows ``tag_id(value)``.
    tag_ids_table: str

    def write(self, records: Sequence[IndexedDocument]) -> None: ...
    def delete(self, file_ids: Sequence[int]) -> None: ...
    def orphaned_ids(self) -> set[int]: ...
    def match(self, entries: QuerySet[SearchEntry], query: ParsedQuery) -> QuerySet[SearchEntry]: ...
    def counting(self, query: ParsedQuery) -> AbstractContextManager[None]: ...
    def ranked(self, candidate_ids: Sequence[int], query: ParsedQuery) -> list[int]:
        """``candidate_ids`` (matches, at most two RANK_WINDOWs of them) best match first,
        equal ones newest first (the query has words). Reads only the candidates' index
        data, never every match's: this is what keeps ranking flat as the archive grows."""
        ...

    def prominent(self, query: ParsedQuery) -> Q | None:
        """A match whose title, names, tags or type match, where the engine can tell cheaply."""
        ...

    def highlights(self, file_ids: list[int], query: ParsedQuery) -> dict[int, tuple[str, str]]: ...


class YearOfDate(ExtractYear):
    """The year of a date column, for the year facet. A date on SQLite is 'YYYY-MM-DD' text;
    ExtractYear calls a Python function there for each row, which cost four fifths of the
    year facet's time over 5,000 matches. Other databases extract it as usual."""

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _AsSqlType:
        sql, params = compiler.compile(self.lhs)
        return f"CAST(substr({sql}, 1, 4) AS INTEGER)", params


def words_of_filename(filename: str) -> str:
    """``Linn_Sequencer-manual.pdf`` -> ``Linn Sequencer manual pdf``, so its parts are words."""
    return re.sub(r"[\W_]+", " ", filename).strip()


def names_of(record: IndexedDocument) -> str:
    return " ".join(filter(None, (record.correspondent, record.sender, record.recipient)))


# Copied from the record into the entry on every write (see SearchEntry).
ENTRY_FIELDS = [
    "fingerprint",
    "indexed_at",
    "owner_id",
    "document_type",
    "correspondent",
    "language",
    "mime_type",
    "date",
    "created_at",
    "tag_ids",
]


def _entry(record: IndexedDocument, *, indexed_at: datetime.datetime) -> SearchEntry:
    return SearchEntry(
        document_id=record.file_id,
        fingerprint=record.fingerprint,
        indexed_at=indexed_at,
        owner_id=record.owner_id,
        document_type=record.document_type,
        correspondent=record.correspondent,
        language=record.language,
        mime_type=record.mime_type,
        date=record.date,
        created_at=record.created_at,
        tag_ids=list(record.tag_ids),
    )


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
            [_entry(record, indexed_at=now) for record in records],
            update_conflicts=True,
            unique_fields=["document"],
            update_fields=ENTRY_FIELDS,
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
        entries = SearchEntry.objects.all()
        if not request.visibility.all_owners:
            entries = entries.filter(owner_id__in=sorted(request.visibility.owner_ids))
        matched = self.dialect.match(_filtered(entries, request), request.query)
        with self.dialect.counting(request.query):
            counted = _counts(matched, self.dialect, request.query, request.facet_fields)
            total, facets = counted.total, counted.facets
            custom_facets = [
                CustomFieldFacet(field=field, values=counted.custom.get(field.id, []))
                for field in request.facet_fields
            ]
            offset = (request.page - 1) * request.per_page
            page_ids = (
                self._page_ids(matched, request.query, counted, offset=offset, limit=request.per_page)
                if total
                else []
            )
        highlights = self.dialect.highlights(page_ids, request.query) if page_ids else {}
        hits = [
            Hit(file_id=file_id, formatted={"document_title": marked(title), "ocr_text": marked(text)})
            for file_id in page_ids
            for title, text in [highlights.get(file_id, ("", ""))]
        ]
        return SearchPage(hits=hits, total=total, facets=facets, custom_facets=custom_facets)

    def _page_ids(
        self, matched: QuerySet[SearchEntry], query: ParsedQuery, counted: Counted, *, offset: int, limit: int
    ) -> list[int]:
        """The ids of one page: best matches first, or newest first without words.

        Relevance is computed for at most RANK_WINDOW matches at a time, because ranking
        reads each match's whole vector: when more match, the candidates are the newest
        RANK_WINDOW matches and the newest RANK_WINDOW whose title, names, tags or type
        match; they come first, best first, and the other matches follow, newest first.
        So a search stays quick however large the archive, and what users look for in a
        broad search (what the document is about, what came lately) is on the first pages.
        """
        newest = matched.order_by("-created_at", "-document_id")
        if not query.required:
            return _ids(newest[offset : offset + limit])
        # The same statements whether few or many match (when all fit the window, the newest
        # RANK_WINDOW are all of them), so a search costs the same queries at any size.
        candidates = list(dict.fromkeys(counted.newest + counted.prominent))
        # The candidates already match and are visible: the engine ranks them by key.
        ranked = self.dialect.ranked(candidates, query)
        if offset + limit <= len(ranked) or counted.total <= len(ranked):
            return ranked[offset : offset + limit]
        first, last = max(0, offset - len(ranked)), offset + limit - len(ranked)
        rest = _ids(newest.exclude(document_id__in=candidates)[first:last])
        return (ranked[offset:] + rest)[:limit]


def _ids(entries: QuerySet[SearchEntry]) -> list[int]:
    return list(entries.values_list("document_id", flat=True))


def _filtered(entries: QuerySet[SearchEntry], request: SearchRequest) -> QuerySet[SearchEntry]:
    filters: SearchFilters = request.filters
    exact = {
        "document_type": filters.document_type,
        "correspondent": filters.correspondent,
        "language": filters.language,
        "mime_type": filters.mime_type,
    }
    entries = entries.filter(**{name: value for name, value in exact.items() if value})
    for tag in filters.tags:
        tagged = Document.tags.through.objects.filter(tag__name=tag).values("document_id")
        entries = entries.filter(document_id__in=tagged)
    if filters.date_from:
        entries = entries.filter(date__gte=filters.date_from)
    if filters.date_to:
        entries = entries.filter(date__lte=filters.date_to)
    if request.tag_tree is not None:
        entries = with_any_tag(entries, list(request.tag_tree.ids), document_key="document_id")
    if request.custom_field is not None:
        entries = request.custom_field.apply(entries, document_key="document_id")
    return entries


Facets = dict[str, list[FacetCount]]


@dataclass(frozen=True)
class Counted:
    """What one pass over the matches tells: the total, the facets and, for a search with
    words, the candidates for ranking (the newest matches, the newest prominent ones)."""

    total: int
    facets: Facets
    custom: dict[int, list[FacetCount]] = field(default_factory=dict)  # custom field id -> its values
    newest: list[int] = field(default_factory=list)
    prominent: list[int] = field(default_factory=list)


def _counts(
    matched: QuerySet[SearchEntry], dialect: Dialect, query: ParsedQuery, facet_fields: Sequence[FacetField]
) -> Counted:
    """The total and the facets (most frequent first) over everything matched, the custom
    fields' facets and the candidates for ranking, in one statement that reads the matches
    once; only matched (so visible) documents count, exactly however many there are."""
    rows = matched.order_by()
    fields = ["document_type", "correspondent", "tag_ids", "document_id"]
    candidates = custom_fields = ""
    if facet_fields:
        booleans = [field.id for field in facet_fields if field.data_type == CustomFieldType.BOOLEAN]
        custom_fields = CUSTOM_FIELDS_SQL.format(
            values=CustomFieldValue._meta.db_table,
            # Ids from the database, integers: safe to write into the statement.
            field_ids=", ".join(str(int(field.id)) for field in facet_fields),
            boolean_ids=", ".join(str(int(pk)) for pk in booleans) or "NULL",
        )
    if query.required:
        condition = dialect.prominent(query)
        prominent = ExpressionWrapper(
            Value(False) if condition is None else condition, output_field=BooleanField()
        )
        rows = rows.annotate(prominent=prominent)
        fields += ["created_at", "prominent"]
        candidates = CANDIDATES_SQL.format(window=RANK_WINDOW)
    matched_sql, params = rows.values(*fields, year=YearOfDate("date")).query.sql_with_params()
    statement = COUNTS_SQL.format(
        matched=matched_sql,
        tag_ids=dialect.tag_ids_table,
        tags=Tag._meta.db_table,
        limit=FACET_LIMIT,
        candidates=candidates,
        custom_fields=custom_fields,
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows_counted = cursor.fetchall()
    total = next(count for facet, _, count in rows_counted if facet == "total")
    if not total:
        return Counted(total=0, facets={})
    facets: Facets = {name: [] for name in FACET_FIELDS}
    found: dict[str, list[int]] = {"newest": [], "prominent": []}
    custom: dict[int, list[FacetCount]] = {}
    for facet, value, count in rows_counted:
        if facet in found:
            found[facet].append(int(value))
        elif facet.startswith("field:"):
            custom.setdefault(int(facet.removeprefix("field:")), []).append(FacetCount(str(value), count))
        elif facet != "total":
            facets[facet].append(FacetCount(str(value), count))
    for values in [*facets.values(), *custom.values()]:
        values.sort(key=lambda pair: (-pair[1], pair[0]))
    return Counted(
        total=total, facets=facets, custom=custom, newest=found["newest"], prominent=found["prominent"]
    )
