"""A real HTTP(S) file server on 127.0.0.1 for the URL fetcher and ``/api/process-url``.

Its routes serve the sample documents (``/files/<name>``) and the awkward answers a
fetcher must cope with: redirects, a Content-Disposition name, a body over the size limit,
a server slow to answer.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from documents.tests.samples import Samples

TRICKLE_BYTES = 200


class FileServer(http.server.ThreadingHTTPServer):
    # Closing does not wait for a handler still sleeping in /slow after its client gave up.
    daemon_threads = True
    samples: Samples
    requests: list[tuple[str, str]]  # (path, Host header)
    trickled: int  # bytes of /trickle's body sent before the client hung up

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer (the size limit, a timeout) is what some tests want.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            self._send_file(self.server.samples / path.removeprefix("/files/"))
        elif path == "/named":
            # An ASCII fallback first, as servers send it; RFC 6266 says filename* wins.
            disposition = "attachment; filename=\"Grusse.pdf\"; filename*=UTF-8''" + quote(
                "Grüße \N{EN DASH} Rechnung.pdf"
            )
            self._send_file(self.server.samples / "blank.pdf", {"Content-Disposition": disposition})
        elif path.startswith("/redirect/"):
            hops = int(path.removeprefix("/redirect/"))
            self._redirect(f"/redirect/{hops - 1}" if hops > 1 else "/files/blank.pdf")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/big":
            # No Content-Length: the size is only found out while streaming.
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"%PDF-1.4\n" + b"0" * 50_000)
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif path == "/slow":
            time.sleep(2)  # a server slower than the client's read timeout: the behaviour under test
            self._send_file(self.server.samples / "blank.pdf")
        elif path == "/trickle":
            # A byte every tenth of a second: never silent for long, never done (20 s).
            self.send_response(200)
            self.send_header("Content-Length", str(TRICKLE_BYTES))
            self.end_headers()
            for _ in range(TRICKLE_BYTES):
                self.wfile.write(b"0")
                self.wfile.flush()
                self.server.trickled += 1
                time.sleep(0.1)
        else:
            self.send_error(404)

    def _send_file(self, path: Path, headers: dict[str, str] | None = None) -> None:
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(samples: Samples, tls: ssl.SSLContext | None = None) -> Iterator[FileServer]:
    """Run a file server (with ``tls``, an HTTPS one) until the generator is closed."""
    server = FileServer(("127.0.0.1", 0), Handler)
    server.samples = samples
    server.requests = []
    server.trickled = 0
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # A short poll interval keeps shutdown (and so every test) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: FileServer, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}{path}"


def resolve_as(monkeypatch: pytest.MonkeyPatch, mapping: dict[str, list[str]]) -> None:
    """Make chosen host names resolve to chosen addresses, as a DNS server would."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in mapping:
            return real(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port),
            )
            for address in mapping[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (also its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
