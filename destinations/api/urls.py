"""Routes of the destinations API under /api/ (CONTRACT.md §3)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from destinations.api import views
from docuelevate.bounds import register_id_converter

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("destinations", views.DestinationListView.as_view(), name="api-destinations"),
    path("destinations/<id:destination_id>", views.DestinationDetailView.as_view(), name="api-destination"),
    path(
        "destinations/<id:destination_id>/test",
        views.DestinationTestView.as_view(),
        name="api-destination-test",
    ),
]
