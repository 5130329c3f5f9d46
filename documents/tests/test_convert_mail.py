"""E-mails (.eml, message/rfc822) become documents: sniffed, rendered to one page, converted.

Every mail here is built with the standard library's ``email`` package in the test itself.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from pathlib import Path

import pikepdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.access import Viewer
from conftest import log_tails, wait_until
from documents import storage
from documents.filetypes import FileKind, kind_of, sniff_mime
from documents.models import Document, DocumentStatus, ProcessingLog
from documents.pipeline.base import StepFailed
from documents.pipeline.converters import converter_for
from documents.pipeline.converters.mail import MAX_HEADER_CHARS, MailConverter, render_mail
from documents.tests.conftest import stored_bytes
from documents.tests.test_conversion_isolation import Listener
from search.selectors import search

SUBJECT = "Rechnung für März: Übersicht"
# Bytes libmagic can name no format for (application/octet-stream), under a mail's name.
GARBAGE = b"".join(hashlib.sha256(bytes([number])).digest() for number in range(128))


def mail(subject: str = SUBJECT, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address("Jürgen Müller", "juergen", "example.com")
    message["To"] = "bob@example.com"
    message["Date"] = "Wed, 11 Jun 2025 14:00:00 +0000"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def plain_mail() -> EmailMessage:
    message = mail(subject="Quarterly figures", Cc="carol@example.com")
    message.set_content("The harvest figures for the third quarter are attached.\nRegards, Jürgen")
    return message


def png(colour: tuple[int, int, int] = (0, 0, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def html_mail_with_inline_image() -> EmailMessage:
    message = mail(subject="Our new logo")
    message.set_content("Our new logo, in plain text there is no picture.")
    message.add_alternative(
        '<html><body><p>Our new logo:</p><img src="cid:logo@example.com" alt="logo"></body></html>',
        subtype="html",
    )
    html_part(message).add_related(png(), "image", "png", cid="<logo@example.com>")
    return message


def html_part(message: EmailMessage) -> MIMEPart:
    part = message.get_body(preferencelist=("related", "html"))
    assert part is not None
    return part


def encoded_subject_latin1_body_mail() -> bytes:
    """An RFC 2047 encoded subject over a body in ISO-8859-1, as older mail programs send."""
    subject = base64.b64encode("Kündigung Mietvertrag Grünstraße".encode()).decode("ascii")
    body = "Sehr geehrte Frau Weiß,\r\nhiermit kündige ich fristgerecht zum 30. September.\r\nGrüße\r\n"
    return (
        "From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.com>\r\n"
        "To: vermieter@example.com\r\n"
        f"Subject: =?utf-8?b?{subject}?=\r\n"
        "Date: Wed, 11 Jun 2025 14:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    ).encode("ascii") + body.encode("iso-8859-1")


def hostile_html_mail(url: str) -> EmailMessage:
    message = mail(subject="Please review")
    message.set_content(
        "<html><head>"
        f'<link rel="stylesheet" href="{url}/linked.css">'
        "<script>document.write('injected by script')</script>"
        "</head>"
        '<body onload="steal()">'
        "<p>The contract is ready for review.</p>"
        f'<img src="{url}/tracking.png" width="1" height="1">'
        f'<iframe src="{url}/frame.html"></iframe>'
        '<a href="javascript:steal()">open</a>'
        "</body></html>",
        subtype="html",
    )
    return message


def write(tmp_path: Path, content: EmailMessage | bytes, name: str = "mail.eml") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(content))
    return path


def pdf_image_count(pdf_path: Path) -> int:
    with pikepdf.open(pdf_path) as pdf:
        return sum(len(page.get_images()) for page in pdf.pages)


# --- What a mail is ----------------------------------------------------------------------------


def test_a_mail_starting_with_a_header_libmagic_knows_is_a_mail_whatever_its_name():
    content = bytes(plain_mail())
    assert sniff_mime(content, "forwarded.txt") == "message/rfc822"
    assert kind_of("message/rfc822") is FileKind.MAIL


def test_a_mail_starting_with_other_headers_is_a_mail_by_its_eml_name_or_its_header_block():
    # libmagic calls this text/plain: its first header is not one of those it knows.
    content = b"X-Mailer: Scanner 3000\r\nSubject: Scan\r\nTo: office@example.com\r\n\r\nScanned."
    assert sniff_mime(content, "scan.eml") == "message/rfc822"
    assert sniff_mime(content, "scan") == "message/rfc822"


def test_a_text_file_with_a_colon_in_its_first_line_stays_text():
    content = b"Note: buy milk\r\nTo do: call the landlord\r\n\r\nand more."
    assert sniff_mime(content, "notes.txt") == "text/plain"


def test_garbage_named_eml_is_taken_as_a_mail_so_the_document_can_fail_with_its_reason():
    assert sniff_mime(GARBAGE, "broken.eml") == "message/rfc822"


# --- The page a mail becomes -------------------------------------------------------------------


def test_the_page_shows_the_decoded_headers_the_body_and_the_attachments(tmp_path):
    message = plain_mail()
    # RFC 2231 encodes the name; markup in it must stay text.
    message.add_attachment(
        b"%PDF-1.4 figures", maintype="application", subtype="pdf", filename="Zahlen <März>.pdf"
    )
    page = render_mail(write(tmp_path, message))

    assert "Jürgen Müller &lt;juergen@example.com&gt;" in page.html
    assert "carol@example.com" in page.html
    assert "Quarterly figures" in page.html
    assert "The harvest figures for the third quarter are attached." in page.html
    assert "Zahlen &lt;März&gt;.pdf (16 bytes)" in page.html
    assert "<März>" not in page.html


def test_the_html_body_loses_scripts_handlers_and_everything_it_would_load(tmp_path):
    page = render_mail(write(tmp_path, hostile_html_mail("http://127.0.0.1:9")))

    assert "The contract is ready for review." in page.html
    for gone in ("<script", "injected by script", "onload", "steal()", "127.0.0.1", "<iframe", "<link"):
        assert gone not in page.html, gone
    assert "active or external item(s) left out" in page.notes[0]


def test_a_cid_reference_becomes_the_inline_image_and_an_unreferenced_one_follows_the_body(tmp_path):
    message = html_mail_with_inline_image()
    html_part(message).add_related(png((255, 0, 0)), "image", "png", cid="<unused@example.com>")
    page = render_mail(write(tmp_path, message))

    assert "cid:" not in page.html
    assert page.html.count('src="data:image/png;base64,') == 2
    assert (
        page.html.index("Our new logo:")
        < page.html.index("data:image/png")
        < page.html.rindex("data:image/png")
    )
    assert "in plain text there is no picture" not in page.html  # the HTML alternative wins


def test_an_unknown_or_wrong_charset_is_decoded_with_replacement_instead_of_failing(tmp_path):
    content = (
        b"From: a@example.com\r\nSubject: Charset trouble\r\n"
        b'Content-Type: text/plain; charset="x-no-such-charset"\r\n\r\n'
        b"Price: 100 \xff\xfe euros"
    )
    page = render_mail(write(tmp_path, content))
    assert "Price: 100 \ufffd\ufffd euros" in page.html


def test_a_huge_header_is_cut_before_parsing_and_the_rest_of_the_mail_still_shows(tmp_path):
    # Unbounded, the header parser needs minutes and gigabytes for this subject.
    huge = "=?utf-8?q?Subject_part?= " * 100_000
    content = (
        f"From: a@example.com\r\nSubject: {huge}\r\nContent-Type: text/plain\r\n\r\nThe body survives."
    ).encode("ascii")
    page = render_mail(write(tmp_path, content))
    assert "The body survives." in page.html
    assert 0 < page.html.count("Subject part") <= MAX_HEADER_CHARS // len("=?utf-8?q?Subject_part?= ")


def test_a_mail_without_a_body_shows_its_headers(tmp_path):
    page = render_mail(write(tmp_path, b"From: a@example.com\r\nSubject: Only headers\r\n"))
    assert "Only headers" in page.html


def test_a_mail_nested_far_too_deep_fails_with_a_reason(tmp_path):
    depth = 2_000
    lines = [b"From: a@example.com", b"Content-Type: multipart/mixed; boundary=b0", b""]
    for level in range(1, depth):
        lines += [b"--b%d" % (level - 1), b"Content-Type: multipart/mixed; boundary=b%d" % level, b""]
    with pytest.raises(StepFailed, match="nested too deeply"):
        render_mail(write(tmp_path, b"\r\n".join(lines)))


def test_a_mime_header_of_nested_comments_fails_with_a_reason(tmp_path):
    comments = b"(" * 990
    content = b"From: a@example.com\r\nContent-Disposition: inline; " + comments + b"\r\n\r\nText"
    with pytest.raises(StepFailed, match="nested too deeply"):
        render_mail(write(tmp_path, content))


def test_parts_nested_deeper_than_the_bound_are_counted_and_the_rest_shows(tmp_path):
    lines = [
        b"From: a@example.com",
        b"Subject: Russian dolls",
        b"Content-Type: multipart/mixed; boundary=b0",
        b"",
    ]
    lines += [b"--b0", b"Content-Type: text/plain", b"", b"The outer text.", b"--b0"]
    for level in range(1, 40):
        lines += [b"Content-Type: multipart/mixed; boundary=b%d" % level, b"", b"--b%d" % level]
    lines += [b"Content-Type: text/plain", b"", b"The innermost text."]
    page = render_mail(write(tmp_path, b"\r\n".join(lines)))
    assert "The outer text." in page.html
    assert "The innermost text." not in page.html
    assert any("nested too deeply or too many left out" in note for note in page.notes)


def test_a_mail_of_too_many_parts_is_refused_before_parsing(tmp_path):
    parts = [b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=zz\r\n"]
    parts += [b"--zz\r\n\r\nx"] * 6_000
    with pytest.raises(StepFailed, match="more than 5000 parts"):
        render_mail(write(tmp_path, b"\r\n".join(parts)))


def test_a_mail_of_two_thousand_attachments_lists_every_one(tmp_path):
    message = plain_mail()
    for number in range(2_000):
        message.add_attachment(b"xx", maintype="image", subtype="tiff", filename=f"scan-{number}.tif")
    page = render_mail(write(tmp_path, message))
    assert "Attachments (2000)" in page.html
    assert "scan-1999.tif (2 bytes)" in page.html


def test_garbage_is_no_mail(tmp_path):
    with pytest.raises(StepFailed, match="no mail headers"):
        render_mail(write(tmp_path, GARBAGE))


def test_a_mail_goes_to_the_office_engine_the_settings_choose(settings):
    settings.GOTENBERG_URL = ""
    converter = converter_for(FileKind.MAIL)
    assert isinstance(converter, MailConverter)
    assert converter.office.name == "libreoffice"
    settings.GOTENBERG_URL = "http://gotenberg.invalid:3000"
    converter = converter_for(FileKind.MAIL)
    assert isinstance(converter, MailConverter)
    assert converter.office.name == "gotenberg"


# --- Through the real pipeline ------------------------------------------------------------------

pipeline = pytest.mark.django_db


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    thread = threading.Thread(target=served.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pipeline
def test_a_plain_text_mail_becomes_a_searchable_pdf(process):
    document = process(bytes(plain_mail()), "figures.eml")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.mime_type == "message/rfc822"
    assert "Quarterly figures" in document.ocr_text
    assert "harvest figures for the third quarter" in document.ocr_text
    convert = ProcessingLog.objects.get(document=document, step_name="convert", status="success")
    assert "with the mail renderer and libreoffice" in convert.message


@pipeline
def test_an_inline_cid_image_is_in_the_pdf(process):
    document = process(bytes(html_mail_with_inline_image()), "logo.eml")

    assert document.status == DocumentStatus.COMPLETED, document.error
    with storage.local_copy(document.processed_file) as pdf:
        assert pdf_image_count(pdf) >= 1
    assert "Our new logo:" in document.ocr_text


@pipeline
def test_an_encoded_subject_and_a_latin1_body_are_searchable_text(process, owner):
    document = process(encoded_subject_latin1_body_mail(), "kuendigung.eml")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "Kündigung Mietvertrag Grünstraße" in document.ocr_text
    assert "Sehr geehrte Frau Weiß" in document.ocr_text
    assert "Jürgen Müller" in document.ocr_text
    assert [hit.document.pk for hit in search(viewer=Viewer(owner), query="Mietvertrag").results] == [
        document.pk
    ]


@pipeline
def test_a_hostile_html_mail_loads_nothing_and_the_rest_renders(process, listener):
    document = process(bytes(hostile_html_mail(listener.url)), "review.eml")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert listener.requests == []
    assert "The contract is ready for review." in document.ocr_text
    assert "injected by script" not in document.ocr_text
    convert = ProcessingLog.objects.get(document=document, step_name="convert", status="success")
    assert "active or external item(s) left out of the mail's HTML" in convert.message


@pipeline
def test_garbage_named_eml_fails_with_a_readable_reason_and_the_original_is_kept(process):
    content = GARBAGE
    document = process(content, "broken.eml")

    assert document.status == DocumentStatus.FAILED
    assert "no mail headers" in document.error
    assert stored_bytes(document.original_file) == content
    assert not document.processed_file


# --- An .eml uploaded through the API, processed by a real worker ---------------------------------


def test_an_eml_uploaded_through_the_api_is_processed_by_the_worker_and_found_by_its_subject(
    engines, api, owner, worker_env, start_worker, tmp_path
):
    start_worker(worker_env)
    message = mail(subject="Zeppelin maintenance schedule")
    message.set_content("The airship is inspected every spring.")
    upload = SimpleUploadedFile("schedule.eml", bytes(message), content_type="application/octet-stream")

    response = api.post("/api/ui-upload", {"file": upload}, format="multipart")

    assert response.status_code == 200, response.content
    document_id = response.json()["document_id"]
    wait_until(
        lambda: Document.objects.filter(
            pk=document_id, status__in=[DocumentStatus.COMPLETED, DocumentStatus.FAILED]
        ).exists(),
        timeout=180,
        what=f"document {document_id} to finish",
        details=log_tails(tmp_path),
    )
    document = Document.objects.get(pk=document_id)
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.mime_type == "message/rfc822"
    found = wait_until(
        lambda: search(viewer=Viewer(owner), query="Zeppelin").results,
        timeout=60,
        what="the mail to be found by a word of its subject",
        details=log_tails(tmp_path),
    )
    assert [hit.document.pk for hit in found] == [document_id]
