"""Who is on the other end of a request."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request


def client_ip(request: HttpRequest | Request) -> str | None:
    """The caller's address, for "last used from"; None when it is not an IP address.

    Behind the reverse proxy (SECURE_PROXY=true) the connection comes from the proxy, which
    appends the real client to X-Forwarded-For; only that last entry is trusted, because
    the client can put anything before it.
    """
    candidate: str = request.META.get("REMOTE_ADDR", "")
    if settings.SECURE_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            candidate = forwarded[-1]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
