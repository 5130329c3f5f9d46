"""A poller killed mid-run, for real: ``manage.py poll_sources --once`` in a process of its
own, SIGKILLed while it takes mail from a real Dovecot and again while it takes files from
a watched folder. The runs after it wait out the lease it left behind and finish the work:
every attachment and every file becomes exactly one document, nothing is missing, and every
file ends up in processed/."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone

from conftest import PROJECT_DIR, child_env, current_database_url, log_tail, stop_process_group, wait_until
from documents.models import Document, DocumentStatus
from documents.tests.samples import text_pdf
from sources.models import ItemState, Source, SourceItem
from sources.tests import mails

pytestmark = pytest.mark.django_db(transaction=True)

MAILS = 30
FILES = 30
# Long enough for a child to start and take a few items within it, short enough that the
# test does not wait minutes for a killed poller's turn to run out.
LEASE_SECONDS = 4
# Enough documents to be sure the poller is past its start and in the middle of a source.
KILL_AFTER = 3
TIMEOUT = 120


@pytest.fixture
def poller_env(embedded_env: dict[str, str], mailbox, dovecot_server) -> dict[str, str]:
    """The test's database, its WORKDIR (the document storage), the Dovecot CA, a short
    lease; the embedded broker in that WORKDIR, which no worker reads: the pipeline stays
    off, only the taking in is under test."""
    return {
        **embedded_env,
        "DATABASE_URL": current_database_url(),
        "IMAP_CA_BUNDLE": str(dovecot_server.tls.ca_file),
        "SOURCES_POLL_LEASE_SECONDS": str(LEASE_SECONDS),
    }


@pytest.fixture
def start_poller(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """``manage.py poll_sources --once`` in a process group of its own, its output in a log."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], *arguments: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"poller-{len(started)}.log"
        with log.open("wb") as output:
            poller = subprocess.Popen(
                [sys.executable, "manage.py", "poll_sources", "--once", *arguments],
                cwd=PROJECT_DIR, env=child_env(env), stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(poller)
        return poller, log

    yield start
    for poller in started:
        stop_process_group(poller, grace=5)


def documents_of(source: Source) -> int:
    return Document.objects.filter(source=source.kind).count()


def kill_after(source: Source, poller: subprocess.Popen[bytes], log: Path) -> int:
    """SIGKILL the poller once it has made ``KILL_AFTER`` documents of ``source``; how many
    there were when it died."""
    wait_until(
        lambda: documents_of(source) >= KILL_AFTER or poller.poll() is not None,
        timeout=TIMEOUT,
        interval=0.02,
        what=f"the poller to take {KILL_AFTER} items of {source.name}",
        details=lambda: log_tail(log),
    )
    os.killpg(poller.pid, signal.SIGKILL)
    poller.wait(timeout=30)
    assert poller.returncode == -signal.SIGKILL, f"the poller ended by itself first:\n{log_tail(log)}"
    return documents_of(source)


def wait_out_the_lease(source: Source) -> None:
    """The killed poller still holds the source; its turn ends when the lease runs out."""
    source.refresh_from_db()
    assert source.lease_holder, "the killed poller left its lease behind"
    assert source.lease_until is not None
    assert source.lease_until > timezone.now()
    lease_until = source.lease_until
    wait_until(lambda: timezone.now() > lease_until, timeout=LEASE_SECONDS + 30, what="the lease to run out")


def test_a_poller_killed_mid_mailbox_and_mid_folder_leaves_every_item_taken_exactly_once(
    dovecot_server, mailbox, make_imap_source, watched, make_watch_source, poller_env, start_poller, operator
):
    attachments = [mails.new_mail(subject=f"Scan {number}") for number in range(MAILS)]
    expected_mail = {
        hashlib.sha256(mails.add_pdf(message, filename=f"mail-{number:02d}.pdf")).hexdigest()
        for number, message in enumerate(attachments)
    }
    dovecot_server.append_many(mailbox, "INBOX", [mails.mail_bytes(message) for message in attachments])
    expected_files = {}
    for number in range(FILES):
        content = text_pdf(f"Scanned page number {number}")
        (watched / f"scan-{number:02d}.pdf").write_bytes(content)
        expected_files[f"scan-{number:02d}.pdf"] = hashlib.sha256(content).hexdigest()
    # Polled by name: the mailbox first, then the folder.
    imap = make_imap_source()
    watch = make_watch_source()
    assert [source.pk for source in Source.objects.all()] == [imap.pk, watch.pk]

    # Killed in the middle of the mailbox: some mail taken, the folder not yet looked at.
    poller, log = start_poller(poller_env)
    taken = kill_after(imap, poller, log)
    assert taken < MAILS, "the kill came after the whole mailbox was taken"
    assert documents_of(watch) == 0
    wait_out_the_lease(imap)

    # The next run finishes the mailbox and is killed in the middle of the folder.
    poller, log = start_poller(poller_env)
    taken = kill_after(watch, poller, log)
    assert taken < FILES, "the kill came after the whole folder was taken"
    assert documents_of(imap) == MAILS
    wait_out_the_lease(watch)

    # A last run finishes the folder and gives both leases back.
    poller, log = start_poller(poller_env)
    assert poller.wait(timeout=TIMEOUT) == 0, log_tail(log)
    outcomes = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [(line["source"], line["status"]) for line in outcomes] == [
        (imap.name, "done"),
        (watch.name, "done"),
    ]

    for source, expected in ((imap, expected_mail), (watch, set(expected_files.values()))):
        documents = Document.objects.filter(source=source.kind)
        assert documents.count() == len(expected), source.name
        assert set(documents.values_list("filehash", flat=True)) == expected, f"{source.name}: missing"
        assert not documents.filter(status=DocumentStatus.DUPLICATE).exists(), f"{source.name}: twice"
        assert not documents.values("source_ref").annotate(n=Count("pk")).filter(n__gt=1).exists()
        assert set(documents.values_list("owner", flat=True)) == {operator.pk}
        items = SourceItem.objects.filter(source=source)
        assert items.count() == len(expected)
        assert set(items.values_list("state", flat=True)) == {ItemState.INGESTED}
        source.refresh_from_db()
        assert (source.lease_holder, source.last_error) == ("", "")
    # Every file in processed/ under its own name, none left behind or in failed/.
    assert sorted(path.name for path in watched.iterdir()) == ["processed"]
    processed = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (watched / "processed").iterdir()
    }
    assert processed == expected_files
    # And every mail marked seen, as the mailbox's after-action says.
    assert all("\\Seen" in message.flags for message in dovecot_server.messages(mailbox).messages)
