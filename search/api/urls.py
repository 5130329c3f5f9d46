"""Routes of the search API under /api/ (CONTRACT.md §3)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from docuelevate.bounds import register_id_converter
from search.api import views

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("search", views.SearchView.as_view(), name="api-search"),
    path("saved-searches", views.SavedSearchListView.as_view(), name="api-saved-searches"),
    path(
        "saved-searches/<id:saved_search_id>", views.SavedSearchDetailView.as_view(), name="api-saved-search"
    ),
]
