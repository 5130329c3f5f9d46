"""Documents processed by a real Celery worker process (embedded broker, or Redis in CI)."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import os
import signal
import threading
from pathlib import Path, PurePosixPath

import pytest
from django.utils import timezone

from conftest import log_tails, wait_until
from documents.models import Document, DocumentStatus, ProcessingStep, StepStatus
from documents.services import (
    URL_STALE_GRACE_SECONDS,
    URL_TASK_TIME_LIMIT,
    document_fetch_resume_stale,
    document_ingest,
    document_ingest_url,
)
from documents.storage import document_storage, read_chunks, thumbnail_name

pytestmark = pytest.mark.usefixtures("engines")

FINAL = {DocumentStatus.COMPLETED, DocumentStatus.FAILED, DocumentStatus.DUPLICATE}


def upload(owner, path, name=None):
    with path.open("rb") as handle:
        return document_ingest(owner=owner, chunks=read_chunks(handle), filename=name or path.name)


def processed_files():
    """Every file under processed/, in each document's folder."""
    if not document_storage().exists("processed"):
        return []
    folders = document_storage().listdir("processed")[0]
    return [
        f"processed/{folder}/{name}"
        for folder in folders
        for name in document_storage().listdir(f"processed/{folder}")[1]
    ]


# Seconds for a worker to finish what a test gave it, on a busy machine.
PROCESSING_TIMEOUT = 180


def wait_for_final(document_ids, tmp_path):
    wait_until(
        lambda: Document.objects.filter(pk__in=document_ids, status__in=FINAL).count() == len(document_ids),
        timeout=PROCESSING_TIMEOUT,
        what=f"documents {document_ids} to finish",
        details=log_tails(tmp_path),
    )
    return {document.pk: document for document in Document.objects.filter(pk__in=document_ids)}


def running_in_group(group: int, program: str) -> bool:
    """Whether a process of process group ``group`` runs ``program`` (a word of its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        # After the parenthesised name: state, parent, process group.
        if int(stat.rsplit(")", 1)[1].split()[2]) == group and program.encode() in arguments:
            return True
    return False


def test_uploaded_documents_are_processed_by_the_worker(owner, samples, worker_env, start_worker, tmp_path):
    start_worker(worker_env)
    sent = [upload(owner, samples / name) for name in ("scan.pdf", "typewritten.png", "damaged.odt")]
    assert all(result.task_id for result in sent)
    documents = wait_for_final([result.document.pk for result in sent], tmp_path)
    linn, typewriter, odt = (documents[result.document.pk] for result in sent)
    for document in (linn, typewriter, odt):
        assert document.status == DocumentStatus.COMPLETED, document.error
        assert document.processed_file
    assert "ChronoScribe" in linn.ocr_text
    assert typewriter.page_count == 1
    assert "Harvest by month" in odt.ocr_text
    # Every step ran in the worker and left its task id behind.
    assert not ProcessingStep.objects.filter(document__in=documents.values(), task_id="").exists()


def test_a_second_upload_of_the_same_file_is_a_duplicate(owner, samples, worker_env, start_worker, tmp_path):
    start_worker(worker_env)
    first = upload(owner, samples / "blank.pdf")
    second = upload(owner, samples / "blank.pdf", "again.pdf")
    assert second.is_duplicate
    assert second.task_id is None
    assert second.document.duplicate_of_id == first.document.pk
    documents = wait_for_final([first.document.pk], tmp_path)
    assert documents[first.document.pk].status == DocumentStatus.COMPLETED


def test_a_broken_file_fails_and_the_worker_goes_on(owner, samples, worker_env, start_worker, tmp_path):
    worker = start_worker(worker_env)
    broken = upload(owner, samples / "invalid.pdf")
    good = upload(owner, samples / "blank.pdf")
    documents = wait_for_final([broken.document.pk, good.document.pk], tmp_path)
    assert documents[broken.document.pk].status == DocumentStatus.FAILED
    assert "not a readable PDF" in documents[broken.document.pk].error
    assert documents[good.document.pk].status == DocumentStatus.COMPLETED
    assert worker.poll() is None  # still running


def test_a_worker_killed_during_ocr_is_restarted_and_the_document_completes_once(
    owner, samples, worker_env, start_worker, tmp_path
):
    worker = start_worker(worker_env, name="crashy")
    processed_before = set(processed_files())
    document = upload(owner, samples / "scan.pdf").document
    # Claimed, and ocrmypdf running for it (a page takes it several seconds): well inside OCR.
    wait_until(
        lambda: (
            ProcessingStep.objects.filter(
                document=document, name="ocr", status=StepStatus.IN_PROGRESS
            ).exists()
            and running_in_group(worker.pid, "ocrmypdf")
        ),
        timeout=PROCESSING_TIMEOUT,
        what="the worker to run ocrmypdf",
        details=log_tails(tmp_path),
    )
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and the OCR it started, as an OOM kill would
    worker.wait()
    ocr = ProcessingStep.objects.get(document=document, name="ocr")
    assert ocr.status == StepStatus.IN_PROGRESS  # nobody could record anything

    start_worker(worker_env, name="crashy")  # the same node comes back
    finished = wait_for_final([document.pk], tmp_path)[document.pk]
    assert finished.status == DocumentStatus.COMPLETED, finished.error
    assert "ChronoScribe" in finished.ocr_text
    ocr.refresh_from_db()
    assert ocr.attempts == 2
    assert ProcessingStep.objects.get(document=document, name="convert").attempts == 1
    new_files = sorted(set(processed_files()) - processed_before)
    assert new_files == sorted(
        [
            finished.processed_file,
            finished.processed_file.replace(".pdf", ".json"),
            thumbnail_name(finished.uuid),
        ]
    )
    assert document.logs.filter(message__contains="worker stopped").exists()


class StallingOnce(http.server.ThreadingHTTPServer):
    """Serves one PDF; the first download stalls halfway, as a worker dies mid-transfer."""

    body: bytes
    requests: int
    released: threading.Event


class StallingOnceHandler(http.server.BaseHTTPRequestHandler):
    server: StallingOnce

    def do_GET(self) -> None:
        self.server.requests += 1
        first = self.server.requests == 1
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        half = len(self.server.body) // 2
        self.wfile.write(self.server.body[:half])
        self.wfile.flush()
        if first:
            self.server.released.wait(60)
        with contextlib.suppress(ConnectionError):
            self.wfile.write(self.server.body[half:])

    def log_message(self, *args: object) -> None:
        pass


def test_a_worker_killed_during_a_url_download_is_replaced_and_the_document_is_ingested_once(
    owner, samples, worker_env, start_worker, settings, tmp_path
):
    server = StallingOnce(("127.0.0.1", 0), StallingOnceHandler)
    server.body, server.requests, server.released = (
        (samples / "blank.pdf").read_bytes(),
        0,
        threading.Event(),
    )
    # A short poll interval keeps shutdown (and so every test) quick.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    # The test server is on 127.0.0.1, let through as an operator lets an intranet server.
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    worker_env["URL_FETCH_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    try:
        worker = start_worker(worker_env)
        url = f"http://127.0.0.1:{server.server_address[1]}/scan.pdf"
        document = document_ingest_url(owner=owner, url=url).document
        wait_until(
            lambda: server.requests == 1,
            timeout=PROCESSING_TIMEOUT,
            what="the download to start",
            details=log_tails(tmp_path),
        )
        os.killpg(worker.pid, signal.SIGKILL)  # mid-transfer, as an OOM kill would
        worker.wait()
        server.released.set()
        document.refresh_from_db()
        assert (document.status, document.original_file) == (DocumentStatus.PENDING, "")

        start_worker(worker_env)
        # The watchdog, run as beat runs it every minute, once the task's time limit is over.
        later = timezone.now() + datetime.timedelta(seconds=URL_TASK_TIME_LIMIT + URL_STALE_GRACE_SECONDS + 1)
        assert document_fetch_resume_stale(now=later) == [document.pk]
        finished = wait_for_final([document.pk], tmp_path)[document.pk]
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()

    assert finished.status == DocumentStatus.COMPLETED, finished.error
    assert finished.original_filename == "scan.pdf"
    assert server.requests >= 2
    assert document_storage().listdir("originals")[1].count(PurePosixPath(finished.original_file).name) == 1
    assert Document.objects.filter(owner=owner, filehash=finished.filehash).count() == 1
    assert finished.logs.filter(step_name="ingest").count() == 1
