"""SQLite FTS5: the text in a virtual table ``search_fts`` whose rowid is the document id.

Porter stemming (English) with diacritics folded; bm25 ranks title above file name,
names and tags, above type, above the text, as PostgreSQL's weights do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from search.backends.base import MARK_END, MARK_START
from search.backends.database import (
    MAX_INDEXED_TEXT,
    SNIPPET_CHARS,
    names_of,
    words_of_filename,
)
from search.documents import IndexedDocument
from search.models import SearchEntry
from search.query import ParsedQuery, Term

# Column weights for bm25, in the table's column order: title, filename, names, tags, kind, body.
BM25 = "bm25(search_fts, 10.0, 5.0, 4.0, 4.0, 2.0, 1.0)"
MATCHING_IDS = "SELECT rowid FROM search_fts WHERE search_fts MATCH %s"
HEAD_COLUMNS = ("title", "filename", "names", "tags", "kind")
# The tables FTS5 keeps the index in; ``search_fts_docsize`` has one row per document.
FTS_SHADOW_TABLES = ("data", "idx", "content", "docsize", "config")


def fts_term(term: Term) -> str:
    """One term in FTS5 syntax; words are ``\\w+`` (see search.query), so quoting is safe."""
    quoted = '"' + " ".join(term.words) + '"'
    return quoted + "*" if term.prefix else quoted


def fts_query(terms: Sequence[Term]) -> str:
    return " AND ".join(fts_term(term) for term in terms)


def fts_any(terms: Sequence[Term]) -> str:
    return " OR ".join(fts_term(term) for term in terms)


def refresh_stale_statistics(cursor: CursorWrapper) -> None:
    """Planner statistics of the FTS5 tables brought up to date when the index has grown to
    more than twice what they counted (after a write, so they are never more than a batch
    behind).

    FTS5 merges its segments on writes and drops the merged pages with ``DELETE FROM
    search_fts_data WHERE id >= ? AND id <= ?``. Statistics from an ANALYZE of a nearly empty
    index (``search_fts_data`` "2 rows") make SQLite scan the whole table for that instead
    of a rowid range, so every write cost time in proportion to the index: 1.3 s per 1,000
    documents at 1,000, 9 s at 10,000. Without statistics (never analyzed) nothing is done;
    with them, analyzing the five tables again on each doubling costs about two reads of
    the final index over a whole build.
    """
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    if cursor.fetchone() is None:
        return
    tables = [f"search_fts_{name}" for name in FTS_SHADOW_TABLES]
    cursor.execute(
        f"SELECT tbl, stat FROM sqlite_stat1 WHERE tbl IN ({', '.join(['%s'] * len(tables))})",  # noqa: S608  # placeholders only
        tables,
    )
    counted = {table: int(stat.split()[0]) for table, stat in cursor.fetchall()}
    if not counted:
        return
    cursor.execute("SELECT count(*) FROM search_fts_docsize")
    row = cursor.fetchone()
    documents = row[0] if row else 0
    if documents > 2 * counted.get("search_fts_docsize", 0):
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


class SqliteDialect:
    tag_ids_table = "json_each(combination.tag_ids) AS tag_id"

    def write(self, records: Sequence[IndexedDocument]) -> None:
        rows = [
            (
                record.file_id,
                record.title,
                words_of_filename(record.filename),
                names_of(record),
                " ".join(record.tags),
                record.document_type,
                record.text[:MAX_INDEXED_TEXT],
            )
            for record in records
        ]
        with connection.cursor() as cursor:
            cursor.executemany("DELETE FROM search_fts WHERE rowid = %s", [(row[0],) for row in rows])
            cursor.executemany(
                "INSERT INTO search_fts (rowid, title, filename, names, tags, kind, body) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            refresh_stale_statistics(cursor)

    def delete(self, file_ids: Sequence[int]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "DELETE FROM search_fts WHERE rowid = %s", [(file_id,) for file_id in file_ids]
            )
            refresh_stale_statistics(cursor)

    def orphaned_ids(self) -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid FROM search_fts")
            return {row[0] for row in cursor.fetchall()}

    def match(self, entries: QuerySet[SearchEntry], query: ParsedQuery) -> QuerySet[SearchEntry]:
        if query.required:
            match = fts_query(query.required)
            if query.excluded:
                match = f"({match}) NOT ({fts_any(query.excluded)})"
            return entries.filter(document_id__in=RawSQL(MATCHING_IDS, [match]))  # noqa: S611  # parameters only
        if query.excluded:
            excluded = RawSQL(MATCHING_IDS, [fts_any(query.excluded)])  # noqa: S611  # parameters only
            return entries.exclude(document_id__in=excluded)
        return entries

    def counting(self, query: ParsedQuery) -> AbstractContextManager[None]:
        return nullcontext()

    def ranked(self, candidate_ids: Sequence[int], query: ParsedQuery) -> list[int]:
        # FTS5 walks the term's whole doclist once (cheap per match) and bm25 is computed
        # only for the candidates. Asking it for one rowid at a time (``rowid = ?``, also what
        # a plain ``rowid IN`` becomes) restarts the search per candidate: milliseconds each.
        # The unary ``+`` keeps the candidates a filter on the walk, not such a lookup.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT entry.document_id FROM search_fts "  # noqa: S608  # constants only
                f"JOIN {SearchEntry._meta.db_table} AS entry ON entry.document_id = search_fts.rowid "
                "WHERE search_fts MATCH %s AND +search_fts.rowid IN (SELECT value FROM json_each(%s)) "
                f"ORDER BY {BM25}, entry.created_at DESC, entry.document_id DESC",
                [fts_query(query.required), json.dumps(list(candidate_ids))],
            )
            return [row[0] for row in cursor.fetchall()]

    def prominent(self, query: ParsedQuery) -> Q:
        # FTS5 column filter: the words in any column but the text.
        heading = f"{{{' '.join(HEAD_COLUMNS)}}} : ({fts_query(query.required)})"
        return Q(document_id__in=RawSQL(MATCHING_IDS, [heading]))  # noqa: S611  # parameters only

    def highlights(self, file_ids: list[int], query: ParsedQuery) -> dict[int, tuple[str, str]]:
        # As in ranked(): with the unary ``+`` the page's ids filter one walk over the words'
        # entries; a plain ``rowid IN`` searched again per id, each time over every match
        # (442 ms for a page of 20 of 48,580 matches, 36 ms with the ``+``).
        placeholders = ", ".join(["%s"] * len(file_ids))
        with connection.cursor() as cursor:
            if query.required:
                cursor.execute(
                    f"SELECT rowid, highlight(search_fts, 0, %s, %s), "  # noqa: S608  # placeholders only
                    f"snippet(search_fts, 5, %s, %s, ' … ', 24) "
                    f"FROM search_fts WHERE search_fts MATCH %s AND +rowid IN ({placeholders})",
                    [MARK_START, MARK_END, MARK_START, MARK_END, fts_query(query.required), *file_ids],
                )
            else:
                cursor.execute(
                    f"SELECT rowid, title, substr(body, 1, {SNIPPET_CHARS}) "  # noqa: S608  # constants only
                    f"FROM search_fts WHERE rowid IN ({placeholders})",
                    file_ids,
                )
            return {row[0]: (row[1] or "", row[2] or "") for row in cursor.fetchall()}
