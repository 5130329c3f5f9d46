"""The Gotenberg client: office files to PDF over HTTP, and the canary that asks whether
Gotenberg reaches the network.

Gotenberg runs LibreOffice in its own container, out of this process's reach: it must sit
on a network without egress (docs/security.md). The converter that uses this client is
``documents/pipeline/converters/gotenberg.py``; the probe is ``ops/probes/conversion.py``.
"""

from __future__ import annotations

import enum
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CONVERT_ROUTE = "/forms/libreoffice/convert"
# After Gotenberg answers, how long a late request from it still counts.
CANARY_GRACE_SECONDS = 1.0
DOWNLOAD_CHUNK = 1024 * 1024


class GotenbergFailure(enum.StrEnum):
    """Why Gotenberg converted nothing, for the caller to decide on."""

    UNREACHABLE = "unreachable"  # no connection, or it broke off
    TIMEOUT = "timeout"  # no answer within the client's timeout
    BUSY = "busy"  # 429 or 5xx: overloaded or failing for now
    REFUSED = "refused"  # another status: it will not convert this file


class GotenbergError(Exception):
    """Gotenberg converted nothing; ``message`` is fit to show a user.

    For UNREACHABLE and TIMEOUT the error of the HTTP library is its ``__cause__``.
    """

    def __init__(self, message: str, *, kind: GotenbergFailure, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status  # Gotenberg's HTTP status, when it answered


class GotenbergClient:
    """Talks to the Gotenberg server at ``base_url``; ``timeout`` is per request, in seconds."""

    def __init__(self, *, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> GotenbergClient:
        """The configured server: GOTENBERG_URL, with CONVERT_TIMEOUT per conversion."""
        if not settings.GOTENBERG_URL:
            raise ImproperlyConfigured("GOTENBERG_URL is not set: office files convert on the workers.")
        return cls(base_url=settings.GOTENBERG_URL, timeout=settings.CONVERT_TIMEOUT)

    def convert(self, *, source: Path, upload_name: str, mime_type: str, destination: Path) -> None:
        """Write to ``destination`` the PDF Gotenberg makes of ``source``; GotenbergError if none.

        ``upload_name`` is the file name Gotenberg sees: its extension picks the import filter.
        """
        try:
            with source.open("rb") as handle:
                response = requests.post(
                    self.base_url + CONVERT_ROUTE,
                    files={"files": (upload_name, handle, mime_type)},
                    timeout=self.timeout,
                    stream=True,
                )
            with response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise GotenbergError(
                        f"Gotenberg answered {response.status_code}.",
                        kind=GotenbergFailure.BUSY,
                        status=response.status_code,
                    )
                if response.status_code != 200:
                    raise GotenbergError(
                        f"Gotenberg could not convert the file (HTTP {response.status_code}).",
                        kind=GotenbergFailure.REFUSED,
                        status=response.status_code,
                    )
                with destination.open("wb") as output:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        output.write(chunk)
        except requests.RequestException as exc:
            raise _unreachable(exc) from exc

    def loads_references(self) -> bool:
        """Whether Gotenberg loads what a document references, asked with a canary document.

        The canary is an HTML page referencing a listener opened here, on the address this
        host uses to reach Gotenberg. A Gotenberg that can reach this host can reach others
        (metadata services, internal servers); one on a network without egress reaches
        nothing. Raises GotenbergError when Gotenberg does not answer, OSError when no
        listener can be opened here.
        """
        parts = urlsplit(self.base_url)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # No packet is sent: connecting a UDP socket only picks the route and its address.
            probe.connect((parts.hostname or "localhost", parts.port or 80))
            local_address = probe.getsockname()[0]
        requested = threading.Event()

        class Canary(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requested.set()
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        listener = ThreadingHTTPServer((local_address, 0), Canary)
        canary_url = f"http://{local_address}:{listener.server_address[1]}"
        page = (
            f'<html><head><link rel="stylesheet" href="{canary_url}/canary.css"></head>'
            f'<body><p>DocuElevate egress check</p><img src="{canary_url}/canary.png"></body></html>'
        )
        thread = threading.Thread(target=listener.serve_forever, daemon=True)
        thread.start()
        try:
            try:
                requests.post(
                    self.base_url + CONVERT_ROUTE,
                    files={"files": ("index.html", page.encode(), "text/html")},
                    timeout=self.timeout,
                ).close()
            except requests.RequestException as exc:
                raise _unreachable(exc) from exc
            # The conversion has answered, so whatever it loaded has been asked for by now.
            return requested.wait(CANARY_GRACE_SECONDS)
        finally:
            listener.shutdown()
            listener.server_close()


def _unreachable(exc: requests.RequestException) -> GotenbergError:
    kind = GotenbergFailure.TIMEOUT if isinstance(exc, requests.Timeout) else GotenbergFailure.UNREACHABLE
    return GotenbergError(f"Gotenberg is not reachable ({exc.__class__.__name__}).", kind=kind)
