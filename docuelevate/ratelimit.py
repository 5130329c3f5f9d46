"""Rate limits per client, counted in a cache that every process shares.

Each request falls into at most one group, and each group has its own budget per client:

- ``auth``: every way in: signing in (allauth's form, the admin's, single sign-on and its
  callback, social logins), signing up, password resets and changes, re-authentication,
  and token creation (API, tokens page, mobile app), which is what a password guesser or a
  token farmer calls (``RATE_LIMIT_AUTH``). One budget for all of them, so a client
  refused on one way in is refused on every other;
- ``upload``: the routes that ingest documents (``RATE_LIMIT_UPLOAD``);
- ``default``: the rest of the API (``RATE_LIMIT_DEFAULT``).

Pages, static files and the probes are not limited. The client is the API token named in
the request (by a digest, so no database lookup happens before the view), else the
signed-in user, else the caller's address. The counting is django-ratelimit's; this
module only decides the group and the client, and answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]  # ships no type hints
from redis.exceptions import RedisError

from docuelevate.addresses import client_ip
from docuelevate.api import retry_after_response
from docuelevate.views import API_PATH_PREFIX, too_many_requests

logger = logging.getLogger(__name__)

AUTH = "auth"
UPLOAD = "upload"
DEFAULT = "default"
RATE_SETTINGS = {AUTH: "RATE_LIMIT_AUTH", UPLOAD: "RATE_LIMIT_UPLOAD", DEFAULT: "RATE_LIMIT_DEFAULT"}

# Routes without their trailing slash: clients call both spellings (accounts/api/urls.py).
# The admin's login only sends browsers on to allauth's (accounts.pages.sign_in.admin_login);
# it is counted all the same, as the password form it used to be.
_AUTH_POSTS = frozenset({"/admin/login", "/api-tokens", "/api/api-tokens", "/api/mobile/generate-token"})
# Every form allauth serves checks a password, a code or a key, or sends mail: login (and by
# code), signup, password reset, change and set, re-authentication, social sign-up. A
# prefix rather than a list, so a form allauth adds in an upgrade is counted from the start.
_AUTH_POST_PREFIX = "/accounts/"
# Signing out must work whatever a client has spent.
_SIGN_OUT = frozenset({"/accounts/logout", "/accounts/oidc/logout"})
# Single sign-on runs on GETs: the start opens a session with the provider, the callback
# trades the provider's code for a sign-in (so one sign-in spends two).
_AUTH_ANY_METHOD = frozenset({"/accounts/oidc/authenticate", "/accounts/oidc/callback"})
# allauth's social providers (Google, Microsoft, GitHub) come back to /accounts/<provider>/login/callback/.
_SOCIAL_CALLBACK = re.compile(r"/accounts/[\w-]+/login/callback")
_UPLOAD_POSTS = frozenset({"/api/ui-upload", "/api/files/upload", "/api/process-url"})
# Orchestrators and Prometheus poll these all the time; a busy API must not fail its probes.
_EXEMPT_PREFIXES = ("/api/diagnostic/healthz/", "/metrics/")

_TOKEN_KEYWORDS = frozenset({"bearer", "token"})  # as accounts.authentication accepts them


def request_group(request: HttpRequest) -> str | None:
    """The budget this request spends from, or None when it is not limited."""
    path = request.path_info
    route = path.rstrip("/")
    if f"{route}/".startswith(_EXEMPT_PREFIXES):
        return None
    is_post = request.method == "POST"
    if route in _AUTH_ANY_METHOD or _SOCIAL_CALLBACK.fullmatch(route):
        return AUTH
    if is_post and (route in _AUTH_POSTS or (route.startswith(_AUTH_POST_PREFIX) and route not in _SIGN_OUT)):
        return AUTH
    if is_post and route in _UPLOAD_POSTS:
        return UPLOAD
    if path.startswith(API_PATH_PREFIX):
        return DEFAULT
    return None


def client_key(request: HttpRequest) -> str:
    """Who is counted: the presented API token, else the signed-in user, else the address.

    A token is counted by its digest, unchecked: checking it costs a database query, and a
    made-up token gains nothing but its own budget of 401 answers. Addresses come from
    ``client_ip``, which trusts X-Forwarded-For only behind the declared proxy.
    """
    if request.path_info.startswith(API_PATH_PREFIX):
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) == 2 and parts[0].lower() in _TOKEN_KEYWORDS:
            return "token:" + hashlib.sha256(parts[1].encode()).hexdigest()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    address = client_ip(request)
    if address is None:
        return "ip:unknown"  # e.g. a Unix socket without SECURE_PROXY: all such callers share one budget
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        # A subscriber holds a whole IPv6 /64; per address, they would have millions of budgets.
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False).network_address}"
    return f"ip:{ip}"


def _usage(request: HttpRequest, group: str) -> dict[str, Any] | None:
    """Count this request in its group; None when the cache could not count it."""
    key = client_key(request)
    try:
        usage: dict[str, Any] | None = get_usage(
            request,
            group=group,
            key=lambda _group, _request: key,
            rate=getattr(settings, RATE_SETTINGS[group]),
            increment=True,
        )
    except (OSError, RedisError) as exc:
        # The limits protect the service; a cache outage must not take it down with them.
        logger.warning("Rate limits not enforced: the cache failed (%s).", exc.__class__.__name__)
        return None
    return usage


class RateLimitMiddleware:
    """Answers 429 with ``Retry-After`` once a client has spent its group's budget.

    Sits right after the authentication middleware, so the session user is known, and
    before any view, so a refused request costs no more than a cache increment.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        group = request_group(request) if settings.RATE_LIMITING_ENABLED else None
        if group is not None:
            usage = _usage(request, group)
            if usage is not None and usage["should_limit"]:
                # Whole seconds until the window resets, at least one: "0" invites a busy loop.
                return too_many_requests(request, retry_after=max(1, int(usage["time_left"])))
        return self.get_response(request)


def document_rate_limits(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every limited operation may answer 429.

    Added here, where the limits are decided, rather than on each view: every route under
    /api/ but the probes spends from a budget.
    """
    too_many = retry_after_response(
        "Too many requests from this client; try again after `Retry-After` seconds."
    )
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PATH_PREFIX) or f"{path.rstrip('/')}/".startswith(_EXEMPT_PREFIXES):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", too_many)
    return result
