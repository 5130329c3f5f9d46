"""Pages of the documents app."""

from __future__ import annotations

from django.urls import path

from documents import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
