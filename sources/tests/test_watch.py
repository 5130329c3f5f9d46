"""Watched folders, polled for real on the file system: what is taken, when, and once."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from documents.models import Document, DocumentStatus, FailureKind
from documents.tests.samples import blank_pdf, text_pdf
from sources.kinds.watch import WatchKind
from sources.models import ItemState, SourceItem
from sources.polling import PollStatus, source_poll

pytestmark = pytest.mark.django_db


def drop(folder: Path, name: str, content: bytes | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blank_pdf() if content is None else content)
    return path


def test_a_stable_file_becomes_one_document_and_moves_to_processed(watched, make_watch_source, operator):
    source = make_watch_source()
    drop(watched, "invoice.pdf")

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.DONE
    assert outcome.documents == 1
    document = Document.objects.get()
    assert (document.owner, document.source, document.original_filename) == (operator, "watch", "invoice.pdf")
    assert document.source_ref == str(watched / "invoice.pdf")
    assert not (watched / "invoice.pdf").exists()
    assert (watched / "processed" / "invoice.pdf").read_bytes() == blank_pdf()
    source.refresh_from_db()
    assert source.last_success_at is not None
    assert source.last_error == ""
    assert source.lease_holder == ""  # given back

    assert source_poll(source_id=source.pk).documents == 0  # processed/ is not walked
    assert Document.objects.count() == 1


def test_a_file_still_being_written_waits_for_the_settle_time(watched, make_watch_source, clock):
    source = make_watch_source(settle_seconds=5)
    path = drop(watched, "scan.pdf")
    clock.move_to(datetime.fromtimestamp(path.stat().st_ctime, tz=UTC))

    assert source_poll(source_id=source.pk).documents == 0
    assert (watched / "scan.pdf").exists()

    clock.shift(timedelta(seconds=6))
    assert source_poll(source_id=source.pk).documents == 1


def test_a_copy_that_keeps_an_old_modification_time_is_still_waited_for(watched, make_watch_source, clock):
    # Copy tools (cp -p, rsync, SMB) set the original's mtime; the change time they cannot.
    source = make_watch_source(settle_seconds=5)
    path = drop(watched, "copied.pdf")
    clock.move_to(datetime.fromtimestamp(path.stat().st_ctime, tz=UTC))
    an_hour_ago = path.stat().st_mtime - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))

    assert source_poll(source_id=source.pk).documents == 0


def test_hidden_temporary_lock_files_and_links_are_left_alone_and_subfolders_walked(
    watched, make_watch_source, tmp_path
):
    source = make_watch_source(subfolder_tags=True)
    for name in [".hidden.pdf", "upload.pdf.part", "~$letter.docx", "big.pdf.crdownload", ".sync/inner.pdf"]:
        drop(watched, name)
    outside = drop(tmp_path, "secret.pdf", text_pdf("outside the folder"))
    (watched / "link.pdf").symlink_to(outside)
    drop(watched, "2026/Insurance/policy.pdf")

    assert source_poll(source_id=source.pk).documents == 1

    document = Document.objects.get()
    assert document.original_filename == "policy.pdf"
    assert sorted(document.tags.values_list("name", flat=True)) == ["2026", "Insurance"]
    assert (watched / "processed" / "2026" / "Insurance" / "policy.pdf").exists()
    left = sorted(str(path.relative_to(watched)) for path in watched.rglob("*") if path.is_file())
    assert ".hidden.pdf" in left
    assert "upload.pdf.part" in left
    assert "link.pdf" in left
    assert outside.exists()


def test_a_refused_file_moves_to_failed_with_its_reason_and_the_others_still_come_in(
    watched, make_watch_source
):
    source = make_watch_source()
    drop(watched, "archive.zip", b"PK\x03\x04" + os.urandom(200))
    drop(watched, "letter.pdf")

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.DONE
    assert outcome.documents == 1
    assert (watched / "failed" / "archive.zip").exists()
    reason = (watched / "failed" / "archive.zip.txt").read_text()
    assert "not supported" in reason
    assert SourceItem.objects.get(state=ItemState.FAILED).detail == reason.strip()
    assert (watched / "processed" / "letter.pdf").exists()


def test_delete_after_process_removes_the_taken_file(watched, make_watch_source):
    source = make_watch_source(delete_after=True)
    drop(watched, "scan.pdf")

    assert source_poll(source_id=source.pk).documents == 1
    assert list(watched.iterdir()) == []


def test_a_name_already_in_processed_gets_a_number(watched, make_watch_source):
    source = make_watch_source()
    drop(watched, "processed/scan.pdf", b"an earlier scan")
    drop(watched, "scan.pdf")

    source_poll(source_id=source.pk)

    assert (watched / "processed" / "scan.pdf").read_bytes() == b"an earlier scan"
    assert (watched / "processed" / "scan (2).pdf").read_bytes() == blank_pdf()


def test_a_poller_that_died_before_moving_the_file_costs_no_second_document(
    watched, make_watch_source, monkeypatch
):
    source = make_watch_source()
    drop(watched, "scan.pdf")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for the kill: nothing after the ingest runs

    monkeypatch.setattr(WatchKind, "_put_away", killed)
    with pytest.raises(KeyboardInterrupt):
        source_poll(source_id=source.pk)
    monkeypatch.undo()
    assert Document.objects.count() == 1
    assert (watched / "scan.pdf").exists()

    source.refresh_from_db()
    source.lease_until = timezone.now() - timedelta(seconds=1)  # the dead poller's lease ran out
    source.save(update_fields=["lease_until"])
    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.DONE
    assert outcome.documents == 0
    assert Document.objects.count() == 1
    assert (watched / "processed" / "scan.pdf").exists()


def test_a_claim_left_by_a_poller_killed_after_ingest_is_matched_to_its_document(
    watched, make_watch_source, monkeypatch
):
    source = make_watch_source()
    drop(watched, "scan.pdf")
    monkeypatch.setattr("sources.polling.PollRun._finish", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(WatchKind, "_put_away", lambda *a, **k: None)
    source_poll(source_id=source.pk)  # made the document; the ledger still says claimed
    monkeypatch.undo()
    assert SourceItem.objects.get().state == ItemState.CLAIMED

    source_poll(source_id=source.pk)

    item = SourceItem.objects.get()
    assert item.state == ItemState.INGESTED
    assert item.document == Document.objects.get()  # still just the one


def test_a_source_held_by_another_poller_is_not_polled_twice(watched, make_watch_source):
    source = make_watch_source()
    drop(watched, "scan.pdf")
    source.lease_holder = "worker-2 4242 abc"
    source.lease_until = timezone.now() + timedelta(minutes=3)
    source.save()

    assert source_poll(source_id=source.pk).status == PollStatus.BUSY
    assert Document.objects.count() == 0
    source.refresh_from_db()
    assert source.lease_holder == "worker-2 4242 abc"


def test_a_missing_folder_fails_its_source_with_the_reason_and_other_sources_still_poll(
    watched, make_watch_source, tmp_path
):
    good = make_watch_source()
    gone = make_watch_source(path=str(tmp_path / "unmounted"))
    drop(watched, "scan.pdf")

    failed = source_poll(source_id=gone.pk)
    taken = source_poll(source_id=good.pk)

    assert failed.status == PollStatus.FAILED
    assert failed.error_kind == "configuration"
    gone.refresh_from_db()
    assert "does not exist" in gone.last_error
    assert gone.failing
    assert taken.documents == 1


def test_a_name_that_is_not_utf8_is_taken_with_a_readable_reference(watched, make_watch_source):
    source = make_watch_source()
    raw = os.fsencode(watched) + b"/Rechnung-\xe4.pdf"
    with open(raw, "wb") as handle:  # noqa: PTH123 - a bytes path
        handle.write(blank_pdf())

    assert source_poll(source_id=source.pk).documents == 1
    document = Document.objects.get()
    assert document.source_ref.endswith("Rechnung-\\xe4.pdf")
    assert document.status == DocumentStatus.PENDING


def test_poll_sources_once_polls_every_enabled_source_and_reports_each(watched, make_watch_source):
    make_watch_source()
    drop(watched, "a.pdf")
    drop(watched, "b.pdf", text_pdf("b"))
    out = StringIO()

    call_command("poll_sources", "--once", stdout=out)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"source": "Scans 1", "status": "done", "documents": 2}]


def test_below_the_free_space_floor_a_poll_pauses_leaving_its_files_and_takes_them_once_space_returns(
    watched, make_watch_source, settings
):
    source = make_watch_source()
    mb = 1024 * 1024
    big = drop(watched, "big.pdf", b"%PDF-1.4\n" + b"\0" * (64 * mb))
    free_mb = shutil.disk_usage(settings.WORKDIR).free // mb

    # Below the floor already: the poll does not start.
    settings.MIN_FREE_DISK_MB = free_mb + 1024
    outcome = source_poll(source_id=source.pk)
    assert (outcome.status, outcome.error_kind) == (PollStatus.FAILED, FailureKind.DISK_FULL)
    assert outcome.error.startswith("Paused: disk nearly full")
    assert not SourceItem.objects.exists()

    # Room for 32 MiB only: the 64 MiB file is cut off while it streams in, and waits.
    settings.MIN_FREE_DISK_MB = max(free_mb - 32, 0)
    outcome = source_poll(source_id=source.pk)
    assert (outcome.status, outcome.error_kind) == (PollStatus.FAILED, FailureKind.DISK_FULL)
    assert SourceItem.objects.get().state == ItemState.CLAIMED  # taken up by a later poll
    assert big.exists()
    assert not (watched / "failed").exists()
    assert Document.objects.count() == 0
    source.refresh_from_db()
    assert (source.last_error_kind, source.lease_holder) == (FailureKind.DISK_FULL, "")

    settings.MIN_FREE_DISK_MB = 0  # space returns
    outcome = source_poll(source_id=source.pk)
    assert (outcome.status, outcome.documents) == (PollStatus.DONE, 1)
    assert (watched / "processed" / "big.pdf").exists()
