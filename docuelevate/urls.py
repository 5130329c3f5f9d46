"""Top-level URL map: each app contributes ``<app>.api.urls`` and ``<app>.pages.urls``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from docuelevate.security import csp_report
from docuelevate.views import favicon

urlpatterns = [
    # Before the admin's own routes: its sign-in is the site's (accounts.pages.sign_in).
    path("", include("accounts.pages.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, which a strict CSP allows.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/csp-report", csp_report, name="csp-report"),
    # Browsers ask for /favicon.ico on every site whatever the page links.
    path("favicon.ico", favicon, name="favicon"),
    # Probes, /api/health and /metrics, at their full paths (the probes are answered by
    # ops.middleware first).
    path("", include("ops.api.urls")),
    path("api/", include("accounts.api.urls")),
    path("api/", include("documents.api.urls")),
    path("api/", include("search.api.urls")),
    path("api/", include("destinations.api.urls")),
    path("api/", include("sources.api.urls")),
    path("", include("documents.pages.urls")),
    path("", include("search.pages.urls")),
    path("", include("ops.pages.urls")),
    path("", include("destinations.pages.urls")),
    path("", include("sources.pages.urls")),
]

# Under /api/ every error is JSON, like the API's own; elsewhere a page in the site's look.
handler400 = "docuelevate.views.bad_request"
handler403 = "docuelevate.views.permission_denied"
handler404 = "docuelevate.views.page_not_found"
handler500 = "docuelevate.views.server_error"
