"""Probes, health and metrics (CONTRACT §3); the probes are answered by ops.middleware first.

Included at the site's root rather than under ``api/``: ``/metrics`` is where every
Prometheus looks, outside /api/, and the other paths are written out in full beside it.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from ops.api import views

urlpatterns: list[URLPattern] = [
    path("api/diagnostic/healthz/live", views.healthz_live, name="healthz-live"),
    path("api/diagnostic/healthz/ready", views.healthz_ready, name="healthz-ready"),
    path("api/diagnostic/health", views.HealthView.as_view(), name="health"),
    path("api/health", views.HealthAliasView.as_view(), name="health-short"),
    path("metrics", views.metrics, name="metrics"),
]
