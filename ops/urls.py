"""Probes, health and metrics (CONTRACT §3); the probes are answered by ops.middleware first."""

from __future__ import annotations

from django.urls import path

from ops import views

urlpatterns = [
    path("api/diagnostic/healthz/live", views.healthz_live, name="healthz-live"),
    path("api/diagnostic/healthz/ready", views.healthz_ready, name="healthz-ready"),
    path("api/diagnostic/health", views.HealthView.as_view(), name="health"),
    path("api/health", views.HealthAliasView.as_view(), name="health-short"),
    path("metrics", views.metrics, name="metrics"),
]
