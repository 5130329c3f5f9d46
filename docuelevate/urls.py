"""Top-level URL map: each app contributes its own ``urls`` module."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import admin_login
from docuelevate.security import csp_report
from docuelevate.views import favicon

urlpatterns = [
    # Before the admin's own routes: its sign-in is the site's (see admin_login).
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, which a strict CSP allows.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/csp-report", csp_report, name="csp-report"),
    # Browsers ask for /favicon.ico on every site whatever the page links.
    path("favicon.ico", favicon, name="favicon"),
    # Probes, /api/health and /metrics (the probes are answered by ops.middleware first).
    path("", include("ops.urls")),
    path("api/", include("accounts.api.urls")),
    path("api/", include("documents.api.urls")),
    path("api/", include("search.api.urls")),
    path("", include("accounts.page_urls")),
    path("", include("documents.urls")),
    path("", include("search.urls")),
    path("", include("ops.page_urls")),
]

# Under /api/ every error is JSON, like the API's own; elsewhere a page in the site's look.
handler400 = "docuelevate.views.bad_request"
handler403 = "docuelevate.views.permission_denied"
handler404 = "docuelevate.views.page_not_found"
handler500 = "docuelevate.views.server_error"
