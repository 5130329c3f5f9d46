"""Keeping a user's own destination off the server's private network (SSRF).

A destination a user configures makes the worker connect wherever its host points; a
user must not be able to aim it at the machine itself, the internal network or a cloud
metadata address. System-wide destinations (the environment, operators) are exempt.

The rule is the URL fetcher's (``documents/integrations/url_fetcher.py``): every address
the host resolves to must be public or in ``URL_FETCH_ALLOWED_NETWORKS``, and a metadata
address never is. The shared address helper of issue 16 replaces the body of
``refuse_private_host`` once it is in; its callers stay as they are.
"""

from __future__ import annotations

import ipaddress
import socket

from docuelevate.errors import InvalidInput
from documents.integrations.url_fetcher import UrlFetcher


def refuse_private_host(host: str, *, what: str) -> None:
    """InvalidInput when ``host`` resolves to an address a user's destination may not reach.

    A name that does not resolve now passes: connecting will fail, as a temporary failure,
    and the check runs again before every delivery.
    """
    fetcher = UrlFetcher.from_settings()
    try:
        resolved = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    for info in resolved:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if fetcher.address_refused(address):
            raise InvalidInput(
                f"{what} {host} is a private, loopback or reserved address; a destination of your "
                "own must be reachable on the internet."
            )
