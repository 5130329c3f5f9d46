"""Fetching a file from a URL a user gave, without letting the URL reach what it must not.

Only http(s), only from hosts whose every address is public or in a network the operator
lists, and never from a cloud metadata address. Every redirect is checked the same way,
and each connection goes to the very address that was checked, so a DNS answer that
changes in between cannot redirect it (DNS rebinding).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.ssl_ import create_urllib3_context

from docuelevate import addresses
from docuelevate.addresses import IPAddress, IPNetwork

# Defaults of a fetcher's limits; the download task's time limits are derived from TOTAL_TIMEOUT.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # seconds of silence from the server
TOTAL_TIMEOUT = 900.0  # for the whole download, so a server trickling bytes cannot hold a worker
MAX_REDIRECTS = 3
CHUNK_SIZE = 1024 * 1024

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchFailure(enum.StrEnum):
    """Why a fetch failed, for the caller to decide on (a timeout is not a refusal)."""

    INVALID_URL = "invalid_url"  # not http(s), no host, a bad port or name, credentials in it
    ADDRESS_REFUSED = "address_refused"  # a private, reserved or cloud metadata address
    UNRESOLVED = "unresolved"  # the host name has no address
    UNREACHABLE = "unreachable"  # no connection could be made
    TIMEOUT = "timeout"  # no answer in time, a server that went silent, a download too long
    TLS = "tls"  # the certificate is not valid for the name in the URL
    HTTP_STATUS = "http_status"  # the server answered, with something other than 2xx
    TOO_MANY_REDIRECTS = "too_many_redirects"
    INTERRUPTED = "interrupted"  # the body broke off


class FetchError(Exception):
    """The URL cannot be fetched; ``message`` is fit to show whoever gave the URL."""

    def __init__(self, message: str, *, kind: FetchFailure, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status  # the server's HTTP status, for HTTP_STATUS


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that may be fetched, with the address that was checked and will be connected to."""

    url: str
    scheme: str
    host: str  # as IDNA, the way it travels in DNS, in Host and in TLS
    port: int
    address: str
    request_path: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"


@dataclass(frozen=True)
class FetchedResponse:
    """A 2xx answer, after redirects: where it came from, what it says of itself, its body."""

    url: str
    host: str
    declared_size: int | None  # the Content-Length, when it is a plain number
    served_name: str | None  # the file name of the Content-Disposition
    _response: urllib3.BaseHTTPResponse
    _deadline: float

    def chunks(self) -> Iterator[bytes]:
        """The body, a chunk at a time; FetchError when it stalls, breaks off or takes too long."""
        try:
            # read1, not stream(): stream() waits for a whole chunk, so a server sending a
            # byte now and then would only meet the deadline once it had sent a megabyte.
            while chunk := self._response.read1(CHUNK_SIZE):
                if time.monotonic() > self._deadline:
                    raise FetchError("The download took too long.", kind=FetchFailure.TIMEOUT)
                yield chunk
        except Urllib3Timeout:
            raise FetchError("The server stopped sending the file.", kind=FetchFailure.TIMEOUT) from None
        except Urllib3Error:
            raise FetchError("The download was interrupted.", kind=FetchFailure.INTERRUPTED) from None


class UrlFetcher:
    """GETs URLs from public addresses and from ``allowed_networks`` only.

    ``ca_bundle`` is a PEM file of certificate authorities trusted for https besides the
    system's (an intranet server's own CA). ``total_timeout`` bounds a whole download,
    redirects and body included; ``read_timeout`` a server's silence.
    """

    def __init__(
        self,
        *,
        allowed_networks: Iterable[IPNetwork] = (),
        ca_bundle: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        user_agent: str = "DocuElevate",
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self.ca_bundle = ca_bundle
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent

    @classmethod
    def from_settings(cls) -> UrlFetcher:
        """The fetcher as configured: URL_FETCH_ALLOWED_NETWORKS, URL_FETCH_CA_BUNDLE."""
        return cls(
            allowed_networks=settings.URL_FETCH_ALLOWED_NETWORKS,
            ca_bundle=settings.URL_FETCH_CA_BUNDLE,
            user_agent=f"DocuElevate/{settings.VERSION}",
        )

    def check(self, url: str) -> CheckedUrl:
        """``url`` with the address to connect to, or FetchError if it may not be fetched.

        Resolves the host: every address it has must be allowed, not only the first, so
        that the connection can never reach a refused one.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in {"http", "https"}:
            raise FetchError("Only http:// and https:// URLs can be fetched.", kind=FetchFailure.INVALID_URL)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise FetchError("The URL has an invalid port.", kind=FetchFailure.INVALID_URL) from None
        if not host:
            raise FetchError("The URL has no host name.", kind=FetchFailure.INVALID_URL)
        try:
            # International names travel as IDNA (xn--…) in DNS, in Host and in TLS.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchError(f"The host name {host} is not valid.", kind=FetchFailure.INVALID_URL) from None
        if parts.username or parts.password:
            raise FetchError(
                "URLs with a user name or password are not supported.", kind=FetchFailure.INVALID_URL
            )
        port = port or (443 if scheme == "https" else 80)
        resolved = addresses.host_addresses(host, port)
        if not resolved:
            raise FetchError(f"The host name {host} could not be resolved.", kind=FetchFailure.UNRESOLVED)
        for address in resolved:
            if self.address_refused(ipaddress.ip_address(address)):
                raise FetchError(
                    f"The URL points to a private or reserved address ({host}); refused.",
                    kind=FetchFailure.ADDRESS_REFUSED,
                )
        path = parts.path or "/"
        return CheckedUrl(
            url=url,
            scheme=scheme,
            host=host,
            port=port,
            address=resolved[0],
            request_path=f"{path}?{parts.query}" if parts.query else path,
        )

    def address_refused(self, address: IPAddress) -> bool:
        """Whether ``address`` is off limits: the rule every connection a user asks for
        follows (``docuelevate.addresses``), with this fetcher's allowed networks."""
        return addresses.address_refused(address, allowed_networks=self.allowed_networks)

    @contextmanager
    def open(self, url: str) -> Iterator[FetchedResponse]:
        """The 2xx answer for ``url``, following at most ``max_redirects`` checked redirects.

        Raises FetchError for a refused URL or redirect, a failed connection, an answer
        other than 2xx, and (from ``chunks``) a body that stalls or outlasts the deadline.
        The connection is closed on leaving, without reading the rest of the body.
        """
        deadline = time.monotonic() + self.total_timeout
        current = url
        for _hop in range(self.max_redirects + 1):
            target = self.check(current)
            pool, response = self._get(target)
            try:
                if response.status in _REDIRECT_STATUSES and response.headers.get("Location"):
                    current = urljoin(target.url, response.headers["Location"])
                    continue
                if not 200 <= response.status < 300:
                    raise FetchError(
                        f"The server answered {response.status} for {target.url}.",
                        kind=FetchFailure.HTTP_STATUS,
                        status=response.status,
                    )
                declared = response.headers.get("Content-Length", "")
                yield FetchedResponse(
                    url=target.url,
                    host=target.host,
                    declared_size=int(declared) if declared.isascii() and declared.isdigit() else None,
                    served_name=content_disposition_name(response.headers.get("Content-Disposition")),
                    _response=response,
                    _deadline=deadline,
                )
                return
            finally:
                # Closed, not drained: after a refusal the rest of the body is of no interest.
                response.close()
                pool.close()
        raise FetchError(
            f"The URL redirected more than {self.max_redirects} times.", kind=FetchFailure.TOO_MANY_REDIRECTS
        )

    def _get(self, target: CheckedUrl) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
        """Send the GET to the checked address, naming the host in Host and for TLS."""
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                target.address,
                target.port,
                timeout=timeout,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ssl_context=self._tls_context,
                # The certificate must be valid for the name in the URL, not for the address.
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
        try:
            response = pool.urlopen(
                "GET",
                target.request_path,
                headers={
                    "Host": target.host_header,
                    "User-Agent": self.user_agent,
                    "Accept": "*/*",
                    "Accept-Encoding": "identity",
                },
                redirect=False,
                retries=False,
                preload_content=False,
            )
        except Urllib3Error as exc:  # every urllib3 failure, timeouts and TLS included
            pool.close()
            raise _connection_error(exc, target.host) from None
        return pool, response

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        """urllib3's own TLS defaults, trusting the system's CAs and ``ca_bundle``'s."""
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        context.load_default_certs()
        if self.ca_bundle:
            context.load_verify_locations(cafile=self.ca_bundle)
        # Names only from the subject alternative names, as urllib3 checks with its own context.
        context.hostname_checks_common_name = False
        return context


def _connection_error(exc: BaseException, host: str) -> FetchError:
    """The error for a connection that failed before any answer came."""
    # Checked before the timeout: urllib3 makes a refused connection a kind of timeout.
    if isinstance(exc, NewConnectionError):
        return FetchError(f"{host} could not be reached.", kind=FetchFailure.UNREACHABLE)
    if isinstance(exc, Urllib3Timeout):
        return FetchError(f"{host} did not answer in time.", kind=FetchFailure.TIMEOUT)
    if isinstance(exc, SSLError):
        return FetchError(f"The TLS certificate of {host} could not be verified.", kind=FetchFailure.TLS)
    return FetchError(f"{host} could not be reached.", kind=FetchFailure.UNREACHABLE)


def content_disposition_name(header: str | None) -> str | None:
    """The file name a Content-Disposition header gives, if any."""
    if not header:
        return None
    # The email package decodes RFC 2231 values (``filename*=UTF-8''...``) into tuples; per
    # RFC 6266 that form wins over a plain ``filename=`` given beside it for old clients.
    message = Message()
    message["Content-Disposition"] = header
    params = message.get_params([], header="content-disposition")
    names = [value for key, value in params if key == "filename"]
    names.sort(key=lambda value: not isinstance(value, tuple))
    return collapse_rfc2231_value(names[0]) if names else None
