"""Account pages under /accounts/: allauth's, our login entry, and the OIDC routes."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from accounts import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", views.login, name="account_login"),
    # The provider's redirect URI is https://<EXTERNAL_HOSTNAME>/accounts/oidc/callback/.
    # Always routed; the views answer 404 while single sign-on is not configured.
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("allauth.urls")),
]
