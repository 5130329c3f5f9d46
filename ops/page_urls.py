"""Pages of the ops app (its API routes are in ``ops.urls``)."""

from __future__ import annotations

from django.urls import path

from docuelevate.bounds import register_id_converter
from ops import status

register_id_converter()

urlpatterns = [
    path("status", status.status_page, name="status"),
    path("status/documents/<id:document_id>/retry", status.status_retry, name="status-retry"),
]
