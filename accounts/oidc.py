"""Single sign-on with an OpenID Connect provider (Authentik, Keycloak, Entra ID, Google ...).

mozilla-django-oidc does the protocol (authorization code flow with PKCE, token and
signature checks); this module adds what it leaves to the project:

- endpoints from the provider's discovery document (``OIDC_OP_DISCOVERY_URL``), fetched
  on the first sign-in and cached, so start-up never waits on the provider and a provider
  that is down breaks only single sign-on, with a message, not the site;
- users matched by the provider's subject (then by verified email, once), created on first
  sign-in, and kept in step with the provider, including ``ADMIN_GROUP_NAME`` → staff.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.models import User
from accounts.services import user_sync_from_identity_provider

logger = logging.getLogger(__name__)

# Our setting name -> the discovery document's key (OpenID Connect Discovery 1.0 §3).
DISCOVERED_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
# Providers rotate keys and move endpoints rarely; an hour keeps a long-running process current.
DISCOVERY_CACHE_SECONDS = 3600

_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


class ProviderUnavailable(Exception):
    """The identity provider's discovery document could not be fetched or read."""


def discovery_document(url: str) -> dict[str, Any]:
    """The provider's metadata, fetched at most once an hour per process."""
    with _discovery_lock:
        cached = _discovery_cache.get(url)
        if cached and time.monotonic() - cached[0] < DISCOVERY_CACHE_SECONDS:
            return cached[1]
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"cannot read the discovery document at {url}: {exc}") from exc
    missing = [key for key in DISCOVERED_ENDPOINTS.values() if not isinstance(document.get(key), str)]
    if missing:
        raise ProviderUnavailable(f"the discovery document at {url} lacks {', '.join(missing)}")
    with _discovery_lock:
        _discovery_cache[url] = (time.monotonic(), document)
    return document


def oidc_setting(name: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting; endpoints not set one by one come from discovery."""
    if name in DISCOVERED_ENDPOINTS and not getattr(settings, name, None) and settings.OIDC_OP_DISCOVERY_URL:
        return discovery_document(settings.OIDC_OP_DISCOVERY_URL)[DISCOVERED_ENDPOINTS[name]]
    return import_from_settings(name, *default)


class OidcBackend(OIDCAuthenticationBackend):  # type: ignore[misc]  # mozilla-django-oidc ships no types
    """Signs in the user the provider vouches for, creating or updating the account."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds a backend for every local login and session lookup; those must not
        # wait on the provider, so the endpoints are looked up only for an OIDC callback.
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        is_callback = request is not None and bool(request.GET.get("code") and request.GET.get("state"))
        if not settings.OIDC_ENABLED or not is_callback:
            return None  # not an OIDC callback (a local login, say)
        try:
            super().__init__()
        except ProviderUnavailable:
            logger.warning("Single sign-on failed: the identity provider is unreachable", exc_info=True)
            return None
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def retrieve_matching_jwk(self, token: str) -> jwt.PyJWK:
        if "kid" in jwt.get_unverified_header(token):
            key: jwt.PyJWK = super().retrieve_matching_jwk(token)
            return key
        # OpenID Connect lets a provider with a single signing key leave the key id out
        # (Core §10.1); then that one key is the only candidate.
        response = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL
        )
        response.raise_for_status()
        signing_keys = [key for key in response.json().get("keys", []) if key.get("use", "sig") == "sig"]
        if len(signing_keys) != 1:
            raise SuspiciousOperation("The ID token names no key and the provider offers several.")
        return jwt.PyJWK(signing_keys[0])

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Some providers put the groups only into the ID token, others only into userinfo.
        userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        return {**payload, **userinfo}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        """The account this subject signed in with before; else, once, the local account with
        the same verified address (which is then bound to the subject)."""
        by_subject = User.objects.filter(oidc_subject=claims["sub"])
        if by_subject.exists():
            return by_subject
        email = claims.get("email")
        # Only an address the provider vouches for may take over an existing account.
        if email and claims.get("email_verified", True) is not False:
            return User.objects.filter(email__iexact=email, oidc_subject="")
        return User.objects.none()

    def create_user(self, claims: dict[str, Any]) -> User:
        return self._sync(None, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return self._sync(user, claims)

    def _sync(self, user: User | None, claims: dict[str, Any]) -> User:
        return user_sync_from_identity_provider(
            user=user,
            subject=str(claims["sub"]),
            email=str(claims.get("email") or ""),
            username_hint=str(claims.get("preferred_username") or claims.get("email") or claims["sub"]),
            display_name=str(claims.get("name") or ""),
            avatar_url=str(claims.get("picture") or ""),
            groups=_groups(claims.get(settings.OIDC_GROUPS_CLAIM)),
        )


def _groups(claim: object) -> list[str] | None:
    """The groups claim as a list of names; None when the provider sent none."""
    if claim is None:
        return None
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, list):
        return [str(group) for group in claim]
    return []


class OidcLoginStartView(OIDCAuthenticationRequestView):  # type: ignore[misc]  # mozilla-django-oidc ships no types
    """Sends the browser to the provider; explains instead of failing when it is down."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the endpoint is looked up per request, in get()

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailable:
            logger.warning("Single sign-on unavailable", exc_info=True)
            provider = settings.OIDC_PROVIDER_NAME
            messages.error(request, f"{provider} cannot be reached right now; try again later.")
            return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL_FAILURE)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        response: HttpResponse = super().get(request)
        return response


class OidcCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]  # mozilla-django-oidc ships no types
    """Completes the sign-in; a refusal or failure lands on the login form with a reason."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        response: HttpResponse = super().get(request)
        return response

    def login_failure(self) -> HttpResponse:
        messages.error(
            self.request,
            f"Sign-in with {settings.OIDC_PROVIDER_NAME} did not complete. "
            "Try again, or ask the operator whether your account may use DocuElevate.",
        )
        response: HttpResponse = super().login_failure()
        return response
