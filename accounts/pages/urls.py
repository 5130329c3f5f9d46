"""Routes of the account pages, at the site's root.

``/accounts/`` belongs to allauth, with our login entry in front of its own and the OIDC
routes beside it; ``/admin/login/`` sends the admin's sign-in there too. The root URL map
includes this module before the admin's routes, so that ``/admin/login/`` is ours.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from accounts.pages import sign_in, tokens
from docuelevate.bounds import register_id_converter

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/login/", sign_in.admin_login, name="admin-login"),
    path("accounts/login/", sign_in.login, name="account_login"),
    # The provider's redirect URI is https://<EXTERNAL_HOSTNAME>/accounts/oidc/callback/.
    # Always routed; the views answer 404 while single sign-on is not configured.
    path("accounts/oidc/", include("mozilla_django_oidc.urls")),
    path("accounts/", include("allauth.urls")),
    path("api-tokens", tokens.api_tokens, name="api-tokens"),
    path("api-tokens/<id:token_id>/revoke", tokens.api_token_revoke, name="api-token-revoke"),
]
