"""Upgrading an existing index: the entries written before a migration keep counting right."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.access import Viewer
from search.models import SearchEntry
from search.selectors import search

BEFORE_YEARS = ("search", "0003_entry_search_fields")
WITH_YEARS = ("search", "0004_entry_year_and_tag_text")


def migrate_to(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_entries_indexed_before_the_year_column_get_their_year_and_keep_their_tags(owner, make_document):
    """search 0004: the years facet counts a year column and the tags facet the tag ids as
    text; entries from before it must count in both without being indexed again."""
    make_document(ocr_text="zeppelin", tags=("bills", "home"), document_date=datetime.date(1999, 5, 1))
    make_document(ocr_text="zeppelin", tags=("home",), document_date=datetime.date(2004, 2, 3))
    migrate_to(BEFORE_YEARS)
    try:
        with connection.cursor() as cursor:  # as 0003 left them: a JSON list, no year
            cursor.execute(f"SELECT tag_ids FROM {SearchEntry._meta.db_table}")  # noqa: S608  # constant
            assert len(cursor.fetchall()) == 2
    finally:
        migrate_to(WITH_YEARS)

    assert set(SearchEntry.objects.values_list("year", flat=True)) == {1999, 2004}
    results = search(viewer=Viewer(owner), query="zeppelin ")
    assert dict(results.facets["year"]) == {"1999": 1, "2004": 1}
    assert dict(results.facets["tags"]) == {"home": 2, "bills": 1}
