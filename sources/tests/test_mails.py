"""The test mails are what they claim: a mail parser finds the parts, names and sizes each
builder promises, so a test of the IMAP source that uses one tests what its name says."""

from __future__ import annotations

import io
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser

import pikepdf
import pytest

from sources.tests import mails


def parsed(message: EmailMessage) -> EmailMessage:
    """The mail as a receiving program reads it: from its bytes, not from the builder's
    objects."""
    return BytesParser(policy=policy.default).parsebytes(mails.mail_bytes(message))


def test_a_mail_travels_with_crlf_line_ends_as_imap_append_wants() -> None:
    raw = mails.mail_bytes(mails.mail_with_pdf())

    assert raw.count(b"\r\n") == raw.count(b"\n")


def test_the_plain_mail_has_one_pdf_that_opens() -> None:
    (attachment,) = parsed(mails.mail_with_pdf(filename="invoice.pdf")).iter_attachments()

    assert attachment.get_filename() == "invoice.pdf"
    with pikepdf.open(io.BytesIO(attachment.get_content())) as pdf:
        assert len(pdf.pages) == 1


def test_the_nested_mail_has_an_inline_image_referenced_by_the_html_and_a_pdf_beside() -> None:
    message = parsed(mails.nested_mail())

    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    html, image = (part for part in message.walk() if part.get_content_type() in ("text/html", "image/png"))
    assert image.get_content_disposition() == "inline"
    assert f"cid:{image['Content-ID'][1:-1]}" in html.get_content()
    assert [part.get_filename() for part in message.iter_attachments()] == ["contract.pdf"]


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1"])
def test_an_encoded_subject_travels_as_encoded_words_and_decodes_back(charset: str) -> None:
    subject = "Rechnung für März"
    message = mails.encoded_subject_mail(subject, charset=charset)

    raw = mails.mail_bytes(message)
    assert f"=?{charset}?".encode() in raw.lower()
    assert subject.encode() not in raw
    assert parsed(message)["Subject"] == subject


def test_an_rfc2231_name_travels_percent_encoded_and_decodes_back() -> None:
    message = mails.encoded_filename_mail("Rechnung März 2026.pdf", encoding=mails.NameEncoding.RFC2231)

    assert b"filename*=utf-8''Rechnung%20M%C3%A4rz%202026.pdf" in mails.mail_bytes(message)
    assert [part.get_filename() for part in parsed(message).iter_attachments()] == ["Rechnung März 2026.pdf"]


@pytest.mark.parametrize("encoding", list(mails.NameEncoding))
def test_every_hostile_name_reaches_the_receiver_exactly_as_written(encoding: mails.NameEncoding) -> None:
    names = list(mails.HOSTILE_FILENAMES.values())
    message = mails.hostile_names_mail(names, encoding=encoding)

    raw = mails.mail_bytes(message)
    # Folded: every line within the 998 characters RFC 5322 allows (78 as it asks).
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"\r\nX-Injected" not in raw
    assert _sent_filenames(raw) == names


def test_the_300_umlaut_name_is_longer_than_a_filesystem_allows() -> None:
    assert len(mails.HOSTILE_FILENAMES["300 umlauts"].encode()) > 255


def test_the_empty_attachment_has_no_bytes() -> None:
    (attachment,) = parsed(mails.empty_attachment_mail()).iter_attachments()

    assert attachment.get_content() == b""
    assert attachment.get_content_type() == "application/pdf"


@pytest.mark.parametrize("size", [5_000, 1_234_567])
def test_the_oversized_attachment_is_a_valid_pdf_of_exactly_the_size_asked(size: int) -> None:
    (attachment,) = parsed(mails.oversized_attachment_mail(size)).iter_attachments()

    content = attachment.get_content()
    assert len(content) == size
    with pikepdf.open(io.BytesIO(content)) as pdf:
        assert len(pdf.pages) == 1


def test_a_pdf_smaller_than_the_smallest_possible_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be as small"):
        mails.pdf_of_size(100)


def test_the_forwarded_mail_carries_the_original_with_its_pdf() -> None:
    (forwarded,) = parsed(mails.forwarded_mail()).iter_attachments()

    assert forwarded.get_content_type() == "message/rfc822"
    original = forwarded.get_content()
    assert original["Subject"] == "Invoice to forward"
    assert [part.get_filename() for part in original.iter_attachments()] == ["forwarded-invoice.pdf"]


def test_the_invitation_has_a_calendar_request_and_an_ics_file() -> None:
    message = parsed(mails.calendar_invite(summary="Review"))

    (calendar,) = (part for part in message.walk() if part.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "REQUEST"
    assert "SUMMARY:Review" in calendar.get_content()
    assert [part.get_filename() for part in message.iter_attachments()] == ["invite.ics"]


def test_each_of_many_attachments_is_a_different_pdf() -> None:
    attachments = list(parsed(mails.many_attachments_mail(50)).iter_attachments())

    assert [part.get_filename() for part in attachments] == [
        f"scan-{number:04d}.pdf" for number in range(1, 51)
    ]
    assert len({part.get_content() for part in attachments}) == 50


def _sent_filenames(raw: bytes) -> list[str | None]:
    """The attachment names as the sender wrote them: RFC 2231 decoded by the standard
    library's parser, RFC 2047 words inside the quoted parameter decoded here (the parser of
    the default policy stops at a decoded line break, a hazard for the code under test, not
    a property of the mail)."""
    names: list[str | None] = []
    for part in BytesParser(policy=policy.compat32).parsebytes(raw).walk():
        disposition = part["Content-Disposition"]
        if disposition is None:
            continue
        if "=?" in disposition:
            quoted = disposition.split('filename="', 1)[1].rsplit('"', 1)[0]
            names.append(str(make_header(decode_header(quoted))))
        else:
            names.append(part.get_filename())
    return names
