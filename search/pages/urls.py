"""Routes of the search page, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, path

from search.pages import search

urlpatterns: list[URLPattern] = [
    path("search", search.search_page, name="search"),
    path("search/save", search.save_search, name="search-save"),
]
