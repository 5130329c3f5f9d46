"""Routes of the sources' pages, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from docuelevate.bounds import register_id_converter
from sources.pages import sources

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("sources", sources.sources_page, name="sources"),
    path("sources/new", sources.source_new, name="source-new"),
    path("sources/<id:source_id>", sources.source_edit, name="source-edit"),
    path("sources/<id:source_id>/test", sources.source_test_page, name="source-test"),
    path("sources/<id:source_id>/poll", sources.source_poll_page, name="source-poll"),
    path("sources/<id:source_id>/remove", sources.source_remove, name="source-remove"),
]
