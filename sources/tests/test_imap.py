"""Mailboxes polled on a real Dovecot (IMAPS, a throwaway certificate), with real MIME."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient

from documents.models import Document
from sources.kinds.imap import ImapKind
from sources.models import ItemState, Source, SourceCursor, SourceItem
from sources.polling import PollStatus, source_poll
from sources.tests import mails

pytestmark = pytest.mark.django_db


def poll(source: Source):
    outcome = source_poll(source_id=source.pk)
    assert outcome.status == PollStatus.DONE, outcome.error
    return outcome


def names() -> list[str]:
    return sorted(Document.objects.values_list("original_filename", flat=True))


def test_a_mail_with_a_pdf_becomes_a_document_and_is_marked_seen_and_only_new_mail_follows(
    dovecot_server, mailbox, make_imap_source, operator
):
    source = make_imap_source()
    uid = dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))

    assert poll(source).documents == 1

    document = Document.objects.get()
    assert (document.owner, document.source, document.original_filename) == (operator, "imap", "invoice.pdf")
    assert f";UID={uid};PART=" in document.source_ref
    assert "\\Seen" in dovecot_server.messages(mailbox).messages[0].flags
    assert poll(source).documents == 0

    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename="second.pdf")))
    assert poll(source).documents == 1
    assert names() == ["invoice.pdf", "second.pdf"]
    cursor = SourceCursor.objects.get(source=source)
    assert cursor.validity == dovecot_server.messages(mailbox).uidvalidity


def test_the_first_poll_takes_unseen_mail_only_never_the_history(dovecot_server, mailbox, make_imap_source):
    old = mails.mail_bytes(mails.mail_with_pdf(filename="old.pdf"))
    dovecot_server.append(mailbox, "INBOX", old, ["\\Seen"])
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename="new.pdf")))

    poll(make_imap_source())

    assert names() == ["new.pdf"]


def test_a_first_poll_killed_half_way_is_followed_by_another_first_poll_not_the_history(
    dovecot_server, mailbox, make_imap_source, monkeypatch
):
    for name, flags in (("new-1.pdf", []), ("read-long-ago.pdf", ["\\Seen"]), ("new-2.pdf", [])):
        dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename=name)), flags)
    source = make_imap_source()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the poller dies after its first mail's attachments are taken

    monkeypatch.setattr(ImapKind, "_after", killed)
    with pytest.raises(KeyboardInterrupt):
        source_poll(source_id=source.pk)
    monkeypatch.undo()
    Source.objects.filter(pk=source.pk).update(lease_until=None, lease_holder="")  # its lease ran out

    poll(source)

    assert names() == ["new-1.pdf", "new-2.pdf"]
    assert poll(source).documents == 0


def test_the_same_mail_delivered_twice_is_taken_once(dovecot_server, mailbox, make_imap_source):
    source = make_imap_source()
    message = mails.mail_bytes(mails.mail_with_pdf())
    dovecot_server.append(mailbox, "INBOX", message)
    poll(source)
    dovecot_server.append(mailbox, "INBOX", message)  # the same Message-ID, again

    assert poll(source).documents == 0
    assert Document.objects.count() == 1


def test_nested_multiparts_give_the_document_and_leave_the_signature_logo(
    dovecot_server, mailbox, make_imap_source
):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.nested_mail()))
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.calendar_invite()))

    poll(make_imap_source())

    assert names() == ["contract.pdf"]


def test_with_every_attachment_the_inline_picture_comes_too(dovecot_server, mailbox, make_imap_source):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.nested_mail()))

    poll(make_imap_source(attachment_filter="all"))

    assert names() == ["contract.pdf", "logo.png"]


@pytest.mark.parametrize("encoding", list(mails.NameEncoding))
def test_encoded_attachment_names_are_decoded(dovecot_server, mailbox, make_imap_source, encoding):
    message = mails.encoded_filename_mail("Rechnung März 2026.pdf", encoding=encoding)
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(message))

    poll(make_imap_source())

    assert names() == ["Rechnung März 2026.pdf"]


def test_hostile_attachment_names_become_harmless_document_names(dovecot_server, mailbox, make_imap_source):
    hostile = list(mails.HOSTILE_FILENAMES.values())
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.hostile_names_mail(hostile)))

    poll(make_imap_source())

    taken = names()
    assert len(taken) == len(hostile)
    for name in taken:
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
        assert not any(ord(character) < 32 for character in name)
        assert len(name.encode()) <= 255 * 4


def test_an_empty_and_an_oversized_attachment_fail_alone_and_the_mail_is_still_finished(
    dovecot_server, mailbox, make_imap_source, settings
):
    settings.MAX_UPLOAD_SIZE = 512 * 1024
    message = mails.oversized_attachment_mail(600 * 1024)
    mails.add_pdf(message, filename="fine.pdf")
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(message))
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.empty_attachment_mail()))
    source = make_imap_source()

    poll(source)

    assert "fine.pdf" in names()
    refused = SourceItem.objects.get(state=ItemState.FAILED)
    assert "large-scan.pdf" not in names()
    assert refused.detail
    assert all("\\Seen" in stored.flags for stored in dovecot_server.messages(mailbox).messages)


def test_a_mail_with_two_thousand_attachments_gives_two_thousand_documents(
    dovecot_server, mailbox, make_imap_source
):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.many_attachments_mail(2000)))

    assert poll(make_imap_source()).documents == 2000
    assert Document.objects.filter(source="imap").count() == 2000


def test_a_wrong_password_fails_the_source_with_the_reason_and_other_sources_still_poll(
    dovecot_server, mailbox, make_imap_source
):
    wrong = make_imap_source(password="not-the-password")
    right = make_imap_source()
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))

    failed = source_poll(source_id=wrong.pk)
    assert failed.status == PollStatus.FAILED
    assert failed.error_kind == "configuration"
    wrong.refresh_from_db()
    assert "refused the sign-in" in wrong.last_error
    assert "not-the-password" not in wrong.last_error
    assert poll(right).documents == 1


def test_a_connection_dropped_mid_fetch_is_retried_by_the_next_poll_and_nothing_comes_twice(
    dovecot_server, mailbox, make_imap_source, monkeypatch
):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename="first.pdf")))
    large = mails.mail_bytes(mails.oversized_attachment_mail(8 * 1024 * 1024))
    dovecot_server.append(mailbox, "INBOX", large)
    source = make_imap_source()
    real_fetch = IMAPClient.fetch

    def fetch_dropped_on_the_large_mail(client, messages, data, *args, **kwargs):
        asked = [item.encode() if isinstance(item, str) else item for item in data]
        if b"BODY.PEEK[]" in asked and list(messages) == [dovecot_server.messages(mailbox).uids[1]]:
            dovecot_server.drop_connections()  # the server goes away as the mail is asked for
        return real_fetch(client, messages, data, *args, **kwargs)

    monkeypatch.setattr(IMAPClient, "fetch", fetch_dropped_on_the_large_mail)
    failed = source_poll(source_id=source.pk)
    monkeypatch.undo()

    assert failed.status == PollStatus.FAILED
    assert failed.error_kind == "temporary"
    assert names() == ["first.pdf"]
    assert poll(source).documents == 1
    assert names() == ["first.pdf", "large-scan.pdf"]


def test_after_taking_mail_can_be_moved_or_deleted(dovecot_server, mailbox, make_imap_source):
    with dovecot_server.session(mailbox) as client:
        client.create_folder("Archive")
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))
    poll(make_imap_source(after="move", move_to="Archive"))
    assert dovecot_server.messages(mailbox).uids == []
    assert len(dovecot_server.messages(mailbox, "Archive").uids) == 1

    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename="gone.pdf")))
    poll(make_imap_source(after="delete"))
    assert dovecot_server.messages(mailbox).uids == []
    assert "gone.pdf" in names()


def test_read_only_mode_changes_nothing_on_the_server(dovecot_server, mailbox, make_imap_source, settings):
    settings.IMAP_READONLY_MODE = True
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))
    source = make_imap_source(after="delete")

    assert poll(source).documents == 1
    assert poll(source).documents == 0  # the cursor, not the flags, keeps it from coming again
    [stored] = dovecot_server.messages(mailbox).messages
    assert "\\Seen" not in stored.flags


def test_sender_and_subject_filters_leave_other_mail_alone(dovecot_server, mailbox, make_imap_source):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(subject="Invoice 7")))
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(subject="Newsletter")))

    poll(make_imap_source(subject_filter="invoice", sender_filter="scanner@office.example"))

    assert Document.objects.count() == 1
    assert SourceItem.objects.filter(state=ItemState.SKIPPED).count() == 1


def test_a_forwarded_mail_becomes_a_document_of_its_own(dovecot_server, mailbox, make_imap_source):
    dovecot_server.append(mailbox, "INBOX", mails.mail_bytes(mails.forwarded_mail()))

    poll(make_imap_source())

    [document] = Document.objects.all()
    assert document.mime_type == "message/rfc822"
    assert document.original_filename.endswith(".eml")


def test_the_mail_itself_can_become_a_document_beside_its_attachments(
    dovecot_server, mailbox, make_imap_source
):
    dovecot_server.append(
        mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(subject="Invoice 2026-0042"))
    )

    assert poll(make_imap_source(include_mail=True)).documents == 2

    assert names() == ["Invoice 2026-0042.eml", "invoice.pdf"]
    assert Document.objects.get(original_filename__endswith=".eml").mime_type == "message/rfc822"
