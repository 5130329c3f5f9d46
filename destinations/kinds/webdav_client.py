"""A small WebDAV client (RFC 4918) over requests: the few methods a delivery needs.

Paths are relative to ``base_url`` (a share's root, ending in ``/``) with ``/`` between
folders; each segment is percent-encoded here, so a name may hold any character. Bodies
stream from file objects, so a large file costs a bounded amount of memory.

Every failure is a ``WebDavError`` whose ``failure`` (and ``status`` for an HTTP answer)
says what happened; callers decide on those, never on the message. Redirects are not
followed: a PUT's body cannot be sent twice, and a redirect must not lead a destination
somewhere it was not configured to go.

``verify`` is given with every request, not set on a session: requests lets
REQUESTS_CA_BUNDLE from the environment override a session's setting, never a request's.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

import requests

DAV = "DAV:"
# Nextcloud and ownCloud keep the checksum a client sent with a file (OC-Checksum) here.
OWNCLOUD = "http://owncloud.org/ns"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0  # seconds of silence; a server may take long to store a large file
# A PROPFIND answer about one resource is a few hundred bytes; anything far larger is refused.
MAX_ANSWER_BYTES = 1024 * 1024
# A folder's listing (PROPFIND depth 1) holds a few hundred bytes per entry: ~100,000 entries.
MAX_LISTING_BYTES = 32 * 1024 * 1024
READ_BLOCK = 256 * 1024


class WebDavFailure(enum.StrEnum):
    """Why a request failed, for the caller to decide on."""

    UNREACHABLE = "unreachable"  # no connection, or it broke off
    TIMEOUT = "timeout"  # no answer in time
    TLS = "tls"  # the server's certificate is not trusted (for its host name)
    HTTP_STATUS = "http_status"  # an answer other than the method's success; see ``status``
    REDIRECTED = "redirected"  # a 3xx answer: the URL is not the share's own
    BAD_ANSWER = "bad_answer"  # a 207 that is not a readable multistatus


class WebDavError(Exception):
    """A request failed; ``message`` names the method and path, never a credential."""

    def __init__(self, message: str, *, failure: WebDavFailure, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failure = failure
        self.status = status


@dataclass(frozen=True)
class Property:
    """A property by its XML namespace and name (``{namespace}name`` in ElementTree)."""

    namespace: str
    name: str

    @property
    def tag(self) -> str:
        return f"{{{self.namespace}}}{self.name}"


@dataclass(frozen=True)
class Resource:
    """What PROPFIND told about one path: a folder or a file with its size and ETag, and
    the text of each other property asked for that the server has."""

    is_folder: bool
    size: int
    etag: str
    properties: Mapping[str, str]  # by Property.tag


class WebDavClient:
    """Speaks WebDAV to one share as one user (basic auth when ``username`` is given)."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str = "",
        password: str = "",
        verify: bool | str = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else f"{base_url}/"
        self.verify = verify  # True, False, or a CA bundle file trusted instead of the system's
        self.timeout = (connect_timeout, read_timeout)
        self._auth = (username, password) if username else None
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"<WebDavClient {self.base_url}>"

    def url(self, path: str, *, folder: bool = False) -> str:
        """The absolute URL of ``path`` below the share."""
        encoded = "/".join(quote(part, safe="") for part in path.split("/") if part)
        if folder and encoded:
            encoded += "/"
        return f"{self.base_url}{encoded}"

    # --- Methods ----------------------------------------------------------------------------

    def stat(self, path: str, extra: tuple[Property, ...] = ()) -> Resource | None:
        """PROPFIND (depth 0) ``path``: what is there, or None when nothing is."""
        body = _propfind_body((Property(DAV, "getcontentlength"), Property(DAV, "getetag"), *extra))
        answer = self._request(
            "PROPFIND",
            path,
            data=body,
            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            expected=(207, 404),
        )
        if answer.status_code == 404:
            _read_capped(answer)
            return None
        return _resource(_read_capped(answer), path=path, extra=extra)

    def put(self, path: str, body: BinaryIO, *, headers: Mapping[str, str] | None = None) -> None:
        """PUT ``body`` (streamed from the file object, with its length) at ``path``."""
        answer = self._request("PUT", path, data=body, headers=dict(headers or {}), expected=(200, 201, 204))
        _read_capped(answer)

    def set_property(self, path: str, prop: Property, value: str) -> bool:
        """PROPPATCH one dead property; whether the server kept it. A server that keeps no
        properties of clients (405, 501) or refuses this one (403, 409) answers False."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:propertyupdate xmlns:d="DAV:" xmlns:p="{_escape(prop.namespace)}">'
            f"<d:set><d:prop><p:{prop.name}>{_escape(value)}</p:{prop.name}></d:prop></d:set>"
            "</d:propertyupdate>"
        )
        answer = self._request(
            "PROPPATCH",
            path,
            data=body.encode(),
            headers={"Content-Type": "application/xml; charset=utf-8"},
            expected=(200, 207, 400, 403, 405, 409, 422, 501),
        )
        if answer.status_code != 207:
            _read_capped(answer)
            return answer.status_code == 200
        statuses = [
            _status_code(element.text or "")
            for element in _parse(_read_capped(answer), path=path).iter(f"{{{DAV}}}status")
        ]
        return bool(statuses) and all(status == 200 for status in statuses)

    def move(self, source: str, target: str, *, overwrite: bool) -> None:
        """MOVE ``source`` to ``target``: one rename on the server, so ``target`` never
        shows a half file."""
        answer = self._request(
            "MOVE",
            source,
            headers={"Destination": self.url(target), "Overwrite": "T" if overwrite else "F"},
            expected=(201, 204),
        )
        _read_capped(answer)

    def delete(self, path: str) -> None:
        """DELETE ``path``; nothing there is fine."""
        _read_capped(self._request("DELETE", path, expected=(200, 202, 204, 404)))

    def make_folders(self, folder: str) -> None:
        """Make ``folder`` and every missing folder above it (MKCOL, level by level)."""
        if not folder or self.stat(folder) is not None:
            return
        parts = [part for part in folder.split("/") if part]
        for depth in range(1, len(parts) + 1):
            # 405: there already (made by someone else meanwhile, or an upper level that existed).
            answer = self._request("MKCOL", "/".join(parts[:depth]), folder=True, expected=(200, 201, 405))
            _read_capped(answer)

    def children(self, folder: str, extra: tuple[Property, ...] = ()) -> list[tuple[str, Resource]]:
        """PROPFIND (depth 1) ``folder``: each entry in it with its path below the share;
        the folder itself is left out."""
        body = _propfind_body((Property(DAV, "getcontentlength"), Property(DAV, "getetag"), *extra))
        answer = self._request(
            "PROPFIND",
            folder,
            folder=True,
            data=body,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            expected=(207,),
        )
        root = _parse(_read_capped(answer, limit=MAX_LISTING_BYTES), path=folder)
        share_path = unquote(urlsplit(self.base_url).path)
        own = folder.strip("/")
        found: list[tuple[str, Resource]] = []
        for response in root.iter(f"{{{DAV}}}response"):
            href = unquote(urlsplit(response.findtext(f"{{{DAV}}}href", default="")).path)
            if not href.startswith(share_path):
                continue  # not below the share: nothing this client can name
            path = href[len(share_path) :].strip("/")
            if path == own:
                continue
            found.append((path, _resource_of(response, extra=extra)))
        return found

    def get(self, path: str) -> Iterator[bytes]:
        """GET ``path``, its body a block at a time as it arrives."""
        answer = self._request("GET", path, expected=(200,))
        with answer:
            try:
                yield from answer.iter_content(READ_BLOCK)
            except requests.exceptions.RequestException as exc:
                raise WebDavError(
                    f"GET /{path}: the answer broke off ({exc.__class__.__name__})",
                    failure=WebDavFailure.UNREACHABLE,
                ) from None

    def close(self) -> None:
        self._session.close()

    # --- Transport --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        expected: tuple[int, ...],
        folder: bool = False,
        data: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        shown = f"{method} /{path}"
        try:
            answer = self._session.request(
                method,
                self.url(path, folder=folder),
                data=data,
                headers=headers,
                auth=self._auth,
                verify=self.verify,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,  # the body is read only where it is wanted, and capped
            )
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc, shown) from None
        if answer.status_code in expected:
            return answer
        answer.close()
        if 300 <= answer.status_code < 400:
            raise WebDavError(
                f"{shown}: redirected ({answer.status_code})",
                failure=WebDavFailure.REDIRECTED,
                status=answer.status_code,
            )
        raise WebDavError(
            f"{shown}: {answer.status_code} {answer.reason}",
            failure=WebDavFailure.HTTP_STATUS,
            status=answer.status_code,
        )


def _transport_error(exc: requests.exceptions.RequestException, shown: str) -> WebDavError:
    # A certificate the client does not trust will not change by itself; a TLS handshake
    # cut short (a server restarting) is a connection that broke, like any other.
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return WebDavError(f"{shown}: the server's certificate is not trusted", failure=WebDavFailure.TLS)
    if isinstance(exc, requests.exceptions.Timeout):
        return WebDavError(f"{shown}: no answer in time", failure=WebDavFailure.TIMEOUT)
    return WebDavError(
        f"{shown}: the connection failed ({exc.__class__.__name__})", failure=WebDavFailure.UNREACHABLE
    )


def _propfind_body(properties: tuple[Property, ...]) -> bytes:
    namespaces = {DAV: "d"}
    for prop in properties:
        namespaces.setdefault(prop.namespace, f"n{len(namespaces)}")
    declarations = " ".join(f'xmlns:{prefix}="{_escape(uri)}"' for uri, prefix in namespaces.items())
    asked = "".join(f"<{namespaces[prop.namespace]}:{prop.name}/>" for prop in properties)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:propfind {declarations}>'
        f"<d:prop><d:resourcetype/>{asked}</d:prop></d:propfind>"
    ).encode()


def _read_capped(answer: requests.Response, *, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The answer's body (an error page, a multistatus), read to its end so the connection
    can serve the next request, and refused past MAX_ANSWER_BYTES."""
    content = b""
    with answer:
        try:
            for chunk in answer.iter_content(64 * 1024):
                content += chunk
                if len(content) > limit:
                    raise WebDavError(
                        f"{answer.request.method}: the answer is larger than {limit} bytes",
                        failure=WebDavFailure.BAD_ANSWER,
                        status=answer.status_code,
                    )
        except requests.exceptions.RequestException as exc:
            raise WebDavError(
                f"{answer.request.method}: the answer broke off ({exc.__class__.__name__})",
                failure=WebDavFailure.UNREACHABLE,
            ) from None
    return content


def _status_code(status_line: str) -> int:
    """The code of a multistatus ``<status>`` (``HTTP/1.1 200 OK``); 0 when there is none."""
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _parse(content: bytes, *, path: str) -> ElementTree.Element:
    try:
        # The server is not trusted: expat (2.4 and later) limits entity expansion, ElementTree
        # never fetches external entities, and the answer is capped above.
        return ElementTree.fromstring(content)  # noqa: S314
    except ElementTree.ParseError:
        raise WebDavError(
            f"PROPFIND /{path}: the answer is not XML", failure=WebDavFailure.BAD_ANSWER
        ) from None


def _resource(content: bytes, *, path: str, extra: tuple[Property, ...]) -> Resource:
    """The first response of a multistatus: its properties found (status 200)."""
    response = _parse(content, path=path).find(f"{{{DAV}}}response")
    if response is None:
        raise WebDavError(f"PROPFIND /{path}: no response in the answer", failure=WebDavFailure.BAD_ANSWER)
    return _resource_of(response, extra=extra)


def _resource_of(response: ElementTree.Element, *, extra: tuple[Property, ...]) -> Resource:
    """One ``<response>`` of a multistatus: its properties found (status 200)."""
    found: dict[str, ElementTree.Element] = {}
    for propstat in response.iter(f"{{{DAV}}}propstat"):
        prop = propstat.find(f"{{{DAV}}}prop")
        if prop is None or _status_code(propstat.findtext(f"{{{DAV}}}status", default="")) != 200:
            continue
        for element in prop:
            found[element.tag] = element
    kind = found.get(f"{{{DAV}}}resourcetype")
    is_folder = kind is not None and kind.find(f"{{{DAV}}}collection") is not None
    length = _text(found[f"{{{DAV}}}getcontentlength"]) if f"{{{DAV}}}getcontentlength" in found else ""
    etag = _text(found[f"{{{DAV}}}getetag"]) if f"{{{DAV}}}getetag" in found else ""
    return Resource(
        is_folder=is_folder,
        size=int(length) if length.isdigit() else 0,
        etag=normalised_etag(etag),
        properties={prop.tag: _text(found[prop.tag]) for prop in extra if prop.tag in found},
    )


def _text(element: ElementTree.Element) -> str:
    """All the text inside ``element``, its children's separated by spaces (Nextcloud
    lists checksums as ``<oc:checksum>`` children)."""
    return " ".join(part.strip() for part in element.itertext() if part.strip())


def normalised_etag(etag: str) -> str:
    """An ETag without its quotes and weak marker, as servers give it in headers and in PROPFIND alike."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is among the exceptions behind ``exc`` (requests wraps urllib3's,
    which wraps the ssl module's in its ``reason``)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        pending.extend(current.args)
        pending.extend((current.__cause__, current.__context__, getattr(current, "reason", None)))
    return False


def host_of(url: str) -> str:
    """The host name in ``url`` (for messages: never the user name or password)."""
    return urlsplit(url).hostname or url
