"""Real mail for the IMAP tests, built with the standard library's ``email`` package as mail
programs build it: never committed as files, never downloaded.

Each builder returns an ``EmailMessage``; ``mail_bytes`` gives what an IMAP APPEND takes
(CRLF line ends). The attachments are real PDFs, each with a text of its own, so two of
them never share a hash and a test can tell which one became which document.

==============================  =============================================================
``mail_with_pdf``               a plain mail with one PDF: the common case
``nested_mail``                 mixed > alternative > related: text, HTML with an inline image,
                                and a PDF beside them
``encoded_subject_mail``        a subject in RFC 2047 encoded words (UTF-8 or a legacy charset)
``encoded_filename_mail``       one attachment name, encoded as RFC 2231 (what mail programs
                                write) or RFC 2047 in the parameter (what Outlook writes)
``hostile_names_mail``          one attachment per name of ``HOSTILE_FILENAMES``
``empty_attachment_mail``       a 0-byte attachment
``oversized_attachment_mail``   a PDF of exactly the size given
``forwarded_mail``              a mail forwarded as an attachment (message/rfc822)
``calendar_invite``             an invitation: text/calendar beside the text, and an .ics file
``many_attachments_mail``       N PDFs in one mail (2,000 in the tests)
==============================  =============================================================
"""

from __future__ import annotations

import base64
import datetime
import enum
import io
import random
import string
from collections.abc import Sequence
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pikepdf
from PIL import Image

from documents.tests.samples import text_pdf

# APPEND wants CRLF line ends, as SMTP delivers them.
POLICY = policy.SMTP
SENDER = "Office Scanner <scanner@office.example>"
RECIPIENT = "documents@docuelevate.test"
MESSAGE_ID_DOMAIN = "docuelevate.test"
# The attachment names that must come to no harm: each is a way a name has broken software.
HOSTILE_FILENAMES: dict[str, str] = {
    "traversal": "../../etc/passwd.pdf",
    "absolute": "/etc/cron.d/invoice.pdf",
    "windows traversal": "..\\..\\Windows\\System32\\invoice.pdf",
    "nul": "invoice\x00.pdf",
    "newline": "invoice\r\nX-Injected: yes.pdf",
    "terminal escape": "\x1b[31minvoice\x1b[0m.pdf",
    "right-to-left override": "invoice\u202efdp.exe",
    "300 characters": "a" * 296 + ".pdf",
    # 600 bytes in UTF-8: more than a filesystem name may have (255 bytes).
    "300 umlauts": "ä" * 296 + ".pdf",
    "empty": "",
    "dot dot": "..",
    "windows reserved": "CON.pdf",
    "windows reserved lower case": "nul.pdf",
    "windows device": "COM1.pdf",
    "trailing dots and spaces": "invoice.pdf. . .",
}
# RFC 2231's attribute-char (RFC 2045 token characters but "*", "'" and "%"): what a
# parameter value may carry unencoded.
_RFC2231_PLAIN = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")
# Folded header lines stay within the 78 characters RFC 5322 asks for: beyond, the email
# package would refold the header itself, decoding the name first (and writing a decoded
# CR LF into the header as it is).
_MAX_LINE = 78
_RFC2231_SEGMENT = 50
_RFC2047_WORD_BYTES = 36  # 48 base64 characters, a 60-character encoded word


class NameEncoding(enum.Enum):
    """How a non-ASCII or hostile attachment name travels in the header."""

    # filename*=utf-8''...; long names continued as filename*0*=, filename*1*=... (RFC 2231).
    RFC2231 = "rfc2231"
    # filename="=?utf-8?b?...?=": against the RFCs, yet Outlook and many scanners write it.
    RFC2047 = "rfc2047"


def mail_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=POLICY)


def new_mail(
    *,
    subject: str = "Scan from the office scanner",
    body: str = "Please find the scanned document attached.",
    sender: str = SENDER,
    recipient: str = RECIPIENT,
    message_id: str | None = None,
    date: datetime.datetime | None = None,
) -> EmailMessage:
    """A text mail with the headers every mail program writes; attachments are added to it."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime.datetime.now(datetime.UTC))
    message["Message-ID"] = message_id or make_msgid(domain=MESSAGE_ID_DOMAIN)
    message.set_content(body)
    return message


def add_pdf(message: EmailMessage, *, filename: str, pdf: bytes | None = None) -> bytes:
    """Attach a PDF (by default one whose text is its name) and return its bytes."""
    content = text_pdf(f"Attachment {filename}") if pdf is None else pdf
    message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return content


def mail_with_pdf(*, filename: str = "invoice.pdf", subject: str = "Invoice 2026-0042") -> EmailMessage:
    message = new_mail(subject=subject)
    add_pdf(message, filename=filename)
    return message


def nested_mail() -> EmailMessage:
    """multipart/mixed > (multipart/alternative > (text/plain, multipart/related > (text/html,
    inline image/png)), application/pdf): what a mail program sends for a formatted mail
    with a logo in its signature and a document attached."""
    message = new_mail(subject="Contract with signature logo", body="The contract is attached.\n")
    logo_cid = make_msgid(domain=MESSAGE_ID_DOMAIN)
    message.add_alternative(
        f'<p>The contract is attached.</p><p><img src="cid:{logo_cid[1:-1]}" alt="logo"></p>', subtype="html"
    )
    alternative_html = list(message.iter_parts())[1]
    alternative_html.add_related(
        png_image(), maintype="image", subtype="png", cid=logo_cid, disposition="inline", filename="logo.png"
    )
    add_pdf(message, filename="contract.pdf")
    return message


def encoded_subject_mail(
    subject: str = "Rechnung für März \u2013 請求書 ✓", *, charset: str = "utf-8"
) -> EmailMessage:
    """A subject in RFC 2047 encoded words: UTF-8 base64 as the email package writes it, or
    another charset (``iso-8859-1`` quoted-printable, as older mail programs wrote it)."""
    message = new_mail(subject=subject)
    add_pdf(message, filename="invoice.pdf")
    if charset != "utf-8":
        del message["Subject"]
        message.set_raw("Subject", Header(subject, charset).encode(linesep="\n"))
    return message


def encoded_filename_mail(
    filename: str = "Rechnung März 2026.pdf", *, encoding: NameEncoding
) -> EmailMessage:
    message = new_mail(subject="A document with an encoded name")
    _add_named_attachment(message, filename=filename, encoding=encoding, pdf=text_pdf(filename))
    return message


def hostile_names_mail(
    names: Sequence[str] = tuple(HOSTILE_FILENAMES.values()), *, encoding: NameEncoding = NameEncoding.RFC2231
) -> EmailMessage:
    """One PDF per name, in ``names``'s order; each PDF's text is the name's position."""
    message = new_mail(subject="Documents with dangerous names")
    for position, name in enumerate(names):
        _add_named_attachment(
            message, filename=name, encoding=encoding, pdf=text_pdf(f"Hostile name {position}")
        )
    return message


def empty_attachment_mail(*, filename: str = "empty.pdf") -> EmailMessage:
    message = new_mail(subject="An empty attachment")
    message.add_attachment(b"", maintype="application", subtype="pdf", filename=filename)
    return message


def oversized_attachment_mail(size: int, *, filename: str = "large-scan.pdf") -> EmailMessage:
    message = new_mail(subject="A large scan")
    add_pdf(message, filename=filename, pdf=pdf_of_size(size))
    return message


def forwarded_mail(inner: EmailMessage | None = None) -> EmailMessage:
    """``inner`` (by default a mail with a PDF) forwarded as an attachment, message/rfc822."""
    original = inner or mail_with_pdf(filename="forwarded-invoice.pdf", subject="Invoice to forward")
    message = new_mail(subject=f"Fwd: {original['Subject']}", body="Forwarding this for the records.")
    message.add_attachment(original)
    return message


def calendar_invite(*, summary: str = "Quarterly document review") -> EmailMessage:
    """An invitation as calendar programs send one: text/calendar (method REQUEST) as an
    alternative to the text, and the same event as an invite.ics attachment."""
    message = new_mail(subject=f"Invitation: {summary}", body=f"You are invited to {summary}.")
    event = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//DocuElevate tests//EN",
            "METHOD:REQUEST",
            "BEGIN:VEVENT",
            f"UID:{make_msgid(domain=MESSAGE_ID_DOMAIN)[1:-1]}",
            "DTSTAMP:20260601T090000Z",
            "DTSTART:20260615T090000Z",
            "DTEND:20260615T100000Z",
            f"SUMMARY:{summary}",
            f"ORGANIZER:mailto:{RECIPIENT}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    message.add_alternative(event, subtype="calendar", params={"method": "REQUEST"})
    message.add_attachment(event.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return message


def many_attachments_mail(count: int) -> EmailMessage:
    """``count`` PDFs named scan-0001.pdf, scan-0002.pdf, ... each with its number as text."""
    message = new_mail(subject=f"{count} scans")
    for number in range(1, count + 1):
        add_pdf(message, filename=f"scan-{number:04d}.pdf", pdf=text_pdf(f"Scan {number} of {count}"))
    return message


# --- Attachment bodies ------------------------------------------------------------------------


def png_image(color: tuple[int, int, int] = (30, 90, 160)) -> bytes:
    """A small PNG, for an inline image."""
    output = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(output, format="PNG")
    return output.getvalue()


def pdf_of_size(size: int) -> bytes:
    """A valid PDF of exactly ``size`` bytes: a page of text and an incompressible stream
    beside it, as a big scan's image is."""
    filler = 0
    for _ in range(5):
        pdf = _pdf_with_filler(filler)
        if len(pdf) == size:
            return pdf
        filler += size - len(pdf)
        if filler < 0:
            raise ValueError(
                f"a PDF cannot be as small as {size} bytes; the smallest here is {len(pdf) - filler + size}"
            )
    # The filler's length is written in digits, which may shift the size by one each time.
    raise AssertionError(f"no PDF of exactly {size} bytes after five tries")


def _pdf_with_filler(filler: int) -> bytes:
    with pikepdf.open(io.BytesIO(text_pdf("A large scan"))) as pdf:
        # Seeded by the size: the same request gives the same file.
        pdf.Root.Filler = pdf.make_stream(random.Random(filler).randbytes(filler))
        output = io.BytesIO()
        pdf.save(output, compress_streams=False, static_id=True)
        return output.getvalue()


# --- Attachment names written by hand -------------------------------------------------------------


def _add_named_attachment(
    message: EmailMessage, *, filename: str, encoding: NameEncoding, pdf: bytes
) -> None:
    """Attach ``pdf`` with ``filename`` in its Content-Disposition exactly as ``encoding``
    writes it. The email package would refuse or rewrite a name with control characters,
    so the header is written verbatim, as a hostile sender writes it."""
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="placeholder.pdf")
    part = list(message.iter_parts())[-1]
    del part["Content-Disposition"]
    if not filename:
        value = 'attachment; filename=""'
    elif encoding is NameEncoding.RFC2231:
        value = "attachment;\n " + _rfc2231_parameter("filename", filename)
    else:
        value = 'attachment;\n filename="' + "\n ".join(_rfc2047_words(filename)) + '"'
    if any(len(line) > _MAX_LINE for line in value.split("\n")):
        raise AssertionError(f"a folded line is too long, the email package would rewrite it: {value!r}")
    part.set_raw("Content-Disposition", value)


def _rfc2231_parameter(name: str, value: str) -> str:
    """``name*=utf-8''value`` percent-encoded, split into numbered continuations when long,
    one per folded line; a %XX triple is never split."""
    encoded = [chr(byte) if chr(byte) in _RFC2231_PLAIN else f"%{byte:02X}" for byte in value.encode()]
    segments = [""]
    for piece in encoded:
        if len(segments[-1]) + len(piece) > _RFC2231_SEGMENT:
            segments.append("")
        segments[-1] += piece
    if len(segments) == 1:
        return f"{name}*=utf-8''{segments[0]}"
    charset = "utf-8''"
    return ";\n ".join(
        f"{name}*{number}*={charset if number == 0 else ''}{segment}"
        for number, segment in enumerate(segments)
    )


def _rfc2047_words(value: str) -> list[str]:
    """``value`` as UTF-8 base64 encoded words of at most 75 characters, each holding whole
    characters (RFC 2047 section 5)."""
    words, chunk = [], b""
    for character in value:
        encoded = character.encode()
        if len(chunk) + len(encoded) > _RFC2047_WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words]
