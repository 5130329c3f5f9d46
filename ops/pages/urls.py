"""Routes of the ops pages, at the site's root (its machine endpoints are in ``ops.api.urls``)."""

from __future__ import annotations

from django.urls import URLPattern, path

from docuelevate.bounds import register_id_converter
from ops.pages import status

register_id_converter()

urlpatterns: list[URLPattern] = [
    path("status", status.status_page, name="status"),
    path("status/documents/<id:document_id>/retry", status.status_retry, name="status-retry"),
]
