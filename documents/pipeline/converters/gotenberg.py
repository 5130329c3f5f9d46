"""Office files to PDF through a Gotenberg server (``GOTENBERG_URL``).

Gotenberg runs LibreOffice in its own container, out of this process's reach: it must sit
on a network without egress (docs/security.md), and ``productioncheck`` asks it whether it
fetches. The file it gets has had its external references taken out first all the same.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from documents.pipeline.base import StepFailed, StepTemporarilyFailed
from documents.pipeline.converters.office_input import prepare_office_input

# After Gotenberg answers, how long a late request from it still counts.
CANARY_GRACE_SECONDS = 1.0


class GotenbergConverter:
    name = "gotenberg"

    def __init__(self, *, base_url: str, timeout: float) -> None:
        self.endpoint = base_url.rstrip("/") + "/forms/libreoffice/convert"
        self.timeout = timeout

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        prepared = prepare_office_input(source=source, mime_type=mime_type, scratch=scratch)
        # The prepared file's extension already names the import filter for this type.
        upload_name = f"document{prepared.path.suffix}"
        try:
            with prepared.path.open("rb") as handle:
                response = requests.post(
                    self.endpoint,
                    files={"files": (upload_name, handle, mime_type)},
                    timeout=self.timeout,
                    stream=True,
                )
        except requests.RequestException as exc:
            raise StepTemporarilyFailed(f"Gotenberg is not reachable ({exc.__class__.__name__}).") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise StepTemporarilyFailed(f"Gotenberg answered {response.status_code}; will retry.")
        if response.status_code != 200:
            raise StepFailed(f"Gotenberg could not convert the file (HTTP {response.status_code}).")
        with destination.open("wb") as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
        return prepared.note


def gotenberg_loads_references(*, base_url: str, timeout: float) -> bool:
    """Whether Gotenberg loads what a document references, asked with a canary document.

    The canary is an HTML page referencing a listener opened here, on the address this
    host uses to reach Gotenberg. A Gotenberg that can reach this host can reach others
    (metadata services, internal servers); one on a network without egress reaches
    nothing. Raises ``requests.RequestException`` when Gotenberg does not answer.
    """
    parts = urlsplit(base_url)
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
        requests.post(
            base_url.rstrip("/") + "/forms/libreoffice/convert",
            files={"files": ("index.html", page.encode(), "text/html")},
            timeout=timeout,
        ).close()
        # The conversion has answered, so whatever it loaded has been asked for by now.
        return requested.wait(CANARY_GRACE_SECONDS)
    finally:
        listener.shutdown()
        listener.server_close()
