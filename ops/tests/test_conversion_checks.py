"""The checklist items about conversion reaching the network: this machine's sandbox, Gotenberg.

No Gotenberg image runs here, so a small HTTP server answers Gotenberg's documented route
(``POST /forms/libreoffice/convert``) and converts with the real LibreOffice, once with
network access, as a Gotenberg with egress would, and once in a network namespace of its
own, as one without.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from documents.pipeline import isolation
from ops.checks import Status, check_converter_sandbox, check_gotenberg


def libreoffice_server(command_prefix: tuple[str, ...]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            part = next(iter(message.iter_parts()))
            with tempfile.TemporaryDirectory() as folder:
                upload = Path(folder) / (part.get_filename() or "index.html")
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                upload.write_bytes(payload)
                subprocess.run(
                    [*command_prefix, "soffice", "--headless", "--norestore",
                     f"-env:UserInstallation={(Path(folder) / 'profile').as_uri()}",
                     "--convert-to", "pdf", "--outdir", folder, str(upload)],
                    capture_output=True, timeout=120, check=False,
                    env={"HOME": folder, "PATH": "/usr/bin:/bin"},
                )  # fmt: skip
                pdf = upload.with_suffix(".pdf").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(pdf)))
            self.end_headers()
            self.wfile.write(pdf)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def gotenberg_like(settings, engines) -> Iterator[Callable[..., None]]:
    """Start a stand-in for Gotenberg that converts with the real LibreOffice."""
    servers: list[ThreadingHTTPServer] = []

    def start(*, with_network: bool) -> None:
        server = libreoffice_server(() if with_network else ("unshare", "--net", "--"))
        # A short poll interval keeps shutdown (and so every test) quick.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        settings.GOTENBERG_URL = f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_gotenberg_that_loads_referenced_urls_fails_the_check(gotenberg_like):
    gotenberg_like(with_network=True)

    result = check_gotenberg(timeout=120)

    assert result.status is Status.FAIL
    assert "can reach the network" in result.reason
    assert "without egress" in result.fix


def test_a_gotenberg_without_network_passes_the_check(gotenberg_like):
    gotenberg_like(with_network=False)

    result = check_gotenberg(timeout=120)

    assert result.status is Status.PASS, result.reason


def test_a_gotenberg_that_does_not_answer_fails_the_check(settings):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        settings.GOTENBERG_URL = f"http://127.0.0.1:{closed.server_address[1]}"
    result = check_gotenberg(timeout=5)

    assert result.status is Status.FAIL
    assert "does not answer" in result.reason


def test_without_gotenberg_there_is_nothing_to_check(settings):
    settings.GOTENBERG_URL = None

    assert check_gotenberg().status is Status.PASS


@pytest.fixture
def fresh_isolation_probe() -> Iterator[None]:
    isolation.network_isolation.cache_clear()
    yield
    isolation.network_isolation.cache_clear()


@pytest.mark.subprocess
def test_the_sandbox_check_passes_where_a_network_namespace_can_be_made(settings, fresh_isolation_probe):
    settings.CONVERTER_SANDBOX = "namespace"

    result = check_converter_sandbox()

    assert result.status is Status.PASS
    assert "network namespace" in result.reason


@pytest.mark.subprocess
def test_the_sandbox_check_fails_where_none_can_be_made(settings, monkeypatch, fresh_isolation_probe):
    settings.CONVERTER_SANDBOX = "namespace"
    settings.GOTENBERG_URL = None
    monkeypatch.setattr(isolation, "NAMESPACE_PREFIXES", (("unshare", "--no-such-option", "--"),))

    result = check_converter_sandbox()

    assert result.status is Status.FAIL
    assert "not converted" in result.reason


def test_turning_the_sandbox_off_is_a_warning(settings):
    settings.CONVERTER_SANDBOX = "none"

    result = check_converter_sandbox()

    assert result.status is Status.WARN
    assert "network access" in result.reason
