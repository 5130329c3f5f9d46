"""Pages of the ops app (its API routes are in ``ops.urls``)."""

from __future__ import annotations

from django.urls import path

from ops import status

urlpatterns = [
    path("status", status.status_page, name="status"),
    path("status/documents/<int:document_id>/retry", status.status_retry, name="status-retry"),
]
