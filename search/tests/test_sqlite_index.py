"""The SQLite FTS5 index keeps its writes cheap as it grows, whatever ANALYZE saw earlier.

An ANALYZE while the index was nearly empty (a new installation, a maintenance run) left
statistics saying FTS5's page table has two rows; SQLite then answered FTS5's own "drop
these merged pages" statement by scanning the whole page table, so each write cost time
in proportion to the archive. CI runs these on SQLite (the fast set); PostgreSQL has no
FTS5.
"""

from __future__ import annotations

import pytest
from django.db import connection

from search.services import index_documents

pytestmark = pytest.mark.django_db

# FTS5's statement that drops the pages of merged segments (fts5_index.c), as it runs it.
FTS5_PAGE_RANGE_DELETE = "DELETE FROM 'main'.'search_fts_data' WHERE id>=? AND id<=?"


@pytest.fixture(autouse=True)
def _sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("FTS5 is SQLite's; the PostgreSQL index is a GIN index on the entries")


def page_range_delete_plan() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {FTS5_PAGE_RANGE_DELETE}", [1, 2])
        return " ".join(row[-1] for row in cursor.fetchall())


def fts_statistics() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tbl, stat FROM sqlite_stat1 WHERE tbl LIKE 'search_fts%'")
        return {table: int(stat.split()[0]) for table, stat in cursor.fetchall()}


def test_statistics_of_an_empty_index_stop_misleading_sqlite_once_documents_are_indexed(make_document):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    assert "SCAN" in page_range_delete_plan(), "the stale statistics this guards against"

    documents = [make_document(index=False, ocr_text=f"invoice number {n}") for n in range(3)]
    index_documents(document_ids=[document.pk for document in documents])

    assert fts_statistics()["search_fts_docsize"] == 3
    assert "USING INTEGER PRIMARY KEY" in page_range_delete_plan()


def test_current_statistics_are_left_as_they_are(make_document):
    documents = [make_document(index=False, ocr_text=f"invoice number {n}") for n in range(4)]
    index_documents(document_ids=[document.pk for document in documents[:3]])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    index_documents(document_ids=[documents[3].pk])

    assert fts_statistics()["search_fts_docsize"] == 3  # not doubled since: not analyzed again
    assert "USING INTEGER PRIMARY KEY" in page_range_delete_plan()


def test_an_index_never_analyzed_gets_no_statistics(make_document):
    make_document(ocr_text="invoice")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert cursor.fetchone() == (0,)
