"""Search engines behind one interface (``base.SearchBackend``), and the choice between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from search.backends.base import SearchBackend


def search_backend() -> SearchBackend:
    """The engine the settings name: Meilisearch when MEILISEARCH_URL is set, else the database."""
    if settings.MEILISEARCH_URL:
        from search.backends.meilisearch import MeilisearchBackend

        return MeilisearchBackend()
    from search.backends.database import DatabaseBackend

    return DatabaseBackend()
