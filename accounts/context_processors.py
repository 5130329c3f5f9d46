"""Template context for the sign-in links in the page header and on the login page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest


def sign_in_options(request: HttpRequest) -> dict[str, object]:
    return {
        "auth_enabled": settings.AUTH_ENABLED,
        "local_signup_allowed": settings.ALLOW_LOCAL_SIGNUP,
        "oidc_enabled": settings.OIDC_ENABLED,
        "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
    }
