"""Routes of the sources API under /api/ (CONTRACT.md §3)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from docuelevate.bounds import register_id_converter
from sources.api import views

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("sources", views.SourceListView.as_view(), name="api-sources"),
    path("sources/<id:source_id>", views.SourceDetailView.as_view(), name="api-source"),
    path("sources/<id:source_id>/test", views.SourceTestView.as_view(), name="api-source-test"),
    path("sources/<id:source_id>/poll", views.SourcePollView.as_view(), name="api-source-poll"),
]
