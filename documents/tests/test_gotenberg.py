"""The Gotenberg client and converter at our client boundary.

No Gotenberg server runs on these machines (it ships as a container), so a local HTTP
server answers as Gotenberg's documented route does: ``POST /forms/libreoffice/convert``
with multipart ``files`` in, ``application/pdf`` out.
"""

from __future__ import annotations

import threading
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from documents.filetypes import FileKind
from documents.integrations.gotenberg import GotenbergClient, GotenbergError, GotenbergFailure
from documents.pipeline.base import StepFailed, StepTemporarilyFailed
from documents.pipeline.converters import converter_for
from documents.pipeline.converters.gotenberg import GotenbergConverter
from documents.tests.conftest import zip_bomb_docx

ODT = "application/vnd.oasis.opendocument.text"


@pytest.fixture
def gotenberg(samples):
    """A stand-in Gotenberg: answers with ``answer`` and keeps what it received."""
    state = {"status": 200, "body": (samples / "blank.pdf").read_bytes(), "received": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            parts = [
                (part.get_param("name", header="content-disposition"), part.get_filename())
                for part in message.iter_parts()
            ]
            state["received"].append({"path": self.path, "parts": parts})
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/pdf" if state["status"] == 200 else "text/plain")
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval keeps shutdown (and so every test) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


def test_an_office_file_is_sent_as_a_form_and_the_pdf_saved(gotenberg, samples, tmp_path):
    destination = tmp_path / "out.pdf"
    converter = GotenbergConverter(GotenbergClient(base_url=gotenberg["url"] + "/", timeout=10))
    converter.to_pdf(source=samples / "report.odt", destination=destination, mime_type=ODT, scratch=tmp_path)
    assert destination.read_bytes() == (samples / "blank.pdf").read_bytes()
    assert gotenberg["received"] == [
        {"path": "/forms/libreoffice/convert", "parts": [("files", "document.odt")]}
    ]


def test_a_server_error_is_temporary_and_a_refusal_is_final(gotenberg, samples, tmp_path):
    converter = GotenbergConverter(GotenbergClient(base_url=gotenberg["url"], timeout=10))
    gotenberg.update(status=503, body=b"busy")
    with pytest.raises(StepTemporarilyFailed, match="503"):
        converter.to_pdf(
            source=samples / "report.odt", destination=tmp_path / "a.pdf", mime_type=ODT, scratch=tmp_path
        )
    gotenberg.update(status=400, body=b"bad file")
    with pytest.raises(StepFailed, match="HTTP 400") as refused:
        converter.to_pdf(
            source=samples / "report.odt", destination=tmp_path / "b.pdf", mime_type=ODT, scratch=tmp_path
        )
    assert not isinstance(refused.value, StepTemporarilyFailed)


def test_an_unreachable_server_is_a_temporary_failure(tmp_path, samples):
    converter = GotenbergConverter(GotenbergClient(base_url="http://127.0.0.1:9", timeout=2))
    with pytest.raises(StepTemporarilyFailed, match="not reachable"):
        converter.to_pdf(
            source=samples / "report.odt", destination=tmp_path / "a.pdf", mime_type=ODT, scratch=tmp_path
        )


def test_a_zip_bomb_is_refused_before_it_is_sent(gotenberg, tmp_path):
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(zip_bomb_docx())
    converter = GotenbergConverter(GotenbergClient(base_url=gotenberg["url"], timeout=10))
    with pytest.raises(StepFailed, match="zip bomb"):
        converter.to_pdf(
            source=bomb, destination=tmp_path / "a.pdf", mime_type="application/msword", scratch=tmp_path
        )
    assert gotenberg["received"] == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [(503, GotenbergFailure.BUSY), (429, GotenbergFailure.BUSY), (415, GotenbergFailure.REFUSED)],
)
def test_the_clients_error_says_by_its_kind_whether_gotenberg_is_busy_or_refuses(
    gotenberg, samples, tmp_path, status, kind
):
    gotenberg.update(status=status, body=b"no")
    client = GotenbergClient(base_url=gotenberg["url"], timeout=10)

    with pytest.raises(GotenbergError) as raised:
        client.convert(
            source=samples / "report.odt",
            upload_name="document.odt",
            mime_type=ODT,
            destination=tmp_path / "a.pdf",
        )

    assert (raised.value.kind, raised.value.status) == (kind, status)
    assert not (tmp_path / "a.pdf").exists()


def test_the_client_comes_from_the_settings_only_when_gotenberg_is_configured(settings):
    settings.GOTENBERG_URL = "http://gotenberg:3000/"
    settings.CONVERT_TIMEOUT = 42

    client = GotenbergClient.from_settings()
    assert (client.base_url, client.timeout) == ("http://gotenberg:3000", 42)

    settings.GOTENBERG_URL = None
    with pytest.raises(ImproperlyConfigured):
        GotenbergClient.from_settings()


def test_a_mail_is_rendered_here_and_reaches_gotenberg_as_one_html_page(
    gotenberg, samples, settings, tmp_path
):
    settings.GOTENBERG_URL = gotenberg["url"]
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["Subject"] = "Delivery note"
    message.set_content("Three crates, delivered.")
    (tmp_path / "note.eml").write_bytes(bytes(message))
    destination = tmp_path / "out.pdf"

    converter_for(FileKind.MAIL).to_pdf(
        source=tmp_path / "note.eml", destination=destination, mime_type="message/rfc822", scratch=tmp_path
    )

    assert destination.read_bytes() == (samples / "blank.pdf").read_bytes()
    assert gotenberg["received"] == [
        {"path": "/forms/libreoffice/convert", "parts": [("files", "document.html")]}
    ]
