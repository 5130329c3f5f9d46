"""Every door end to end: beat's turn reaches a real worker, which polls a real mailbox and
a watched folder, and the documents they make are processed by the real pipeline."""

from __future__ import annotations

import pytest

from conftest import log_tails, wait_until
from documents.models import Document, DocumentStatus
from documents.tests.conftest import worker_env  # noqa: F401 - a fixture
from documents.tests.samples import text_pdf
from sources.models import Source
from sources.tasks import sources_poll_due_task
from sources.tests import mails

pytestmark = pytest.mark.usefixtures("engines")

# Seconds for a worker to poll and process a few documents, on a busy machine.
PROCESSING_TIMEOUT = 300


def test_a_mail_and_a_dropped_file_are_taken_by_a_worker_and_processed_to_completion(
    worker_env,  # noqa: F811
    start_worker,
    dovecot_server,
    mailbox,
    make_imap_source,
    watched,
    make_watch_source,
    tmp_path,
):
    worker_env["IMAP_CA_BUNDLE"] = str(dovecot_server.tls.ca_file)
    message = mails.new_mail(subject="Invoice 2026-0042")
    mails.add_pdf(message, filename="invoice.pdf", pdf=text_pdf("Invoice number 2026-0042"))
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(message))
    (watched / "letter.pdf").write_bytes(text_pdf("A letter from the insurance"))
    mailbox_source, folder_source = make_imap_source(), make_watch_source()
    start_worker(worker_env)

    sources_poll_due_task.delay()  # what beat sends every minute

    def both_completed() -> bool:
        return Document.objects.filter(status=DocumentStatus.COMPLETED).count() == 2

    wait_until(both_completed, timeout=PROCESSING_TIMEOUT, what="both documents", details=log_tails(tmp_path))
    from_mail = Document.objects.get(source="imap")
    from_folder = Document.objects.get(source="watch")
    assert from_mail.original_filename == "invoice.pdf"
    assert "2026-0042" in from_mail.ocr_text
    assert "insurance" in from_folder.ocr_text
    assert (watched / "processed" / "letter.pdf").exists()
    assert "\\Seen" in dovecot_server.messages(mailbox).messages[0].flags
    for source in (mailbox_source, folder_source):
        source.refresh_from_db()
        assert source.last_success_at is not None, source.last_error
    assert Source.objects.filter(next_poll_at__isnull=True).count() == 0  # both turns handed out
