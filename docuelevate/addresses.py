"""Who is on the other end: of a request (``client_ip``), and of a connection a user asks
for (``address_refused``, ``public_host_check``).

A user may name hosts for the server to connect to: a URL to fetch, a destination's
server. None of them may reach what only the server itself can: loopback, private
networks, cloud metadata endpoints. The rule is here once, for the URL fetcher
(``documents/integrations/url_fetcher.py``) and every destination kind's ``clean()``;
networks an operator lists in ``URL_FETCH_ALLOWED_NETWORKS`` are let through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings

from docuelevate.errors import InvalidInput

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata endpoints; most are link-local or private anyway, named here so that a change in
# the classification of an address range can never open them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


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


# --- Where a user may make the server connect ----------------------------------------------


def address_refused(address: IPAddress, *, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """Whether ``address`` is off limits: anything but the public internet and the
    allowed networks, and a cloud metadata address even inside an allowed network."""
    if address in METADATA_ADDRESSES:
        return True
    allowed = tuple(allowed_networks)
    if any(address in network for network in allowed):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (mapped or NAT64) is judged as the IPv4 address.
        if address.ipv4_mapped is not None:
            return address_refused(address.ipv4_mapped, allowed_networks=allowed)
        if address in _NAT64_PREFIX:
            return address_refused(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), allowed_networks=allowed)
    return address.is_multicast or not address.is_global


def host_addresses(host: str, port: int = 0) -> list[str]:
    """Every address ``host`` resolves to (an address stays itself), in the resolver's
    order without repeats; empty when it has none."""
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        resolved = []
    # A zone (fe80::1%eth0) names an interface, not another address.
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in resolved))


class HostRefused(InvalidInput):
    """The host is, or resolves to, an address a user may not make the server reach."""


def public_host_check(host: str, *, port: int = 0, what: str = "The server") -> list[str]:
    """The addresses of ``host``, a server a user gave for the server to connect to, if
    every one of them is public or in ``URL_FETCH_ALLOWED_NETWORKS``.

    Raises HostRefused for a private, loopback, reserved or metadata address among any of
    the host's addresses (not only the first, so no connection can reach one). A name with
    no address passes, with none: connecting to it fails anyway (a destination's delivery
    then fails as a passing failure), and whoever connects checks again first (the kinds
    before every delivery). ``what`` starts the messages.
    """
    host = host.strip().strip("[]")
    if not host:
        raise InvalidInput(f"{what} has no host name.")
    try:
        # International names travel as IDNA (xn--…) in DNS.
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{what}'s host name is not valid.") from None
    addresses = host_addresses(host, port)
    allowed = settings.URL_FETCH_ALLOWED_NETWORKS
    if any(address_refused(ipaddress.ip_address(address), allowed_networks=allowed) for address in addresses):
        raise HostRefused(
            f"{what} ({host}) is at a private, loopback or reserved address; a destination of your own "
            "must be reachable on the internet, unless an operator allows its network "
            "(URL_FETCH_ALLOWED_NETWORKS)."
        )
    return addresses
