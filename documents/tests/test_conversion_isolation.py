"""Converting a document reaches no network and sees none of the worker's secrets.

The attack: an uploaded HTML, ODT or DOCX file references ``http://127.0.0.1:<port>/...``;
LibreOffice on the worker loads it, and what it loads ends up in the PDF the uploader
downloads. A listener on 127.0.0.1 stands for every address the worker can reach and must
receive nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pikepdf
import pytest

from documents.models import DocumentStatus, ProcessingLog
from documents.pipeline import isolation
from documents.pipeline.base import StepFailed
from documents.pipeline.converters.libreoffice import LibreOfficeConverter
from documents.pipeline.converters.office_input import prepare_office_input
from documents.pipeline.ocr.tesseract import TesseractEngine
from documents.pipeline.pdf import page_texts
from documents.pipeline.runner import pipeline_run_sync
from documents.tests import hostile_documents, samples
from documents.tests.conftest import png_claiming_size

HOSTILE = {
    "report.html": (hostile_documents.html_fetching, "text/html"),
    "report.odt": (hostile_documents.odt_fetching, hostile_documents.ODF_TEXT),
    "report.docx": (hostile_documents.docx_fetching, hostile_documents.DOCX),
}


class Listener:
    """An HTTP server on 127.0.0.1 that answers every GET with a picture and keeps the paths."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        picture = png_claiming_size(1, 1)
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(picture)))
                self.end_headers()
                self.wfile.write(picture)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    # A short poll interval keeps shutdown (and so every test) quick.
    thread = threading.Thread(target=served.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture(autouse=True)
def _probe_isolation_afresh() -> Iterator[None]:
    """Each test finds the namespace prefix again, so one test's monkeypatching stays its own."""
    isolation.network_isolation.cache_clear()
    yield
    isolation.network_isolation.cache_clear()


def convert(source: bytes, mime_type: str, workdir: Path) -> tuple[Path, str]:
    (workdir / "scratch").mkdir()
    (workdir / "upload").write_bytes(source)
    note = LibreOfficeConverter(timeout=120).to_pdf(
        source=workdir / "upload",
        destination=workdir / "out.pdf",
        mime_type=mime_type,
        scratch=workdir / "scratch",
    )
    return workdir / "out.pdf", note


def image_count(pdf_path: Path) -> int:
    with pikepdf.open(pdf_path) as pdf:
        return sum(len(list(page.images.keys())) for page in pdf.pages)


@pytest.mark.django_db
@pytest.mark.parametrize("filename", sorted(HOSTILE))
def test_an_uploaded_office_file_loads_nothing_from_addresses_the_worker_can_reach(
    engines, listener, ingest, filename
):
    build, _mime_type = HOSTILE[filename]
    document = ingest(build(listener.url), filename)

    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert listener.requests == []
    convert_log = ProcessingLog.objects.get(document=document, step_name="convert", status="success")
    assert "external reference(s) left out" in convert_log.message


@pytest.mark.parametrize("filename", sorted(HOSTILE))
def test_the_references_are_taken_out_before_conversion_but_hyperlinks_stay(filename, listener, tmp_path):
    build, mime_type = HOSTILE[filename]
    (tmp_path / "upload").write_bytes(build(listener.url))

    prepared = prepare_office_input(source=tmp_path / "upload", mime_type=mime_type, scratch=tmp_path)

    assert prepared.references_removed >= 1
    rewritten = prepared.path.read_bytes()
    if mime_type != "text/html":
        with zipfile.ZipFile(prepared.path) as archive:
            rewritten = b"".join(archive.read(name) for name in archive.namelist())
    # Only the clickable link still names the listener.
    assert rewritten.count(listener.url.encode()) == 1
    assert f"{listener.url}/clickable".encode() in rewritten


def test_libreoffice_itself_runs_without_network_even_on_a_file_nothing_rewrote(
    engines, listener, settings, tmp_path
):
    page = tmp_path / "page.html"
    page.write_bytes(hostile_documents.html_fetching(listener.url))
    command = ["soffice", "--headless", "--norestore", "--nolockcheck", "--nodefault",
               f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
               "--convert-to", "pdf", "--outdir", str(tmp_path / "out"), str(page)]  # fmt: skip

    # The same conversion without the namespace shows the attack is real on this machine.
    settings.CONVERTER_SANDBOX = "none"
    isolation.run_isolated(command, timeout=120, what="LibreOffice", home=tmp_path)
    assert listener.requests, "LibreOffice loaded nothing even without isolation: the test proves nothing"
    listener.requests.clear()

    settings.CONVERTER_SANDBOX = "namespace"
    isolation.run_isolated(command, timeout=120, what="LibreOffice", home=tmp_path)

    assert listener.requests == []
    assert (tmp_path / "out" / "page.pdf").stat().st_size > 0


def test_an_unprivileged_user_namespace_serves_when_the_privileged_one_cannot_be_made(
    engines, listener, monkeypatch, tmp_path
):
    monkeypatch.setattr(
        isolation,
        "NAMESPACE_PREFIXES",
        (("unshare", "--no-such-option", "--"), isolation.NAMESPACE_PREFIXES[1]),
    )

    pdf, _note = convert(hostile_documents.rtf_fetching(listener.url), "application/rtf", tmp_path)

    assert isolation.network_isolation().prefix == isolation.NAMESPACE_PREFIXES[1]
    assert listener.requests == []
    assert pdf.stat().st_size > 0


def test_where_no_namespace_can_be_made_nothing_is_converted_and_the_reason_is_given(
    engines, listener, monkeypatch, tmp_path
):
    monkeypatch.setattr(isolation, "NAMESPACE_PREFIXES", (("unshare", "--no-such-option", "--"),))

    with pytest.raises(StepFailed, match=r"cannot be cut off from the network.*CONVERTER_SANDBOX"):
        convert(hostile_documents.html_fetching(listener.url), "text/html", tmp_path)

    assert listener.requests == []


@pytest.mark.subprocess
def test_the_engine_gets_no_connection_and_none_of_the_workers_secrets(listener, monkeypatch, tmp_path):
    monkeypatch.setenv("SESSION_SECRET", "worker-session-secret-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password@db/app")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-key-value")
    seen_file = tmp_path / "seen.json"
    probe = (
        "import os, urllib.request, json\n"
        "try:\n"
        f"    urllib.request.urlopen({listener.url + '/probe'!r}, timeout=5); reached = True\n"
        "except OSError:\n"
        "    reached = False\n"
        "seen = {'reached': reached, 'environment': dict(os.environ)}\n"
        f"json.dump(seen, open({str(seen_file)!r}, 'w'))\n"
    )
    isolation.run_isolated(
        [sys.executable, "-c", probe],
        timeout=60,
        what="probe",
        home=tmp_path,
    )

    seen = json.loads(seen_file.read_text())
    assert seen["reached"] is False
    assert listener.requests == []
    assert set(seen["environment"]) == {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}
    values = " ".join(seen["environment"].values())
    for secret in ("worker-session-secret-value", "db-password", "sk-openai-key-value"):
        assert secret not in values
    assert os.environ["SESSION_SECRET"] == "worker-session-secret-value"  # the worker keeps its own


@pytest.mark.subprocess
def test_an_engine_given_a_memory_limit_fails_past_it_and_runs_within_it(tmp_path):
    allocate = "bytearray({megabytes} * 1024 * 1024)"
    limit = 256 * 1024 * 1024

    with pytest.raises(StepFailed, match=r"greedy failed \(exit 1: MemoryError"):
        isolation.run_isolated(
            [sys.executable, "-c", allocate.format(megabytes=512)],
            timeout=60, what="greedy", home=tmp_path, memory_limit=limit,
        )  # fmt: skip
    isolation.run_isolated(
        [sys.executable, "-c", allocate.format(megabytes=64)],
        timeout=60, what="modest", home=tmp_path, memory_limit=limit,
    )  # fmt: skip


@pytest.mark.subprocess
def test_ocr_and_the_text_layer_are_read_with_none_of_the_workers_secrets(monkeypatch, tmp_path):
    """The engines that read a PDF outside the network namespace (pdftoppm's look at each
    page, ocrmypdf with tesseract, pdftotext) still get a bare environment: a document that
    takes over one of them finds no secret of the worker's."""
    monkeypatch.setenv("SESSION_SECRET", "worker-session-secret-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password@db/app")
    started: list[tuple[list[str], dict[str, str] | None]] = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        started.append((list(command), kwargs.get("env")))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording_run)
    source = tmp_path / "scan.pdf"
    source.write_bytes(samples.scan_pdf())

    TesseractEngine(languages="eng", jobs=1, timeout=120).ocr(
        source=source, destination=tmp_path / "ocr.pdf", pages=[1], replace_text=False, scratch=tmp_path
    )
    text = " ".join(page_texts(tmp_path / "ocr.pdf"))

    assert samples.SCAN_TEXT.split()[0] in text  # the engines still work in it
    engines = {command[3 if command[0] == "prlimit" else 0]: env for command, env in started}
    assert {"pdftoppm", sys.executable, "pdftotext"} <= set(engines)
    for engine, env in engines.items():
        assert env is not None, engine
        assert env["PATH"] == isolation.SAFE_PATH
        values = " ".join(env.values())
        assert "worker-session-secret-value" not in values, engine
        assert "db-password" not in values, engine
