"""WORKDIR nearly full: ingest is refused with 507 before the disk fills, processing pauses
with a reason and resumes by itself when space returns, and nothing half-written is left.

Most tests put the free-space floor (MIN_FREE_DISK_MB) above the real free space, which is
exactly what a nearly full disk looks like to the code. The last one mounts a small tmpfs as
WORKDIR and fills it for real, for the writes that meet ENOSPC itself.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conftest import service_missing
from docuelevate.errors import InsufficientStorage
from documents import storage
from documents.models import Document, FailureKind, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.runner import pipeline_step_run
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from documents.services import document_fetch_url, document_ingest, document_ingest_url

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
CONVERT = STEP_NAMES.index("convert")


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def disk_nearly_full(settings: Any) -> None:
    """The floor above what is free: to the code, WORKDIR is nearly full."""
    settings.MIN_FREE_DISK_MB = shutil.disk_usage(settings.WORKDIR).free // MB + 1024


def space_returns(settings: Any) -> None:
    settings.MIN_FREE_DISK_MB = 0


def step_of(document: Document, name: str) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, name=name)


def test_an_upload_below_the_floor_is_refused_with_507_json_and_leaves_nothing_behind(
    api: APIClient, document_storage: Path, settings: Any, trivial: Path
):
    disk_nearly_full(settings)
    before = files_under(document_storage)

    answer = api.post(
        "/api/ui-upload",
        {"file": SimpleUploadedFile("scan.pdf", trivial.read_bytes(), "application/pdf")},
        format="multipart",
    )

    assert answer.status_code == 507
    assert set(answer.json()) == {"detail"}
    assert "running out of storage space" in answer.json()["detail"]
    assert "try again later" in answer.json()["detail"]
    assert Document.objects.count() == 0
    assert files_under(document_storage) == before  # no spool, no original

    space_returns(settings)
    answer = api.post(
        "/api/ui-upload",
        {"file": SimpleUploadedFile("scan.pdf", trivial.read_bytes(), "application/pdf")},
        format="multipart",
    )
    assert answer.status_code == 200, answer.json()


def test_the_ingest_service_and_a_url_refuse_below_the_floor(owner, document_storage, settings, trivial):
    disk_nearly_full(settings)
    with pytest.raises(InsufficientStorage):
        document_ingest(owner=owner, chunks=[trivial.read_bytes()], filename="scan.pdf", enqueue=False)
    answer = APIClient()
    answer.force_authenticate(owner)
    # A loopback address allowed, as the process-url tests do: the URL passes its own checks.
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    refused = answer.post("/api/process-url", {"url": "http://127.0.0.1:9/scan.pdf"}, format="json")
    assert refused.status_code == 507
    assert Document.objects.count() == 0
    assert files_under(document_storage) == []

    # A URL accepted while there was room waits for its download instead of failing.
    space_returns(settings)
    waiting = document_ingest_url(owner=owner, url="http://127.0.0.1:9/scan.pdf").document
    disk_nearly_full(settings)
    document = document_fetch_url(document_id=waiting.pk)
    assert document.status == "pending"
    fetch_log = list(
        ProcessingLog.objects.filter(document=document, step_name="fetch").values_list("message", flat=True)
    )
    assert fetch_log[-1].startswith("Paused: disk nearly full")
    assert not any(message.startswith("Attempt") for message in fetch_log)  # no attempt used


def test_below_the_floor_a_step_pauses_with_a_reason_uses_no_attempt_and_runs_once_space_returns(
    ingest, trivial, settings, client, operator
):
    document = ingest(trivial)
    disk_nearly_full(settings)

    for _ in range(3):  # the worker looks again every minute or so
        run = pipeline_step_run(document_id=document.pk, step_name="convert")
        assert run.outcome == "retry"
        assert run.retry_in is not None
        assert 45 <= run.retry_in <= 75
        assert run.message.startswith("Paused: disk nearly full")

    step = step_of(document, "convert")
    assert (step.status, step.attempts, step.failure_kind) == (StepStatus.PENDING, 0, FailureKind.DISK_FULL)
    assert step.error.startswith("Paused: disk nearly full")
    assert "MIN_FREE_DISK_MB" in step.error
    document.refresh_from_db()
    assert document.status == "pending"  # waiting, not failed
    paused = ProcessingLog.objects.filter(document=document, kind=FailureKind.DISK_FULL)
    assert paused.count() == 1  # logged once per pause, not at every look

    # The probes tell operators why nothing moves; readiness stays up for reads.
    ready = client.get("/api/diagnostic/healthz/ready").json()
    assert ready["checks"]["disk"] == {"status": "error", "paused": True}
    client.force_login(operator)
    workdir = client.get("/api/health").json()["checks"]["workdir"]
    assert (workdir["status"], workdir["paused"], workdir["reason"]) == (
        "error",
        True,
        "below MIN_FREE_DISK_MB",
    )

    space_returns(settings)
    run = pipeline_step_run(document_id=document.pk, step_name="convert")
    assert run.outcome == "skipped"  # a PDF passes convert unchanged
    assert run.next_step == "ocr"
    step = step_of(document, "convert")
    assert (step.status, step.attempts, step.error, step.failure_kind) == (StepStatus.SKIPPED, 1, "", "")
    assert client.get("/api/diagnostic/healthz/ready").json()["checks"]["disk"] == {
        "status": "ok",
        "paused": False,
    }


def test_a_step_that_fails_while_the_disk_is_below_the_floor_pauses_instead_of_failing(
    ingest, trivial, settings, monkeypatch
):
    """A program (OCR, conversion) that runs out of space says so in its own words; the free
    space, not the words, decides."""
    document = ingest(trivial)

    def engine_out_of_space(context):
        disk_nearly_full(settings)  # the disk filled while the step ran
        raise RuntimeError("tesseract: write error")

    monkeypatch.setattr(PIPELINE[CONVERT], "run", engine_out_of_space)
    run = pipeline_step_run(document_id=document.pk, step_name="convert")

    assert run.outcome == "retry"
    step = step_of(document, "convert")
    assert (step.status, step.attempts, step.failure_kind) == (StepStatus.PENDING, 0, FailureKind.DISK_FULL)


# --- A real, full file system --------------------------------------------------------------


@pytest.fixture
def small_workdir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """WORKDIR on an 8 MiB tmpfs of its own (needs root, as CI runs), unmounted afterwards."""
    workdir = tmp_path / "small"
    workdir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        service_missing(f"cannot mount a tmpfs for a full disk ({mounted.stderr.strip() or 'not root'})")
    settings.WORKDIR = workdir
    settings.SCRATCH_DIR = workdir / "tmp"
    settings.FILE_UPLOAD_TEMP_DIR = str(workdir / "tmp")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(workdir)},
        },
    }
    (workdir / "tmp").mkdir()
    try:
        yield workdir
    finally:
        subprocess.run(["umount", "-l", str(workdir)], check=False)


def ballast(workdir: Path, *, leave: int) -> Path:
    """Fill ``workdir`` until about ``leave`` bytes are free; the file that does it."""
    path = workdir / "ballast"
    with path.open("wb") as handle:
        while shutil.disk_usage(workdir).free > leave + MB:
            handle.write(b"\0" * MB)
        handle.write(b"\0" * max(shutil.disk_usage(workdir).free - leave, 0))
    return path


@pytest.mark.subprocess  # mount and umount
def test_on_a_really_full_disk_writes_that_meet_enospc_leave_nothing_half_written(
    small_workdir, owner, api, settings, trivial, monkeypatch
):
    # No floor: only the file system's own ENOSPC stops the writes here.
    settings.MIN_FREE_DISK_MB = 0
    pdf_start = trivial.read_bytes()[:1024]

    def big_pdf() -> Iterator[bytes]:
        yield pdf_start
        for _ in range(12):  # 12 MiB into an 8 MiB disk
            yield os.urandom(MB)

    with pytest.raises(InsufficientStorage):
        document_ingest(owner=owner, chunks=big_pdf(), filename="big.pdf", enqueue=False)
    assert files_under(small_workdir) == []  # the spool is gone

    # Through the API: Django's upload handler meets ENOSPC while the request streams in.
    answer = api.post(
        "/api/ui-upload",
        {"file": SimpleUploadedFile("big.pdf", b"".join(big_pdf()), "application/pdf")},
        format="multipart",
    )
    assert answer.status_code == 507, answer.content
    assert files_under(small_workdir) == []
    assert Document.objects.count() == 0

    # A step whose output no longer fits: paused, its scratch copy and partial file gone.
    document = document_ingest(
        owner=owner, chunks=[trivial.read_bytes()], filename="scan.pdf", enqueue=False
    ).document
    kept = files_under(small_workdir)
    full = ballast(small_workdir, leave=256 * 1024)

    def write_a_large_artifact(context):
        storage.store_bytes(os.urandom(2 * MB), storage.artifact_name(context.document.uuid, "big.pdf"))
        raise AssertionError("the disk had room after all")

    with monkeypatch.context() as patched:
        patched.setattr(PIPELINE[CONVERT], "run", write_a_large_artifact)
        run = pipeline_step_run(document_id=document.pk, step_name="convert")
    assert run.outcome == "retry"
    step = step_of(document, "convert")
    assert (step.status, step.attempts, step.failure_kind) == (StepStatus.PENDING, 0, FailureKind.DISK_FULL)
    assert files_under(small_workdir) == sorted([*kept, "ballast"])  # nothing half-written

    full.unlink()  # space returns
    run = pipeline_step_run(document_id=document.pk, step_name="convert")
    assert run.outcome == "skipped"
    assert step_of(document, "convert").status == StepStatus.SKIPPED
