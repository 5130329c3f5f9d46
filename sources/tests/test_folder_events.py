"""A long-running poll_sources takes a file from a local watched folder on its events, long
before the folder's turn comes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_DIR, stop_process_group, wait_until
from documents.models import Document
from documents.tests.conftest import worker_env  # noqa: F401 - a fixture
from documents.tests.samples import blank_pdf
from sources.models import Source, SourceKind
from sources.services import source_create


@pytest.fixture
def poller(worker_env, tmp_path: Path):  # noqa: F811
    log = tmp_path / "poll_sources.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "poll_sources"],
            cwd=PROJECT_DIR,
            env=worker_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, log
    stop_process_group(process)


@pytest.mark.subprocess
def test_a_file_that_settles_in_a_watched_folder_is_taken_on_its_events_not_its_turn(
    watched, operator, poller, document_storage
):
    source = source_create(
        kind=SourceKind.WATCH,
        owner=None,
        name="Scanner share",
        settings={"path": str(watched), "settle_seconds": 1},
        poll_interval_minutes=24 * 60,  # the next turn is a day away: only an event explains a take
    )
    process, log = poller
    # The first turn comes at once (an empty folder); from then on the next is a day away.
    wait_until(
        lambda: Source.objects.get(pk=source.pk).last_poll_at is not None,
        timeout=120,
        what="the first poll",
        details=lambda: log.read_text(errors="replace"),
    )

    (watched / "scan.pdf").write_bytes(blank_pdf())

    # The file is ingested first and moved aside after, so a busy machine may show the
    # document a moment before the move: both are waited for.
    wait_until(
        lambda: (
            Document.objects.filter(source="watch").exists() and (watched / "processed" / "scan.pdf").exists()
        ),
        timeout=120,
        what="the file to be taken and moved to processed/",
        details=lambda: log.read_text(errors="replace"),
    )
    assert process.poll() is None
    next_turn = Source.objects.get(pk=source.pk).next_poll_at
    assert next_turn is not None
    assert next_turn > Document.objects.get().created_at
