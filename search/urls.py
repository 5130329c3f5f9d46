"""Pages of the search app."""

from __future__ import annotations

from django.urls import path

from search import views

urlpatterns = [
    path("search", views.search_page, name="search"),
    path("search/save", views.save_search, name="search-save"),
]
