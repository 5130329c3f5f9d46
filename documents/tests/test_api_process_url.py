"""POST /api/process-url and ``document_ingest_url``: a real HTTP(S) server on 127.0.0.1.

127.0.0.1 is itself refused by the rule against private addresses, so the happy paths call
the service with ``allow_private_addresses=True`` (or the view with that one argument
added), and the refusals go through the view exactly as a client reaches it.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import ipaddress
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
from rest_framework.test import APIClient

from docuelevate.errors import InvalidInput, PayloadTooLarge, RequestTimeout
from documents import services
from documents.models import Document
from documents.services import document_ingest_url

pytestmark = pytest.mark.django_db


class FileServer(http.server.ThreadingHTTPServer):
    corpus: Path
    requests: list[tuple[str, str]]  # (path, Host header)

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
            self._send_file(self.server.corpus / path.removeprefix("/files/"))
        elif path == "/named":
            # An ASCII fallback first, as servers send it; RFC 6266 says filename* wins.
            disposition = "attachment; filename=\"Grusse.pdf\"; filename*=UTF-8''" + quote(
                "Grüße \N{EN DASH} Rechnung.pdf"
            )
            self._send_file(self.server.corpus / "trivial.pdf", {"Content-Disposition": disposition})
        elif path.startswith("/redirect/"):
            hops = int(path.removeprefix("/redirect/"))
            self._redirect(f"/redirect/{hops - 1}" if hops > 1 else "/files/trivial.pdf")
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
            time.sleep(2)
            self._send_file(self.server.corpus / "trivial.pdf")
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


def serve(corpus: Path, tls: ssl.SSLContext | None = None) -> Iterator[FileServer]:
    server = FileServer(("127.0.0.1", 0), Handler)
    server.corpus = corpus
    server.requests = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(corpus: Path) -> Iterator[FileServer]:
    yield from serve(corpus)


def url_of(server: FileServer, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}{path}"


@pytest.fixture
def resolve_as(monkeypatch):
    """Make chosen host names resolve to chosen addresses, as a DNS server would."""
    real = socket.getaddrinfo

    def install(mapping: dict[str, list[str]]) -> None:
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

    return install


# --- Fetching (the service, allowed to reach 127.0.0.1) -----------------------------------


def test_a_file_at_a_url_is_downloaded_stored_and_queued_like_an_upload(
    owner, server, corpus, document_storage, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = document_ingest_url(
            owner=owner, url=url_of(server, "/files/trivial.pdf"), allow_private_addresses=True
        )

    document = result.document
    assert document.original_filename == "trivial.pdf"
    assert document.source == "url"
    assert document.mime_type == "application/pdf"
    assert (document_storage / document.original_file).read_bytes() == (corpus / "trivial.pdf").read_bytes()
    assert [call["task_id"] for call in sent] == [result.task_id]


def test_the_name_comes_from_the_filename_field_then_content_disposition_then_the_url_path(
    owner, server, document_storage
):
    given = document_ingest_url(
        owner=owner, url=url_of(server, "/named"), filename="mine.pdf", allow_private_addresses=True
    )
    assert given.document.original_filename == "mine.pdf"
    Document.objects.all().delete()

    from_header = document_ingest_url(owner=owner, url=url_of(server, "/named"), allow_private_addresses=True)
    assert from_header.document.original_filename == "Grüße \N{EN DASH} Rechnung.pdf"
    Document.objects.all().delete()

    from_path = document_ingest_url(
        owner=owner, url=url_of(server, "/files/linn.png?x=1"), allow_private_addresses=True
    )
    assert from_path.document.original_filename == "linn.png"


def test_up_to_three_redirects_are_followed_and_a_fourth_is_refused(owner, server, document_storage):
    result = document_ingest_url(owner=owner, url=url_of(server, "/redirect/3"), allow_private_addresses=True)
    assert result.document.original_filename == "trivial.pdf"

    with pytest.raises(InvalidInput, match="redirected more than 3 times"):
        document_ingest_url(owner=owner, url=url_of(server, "/redirect/4"), allow_private_addresses=True)
    assert Document.objects.count() == 1


def test_a_redirect_to_a_cloud_metadata_address_is_checked_again_and_refused(
    owner, server, document_storage, monkeypatch
):
    # The rule as in production, except that the test server's own address is let through.
    real_rule = services._address_refused
    monkeypatch.setattr(
        services,
        "_address_refused",
        lambda address: address != ipaddress.ip_address("127.0.0.1") and real_rule(address),
    )

    with pytest.raises(InvalidInput, match="private or reserved"):
        document_ingest_url(owner=owner, url=url_of(server, "/to-metadata"))

    assert [path for path, _host in server.requests] == ["/to-metadata"]
    assert not Document.objects.exists()


def test_the_download_connects_to_the_address_that_was_checked_and_names_the_host(
    owner, server, document_storage, resolve_as
):
    # A name our resolver knows but the system's does not: only the checked address can be used.
    resolve_as({"files.example.test": ["127.0.0.1"]})

    result = document_ingest_url(
        owner=owner,
        url=url_of(server, "/files/trivial.pdf", host="files.example.test"),
        allow_private_addresses=True,
    )

    assert result.document.original_filename == "trivial.pdf"
    assert server.requests == [("/files/trivial.pdf", f"files.example.test:{server.server_address[1]}")]


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_a_file_over_the_size_limit_is_refused_while_streaming_and_nothing_is_kept(
    owner, server, document_storage, settings, path
):
    settings.MAX_UPLOAD_SIZE = 10_000

    with pytest.raises(PayloadTooLarge):
        document_ingest_url(owner=owner, url=url_of(server, path), allow_private_addresses=True)

    assert not Document.objects.exists()
    assert not (document_storage / "originals").exists()
    assert not any((document_storage / "tmp").glob("*"))


def test_a_server_that_does_not_answer_in_time_is_a_timeout(owner, server, document_storage, monkeypatch):
    monkeypatch.setattr(services, "URL_READ_TIMEOUT", 0.3)

    with pytest.raises(RequestTimeout):
        document_ingest_url(owner=owner, url=url_of(server, "/slow"), allow_private_addresses=True)
    assert not Document.objects.exists()


def test_an_error_answer_of_the_server_is_invalid_input_naming_the_status(owner, server, document_storage):
    with pytest.raises(InvalidInput, match="answered 404"):
        document_ingest_url(owner=owner, url=url_of(server, "/nothing-here"), allow_private_addresses=True)


def test_a_server_that_refuses_the_connection_is_invalid_input_not_a_timeout(owner, document_storage):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(InvalidInput, match="could not be reached"):
        document_ingest_url(owner=owner, url=f"http://127.0.0.1:{port}/x.pdf", allow_private_addresses=True)


# --- HTTPS: the checked address, the URL's name for TLS -----------------------------------


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


@pytest.fixture
def tls_server(corpus: Path, tmp_path: Path, monkeypatch) -> Iterator[FileServer]:
    cert, key = certificate_for("files.example.test", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setattr(services, "_tls_ca_file", str(cert))
    yield from serve(corpus, tls=context)


def test_https_is_verified_against_the_name_in_the_url_while_connecting_to_the_checked_address(
    owner, tls_server, document_storage, resolve_as
):
    resolve_as({"files.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})

    result = document_ingest_url(
        owner=owner,
        url=url_of(tls_server, "/files/trivial.pdf", host="files.example.test", scheme="https"),
        allow_private_addresses=True,
    )
    assert result.document.original_filename == "trivial.pdf"

    # The same server under a name its certificate does not carry is not trusted.
    with pytest.raises(InvalidInput, match="certificate"):
        document_ingest_url(
            owner=owner,
            url=url_of(tls_server, "/files/linn.png", host="other.example.test", scheme="https"),
            allow_private_addresses=True,
        )
    assert Document.objects.count() == 1


# --- The route, as clients reach it --------------------------------------------------------


@pytest.fixture
def view_reaches_127(monkeypatch):
    """The view with the one argument it never sets, so it can reach the test server."""
    monkeypatch.setattr(
        "documents.api.views.document_ingest_url",
        functools.partial(services.document_ingest_url, allow_private_addresses=True),
    )


def test_the_route_answers_like_an_upload(
    api, server, document_storage, view_reaches_127, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/process-url",
            {"url": url_of(server, "/files/trivial.pdf"), "filename": "scan.pdf"},
            format="json",
        )

    assert response.status_code == 200
    body = response.json()
    document = Document.objects.get()
    assert body == {
        "task_id": sent[0]["task_id"],
        "document_id": document.pk,
        "status": "queued",
        "original_filename": "scan.pdf",
        "stored_filename": document.original_file.removeprefix("originals/"),
    }


def test_the_route_answers_413_and_408_as_json(
    api, server, document_storage, view_reaches_127, settings, monkeypatch
):
    settings.MAX_UPLOAD_SIZE = 10_000
    too_big = api.post("/api/process-url", {"url": url_of(server, "/big")}, format="json")
    assert too_big.status_code == 413
    assert "10000 bytes" in too_big.json()["detail"]

    monkeypatch.setattr(services, "URL_READ_TIMEOUT", 0.3)
    slow = api.post("/api/process-url", {"url": url_of(server, "/slow")}, format="json")
    assert slow.status_code == 408
    assert "detail" in slow.json()


def test_the_route_never_fetches_from_the_local_machine(api, server, document_storage):
    response = api.post("/api/process-url", {"url": url_of(server, "/files/trivial.pdf")}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]
    assert server.requests == []
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x.pdf",
        "http://127.0.0.2:8080/x.pdf",
        "http://10.1.2.3/x.pdf",
        "http://192.168.0.10/x.pdf",
        "http://172.16.5.5/x.pdf",
        "http://100.64.0.1/x.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/x.pdf",
        "http://0.0.0.0/x.pdf",
        "http://224.0.0.1/x.pdf",
        "http://240.0.0.1/x.pdf",
        "http://[::1]/x.pdf",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/x.pdf",
        "http://[::ffff:127.0.0.1]/x.pdf",
        "http://[::ffff:169.254.169.254]/x.pdf",
        "http://[64:ff9b::a9fe:a9fe]/x.pdf",
        "http://[ff02::1]/x.pdf",
    ],
)
def test_private_loopback_link_local_multicast_reserved_and_metadata_addresses_are_refused(
    api, document_storage, url
):
    response = api.post("/api/process-url", {"url": url}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]
    assert not Document.objects.exists()


def test_a_host_with_any_private_address_among_public_ones_is_refused(api, document_storage, resolve_as):
    resolve_as({"mixed.example.test": ["93.184.215.14", "10.0.0.5"]})

    response = api.post("/api/process-url", {"url": "http://mixed.example.test/x.pdf"}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x.pdf", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "Only http:// and https://"),
        ("not a url", "Only http:// and https://"),
        ("http:///x.pdf", "no host name"),
        ("http://user:secret@example.com/x.pdf", "user name or password"),
        ("http://example.com:99999/x.pdf", "invalid port"),
        ("http://does-not-exist.invalid/x.pdf", "could not be resolved"),
        ("http://bücher.invalid/x.pdf", "could not be resolved"),
        ("http://a..b/x.pdf", "is not valid"),
    ],
)
def test_urls_that_are_not_plain_public_http_are_refused_with_a_reason(api, document_storage, url, message):
    response = api.post("/api/process-url", {"url": url}, format="json")

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_request_without_a_url_is_a_400_naming_the_field(api):
    response = api.post("/api/process-url", {"filename": "x.pdf"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("url:")


def test_an_anonymous_request_is_refused_with_json_and_fetches_nothing(server, document_storage):
    response = APIClient().post(
        "/api/process-url", {"url": url_of(server, "/files/trivial.pdf")}, format="json"
    )

    assert response.status_code in (401, 403)
    assert "detail" in response.json()
    assert server.requests == []
