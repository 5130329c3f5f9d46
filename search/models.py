"""The database search index's bookkeeping, and saved searches."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone


class SearchEntry(models.Model):
    """One document as the built-in database search indexed it.

    ``fingerprint`` is the document's state at indexing time (see search.documents), so
    ``reindex --check`` can tell a stale entry from a current one without reading the
    text. On PostgreSQL ``vector`` holds the weighted full-text vector behind a GIN index;
    on SQLite the text lives in the FTS5 table ``search_fts`` with the same rowid.
    """

    document = models.OneToOneField(
        "documents.Document", primary_key=True, on_delete=models.CASCADE, related_name="search_entry"
    )
    fingerprint = models.CharField(max_length=64)
    indexed_at = models.DateTimeField(default=timezone.now)
    # What filters, facets and the order need, copied from the document when it is indexed,
    # so a search reads this one narrow table and never the wide documents table (whose
    # rows for tens of thousands of matches cost more than the matching itself).
    owner_id = models.BigIntegerField()
    document_type = models.CharField(max_length=64, blank=True, default="")
    correspondent = models.CharField(max_length=255, blank=True, default="")
    language = models.CharField(max_length=8, blank=True, default="")
    mime_type = models.CharField(max_length=127, blank=True, default="")
    date = models.DateField(null=True)  # the document's own date, else the day it arrived
    # The date's year, for the years facet: counting an integer per match is cheap where
    # taking the year of each match's date was not (bench/search.py).
    year = models.SmallIntegerField(null=True)
    created_at = models.DateTimeField()
    # For the tags facet (filters use the tags table): the ids as a JSON list in text, so
    # the matches are grouped by their tag combination comparing text, cheaper than jsonb.
    tag_ids = models.TextField(default="[]")
    vector = SearchVectorField(null=True)
    # PostgreSQL: the vector without the text (title, names, tags, type), small enough to
    # live in the row; where a word is there, the document is about it (see ranking).
    head = SearchVectorField(null=True)

    class Meta:
        verbose_name_plural = "search entries"
        indexes = [
            models.Index(fields=["owner_id", "-created_at"], name="search_entry_owner_recent"),
            models.Index(fields=["-created_at", "-document"], name="search_entry_recent"),
            models.Index(fields=["document_type"], name="search_entry_type"),
            models.Index(fields=["date"], name="search_entry_date"),
        ]

    def __str__(self) -> str:
        return f"search entry of document {self.document_id}"


class SavedSearch(models.Model):
    """A query and its filters, kept under a name to run again with one click."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=1000, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_search_name_per_owner")]

    def __str__(self) -> str:
        return self.name
