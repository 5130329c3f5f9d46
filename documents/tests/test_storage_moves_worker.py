"""A processed file moved to a new name by a real worker that is killed in the middle.

Changing a storage path's template moves every document's file. The worker doing it is
SIGKILLed at three moments of the move: before the new PDF is in place, between the new PDF
and its sidecar, and after the database names the new file while the old one is being
deleted. At every moment the file the database names is whole and downloads; once a worker
of the same name is back, the move is finished: one PDF, its sidecar and the thumbnail, under
the name the database gives.

The worker is held at the moment by an audit hook (``sys.addaudithook``) that a
``sitecustomize`` module installs in the worker's interpreter alone: the project's code has
no pause of its own for tests.
"""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pikepdf
import pytest
from rest_framework.test import APIClient

from conftest import log_tails, wait_until
from documents import storage
from documents.models import Document, DocumentStatus, ProcessingStep, StepStatus, StoragePath
from documents.organise.editing import document_refile
from documents.tests.conftest import stored_bytes
from documents.tests.test_api_download import body_of, disposition
from documents.tests.test_pipeline_worker import PROCESSING_TIMEOUT, upload, wait_for_final

pytestmark = pytest.mark.usefixtures("engines")

HOOK = textwrap.dedent(
    '''
    """Holds this process when it is about to do PAUSE_EVENT on a path matching PAUSE_MATCH."""
    import os
    import re
    import sys
    import time

    EVENT = os.environ.get("PAUSE_EVENT", "")
    MATCH = re.compile(os.environ.get("PAUSE_MATCH", "^$"))
    MARKER = os.environ.get("PAUSE_MARKER", "")


    def hold(event, args):
        if event != EVENT:
            return
        path = os.fsdecode(args[1] if event == "os.rename" else args[0])
        if MATCH.search(path):
            with open(MARKER, "w") as marker:
                marker.write(path)
            time.sleep(3600)


    if EVENT:
        sys.addaudithook(hold)
    '''
)

# Where the worker is killed: (audit event, pattern of the path, what the database names then).
MOMENTS = {
    "before the new pdf is in place": ("os.rename", r"/filed/.*\.pdf$", "old"),
    "between the new pdf and its sidecar": ("os.rename", r"/filed/.*\.json$", "old"),
    "while the old file is deleted": ("os.remove", r"/processed/[0-9a-f]{32}/[^/]+\.pdf$", "new"),
}


def download(document: Document) -> tuple[str, bytes]:
    client = APIClient()
    client.force_authenticate(document.owner)
    response = client.get(f"/api/files/{document.pk}/download")
    assert response.status_code == 200
    name = disposition(response)[1]
    assert name is not None
    return name, body_of(response)


def is_whole_pdf(content: bytes, tmp_path: Path) -> bool:
    path = tmp_path / "check.pdf"
    path.write_bytes(content)
    with pikepdf.open(path) as pdf:
        return len(pdf.pages) >= 1


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_worker_killed_mid_move_leaves_one_file_the_database_names(
    moment, owner, samples, worker_env, start_worker, tmp_path
):
    event, pattern, named_then = MOMENTS[moment]
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    marker = tmp_path / "paused"
    held_env = {
        **worker_env,
        "PYTHONPATH": str(hooks),
        "PAUSE_EVENT": event,
        "PAUSE_MATCH": pattern,
        "PAUSE_MARKER": str(marker),
    }
    # Nothing the first processing does matches the hold: only the move writes under filed/
    # or deletes a PDF of the document's folder.
    worker = start_worker(held_env, name="mover")
    document = wait_for_final([upload(owner, samples / "blank.pdf").document.pk], tmp_path).popitem()[1]
    assert document.status == DocumentStatus.COMPLETED, document.error
    wait_until(
        lambda: ProcessingStep.objects.get(document=document, name="finalize").status == StepStatus.SUCCESS,
        timeout=PROCESSING_TIMEOUT,
        what="the first filing to be recorded",
    )
    old_name = document.processed_file
    pretty_name, _ = download(document)
    archive = StoragePath.objects.create(owner=owner, name="Archive", template="filed/{added_year}/{title}")
    Document.objects.filter(pk=document.pk).update(storage_path=archive)

    assert document_refile(document_id=document.pk, from_step="finalize", message="template changed")
    wait_until(
        marker.exists,
        timeout=PROCESSING_TIMEOUT,
        what=f"the move to reach {moment}",
        details=log_tails(tmp_path),
    )
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    # Killed mid-move: the name the database gives is a whole PDF that downloads.
    killed = Document.objects.get(pk=document.pk)
    assert (killed.processed_file == old_name) == (named_then == "old")
    name, body = download(killed)
    assert name == pretty_name
    assert is_whole_pdf(body, tmp_path)
    assert ProcessingStep.objects.get(document=document, name="finalize").status == StepStatus.IN_PROGRESS

    start_worker(worker_env, name="mover")  # the same node comes back, without the hold
    wait_until(
        lambda: (
            Document.objects.filter(pk=document.pk, status=DocumentStatus.COMPLETED)
            .exclude(processed_file=old_name)
            .exists()
            and ProcessingStep.objects.get(document=document, name="finalize").status == StepStatus.SUCCESS
        ),
        timeout=PROCESSING_TIMEOUT,
        what="the move to be finished",
        details=log_tails(tmp_path),
    )
    moved = Document.objects.get(pk=document.pk)
    assert moved.processed_file.startswith(f"processed/{moved.uuid.hex}/filed/")
    assert storage.processed_files(moved.uuid) == sorted(
        [moved.processed_file, storage.sidecar_name(moved.processed_file), storage.thumbnail_name(moved.uuid)]
    )
    name, body = download(moved)
    assert name == pretty_name
    assert body == stored_bytes(moved.processed_file)
    assert is_whole_pdf(body, tmp_path)
