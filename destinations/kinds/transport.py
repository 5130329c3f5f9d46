"""HTTP for the cloud-drive kinds' SDKs, and the one place their hosts can be pointed elsewhere.

The SDKs write their https hosts themselves: Dropbox's reads them from the environment
when it is imported, Google's builds upload URLs from its bundled discovery document,
MSAL from its authority, and Microsoft Graph's upload sessions answer with URLs on yet
other hosts. So every kind takes its transport (a requests session, or an httplib2 ``Http``
for Google) as a constructor argument, built here: with a timeout on every request and,
only when ``settings.CLOUD_API_ROUTES`` says so, requests for a provider's origin sent to
another base URL instead, the Host header still naming the provider as it would on the
wire. Production leaves the routes empty; tests point the providers at a local server
that replays recorded exchanges (``documents/tests/http_replay.py``).

Throttling is decided here too, the same way for the three: a short ``Retry-After`` is
waited for in place (a few times at most), a long one becomes a temporary failure and the
delivery is retried later.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httplib2
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

# Seconds for one request (connecting, and each wait for data); a chunk of an upload is one.
DEFAULT_TIMEOUT = 60.0
# Throttled requests waited for in place before the delivery is left to its own retries.
THROTTLE_RETRIES = 2
MAX_THROTTLE_WAIT = 30.0


def routed(url: str, routes: Mapping[str, str]) -> str:
    """``url`` with its origin replaced by the base URL ``routes`` gives it, if any."""
    for origin, base in routes.items():
        origin = origin.rstrip("/")
        if url == origin or url.startswith(origin + "/") or url.startswith(origin + "?"):
            return base.rstrip("/") + url[len(origin) :]
    return url


class _RoutingAdapter(HTTPAdapter):
    def __init__(self, routes: Mapping[str, str]) -> None:
        super().__init__()
        self.routes = dict(routes)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        target = routed(url, self.routes)
        if target != url:
            request.headers["Host"] = urlsplit(url).netloc
            request.url = target
        return super().send(request, *args, **kwargs)


class ProviderSession(requests.Session):
    """A requests session whose every request has a timeout, and whose routed origins go
    elsewhere (see the module's docstring)."""

    def __init__(self, routes: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout
        if routes:
            adapter = _RoutingAdapter(routes)
            self.mount("https://", adapter)
            self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


class ProviderHttp(httplib2.Http):  # type: ignore[misc]  # httplib2 ships no types
    """httplib2's ``Http`` (what Google's client library speaks) with routed origins."""

    def __init__(self, routes: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.routes = dict(routes or {})
        # 308 is Google's "resume incomplete" in a resumable upload, not a redirect to follow
        # (as googleapiclient's own build_http sets it).
        self.redirect_codes: frozenset[int] = frozenset(httplib2.REDIRECT_CODES) - {308}

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
        connection_type: Any = None,
    ) -> Any:
        target = routed(uri, self.routes)
        if target != uri:
            headers = {**(headers or {}), "host": urlsplit(uri).netloc}
        return super().request(target, method, body, headers, redirections, connection_type)


def provider_session(*, timeout: float = DEFAULT_TIMEOUT) -> ProviderSession:
    """A session for the cloud providers' APIs, routed as ``settings.CLOUD_API_ROUTES`` says."""
    return ProviderSession(settings.CLOUD_API_ROUTES, timeout=timeout)


def provider_http(*, timeout: float = DEFAULT_TIMEOUT) -> ProviderHttp:
    """An httplib2 ``Http`` for Google's APIs, routed as ``settings.CLOUD_API_ROUTES`` says."""
    return ProviderHttp(settings.CLOUD_API_ROUTES, timeout=timeout)


def throttle_wait(retry_after: str | float | None, *, attempt: int) -> float | None:
    """Seconds to wait before asking again after being throttled (a 429, or a 503 with
    ``Retry-After``), ``attempt`` counting from 0; None when the delivery should rather be
    retried later: attempts used up, or the server asks for more than MAX_THROTTLE_WAIT.

    ``retry_after`` is the server's answer (seconds, or an HTTP date); without one, 1 s and
    then 2 s.
    """
    if attempt >= THROTTLE_RETRIES:
        return None
    wait = _seconds(retry_after)
    if wait is None:
        wait = float(2**attempt)
    return wait if wait <= MAX_THROTTLE_WAIT else None


def _seconds(retry_after: str | float | None) -> float | None:
    if retry_after is None or retry_after == "":
        return None
    if isinstance(retry_after, int | float):
        return max(0.0, float(retry_after))
    text = retry_after.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
