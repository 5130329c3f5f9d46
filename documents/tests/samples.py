"""The test documents, of the project's own making: built on first use, never downloaded.

Each stands for a kind of file the pipeline meets, and knows the text it carries, so a
test can prove that OCR read what is on the page. Scans are text rendered with Pillow in
DejaVu Sans (Debian's fonts-dejavu-core, which scripts/install-system-packages.sh
installs) at a size tesseract reads without fail; PDFs with a text layer come from fpdf2
or pikepdf. Nothing here runs a system program, so a test that only needs a file needs
none of them.

==================  ======================================================================
``blank.pdf``       one empty page, a few hundred bytes: processed in a moment
``no-docinfo.pdf``  a page with a text layer and no document information: no OCR needed
``outline.pdf``     two pages with text, a picture and bookmarks: processed without error
``invalid.pdf``     a PDF header followed by EOF, nothing else: a clear failure
``scan.png``        an image-only product sheet (``SCAN_TEXT``): converted, then read
``scan.pdf``        the same scan as an image-only PDF: OCR reads ``SCAN_TEXT``
``skewed-scan.pdf`` the scan turned by 3 degrees: straightened, then read
``fax-scan.pdf``    the scan as a 1-bit CCITT Group 4 (fax) image: read
``typewritten.png`` a typewritten note (``TYPEWRITTEN_TEXT``) on greyish paper: read
``mixed.pdf``       six pages, scans but page 4, which has text: 1-3, 5 and 6 OCRed
``francais.pdf``    a scan of French text (``FRENCH_TEXT``): read
``cmyk.pdf``        CMYK colour patches, labelled, under a garbled text layer: OCR replaces it
``report.odt``      an OpenDocument text with a table and its caption (``ODT_TEXT``)
``damaged.odt``     ``report.odt`` with one byte of its thumbnail lost: repaired, converted
==================  ======================================================================
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import img2pdf
import pikepdf
from fpdf import FPDF
from pikepdf import Dictionary, Name
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SANS = FONTS / "DejaVuSans.ttf"
MONO = FONTS / "DejaVuSansMono.ttf"
DPI = 300

# A product sheet of a made-up instrument: one word no dictionary has, one line that must
# come out whole, and running text with the common words the rotation check looks for. A
# page of it, as scanners deliver: with a few lines only, the turned copy (sideways,
# upside down) gives the page checks too little to go on.
SCAN_TEXT = """\
ChronoScribe Model 32
Sixteen Track MIDI Sequence Recorder
The ChronoScribe records what you play on any polyphonic
keyboard and plays it back in perfect time, like a
multitrack tape recorder for MIDI. Each track holds up to
sixty thousand notes, and every song is saved to disk.
Quantize, transpose and loop a track while it plays.
Specifications
Tracks: sixteen, each on its own MIDI channel
Memory: sixty thousand notes, backed up by a battery
Tempo: from 30 to 250 beats per minute, or from a tape sync
Storage: a floppy disk drive for one hundred songs
Connections: two MIDI inputs, four outputs and a footswitch
Size and weight: 45 by 30 by 9 centimetres, 4.5 kilograms
Ask your dealer for a demonstration of the ChronoScribe today."""
# An A5 page at 300 dpi, in pixels.
A5 = (1748, 2480)

TYPEWRITTEN_TEXT = """\
Dear Margaret, the parcel with the seeds arrived on
Tuesday and the children planted them at once in the
long bed behind the shed. We expect the first beans by
the end of June if the weather stays kind to us.
With love from all of us at the farm, Robert"""

FRENCH_TEXT = """\
Portez ce vieux whisky au juge blond qui fume.
Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva
de crapaüter en canoë au delà des îles, près du mälström."""

# One page of text per page of mixed.pdf; page 4 is the one with a text layer.
MIXED_PAGES = (
    "Page one. The lighthouse keeper wrote in his log every night.",
    "Page two. A storm came in from the west and did not stop.",
    "Page three. The supply boat was late for the second week.",
    "Page four. This page was typed on a computer, not scanned.",
    "Page five. At last the harbour master sent word to the island.",
    "Page six. The keeper went ashore for the first time in a year.",
)
CMYK_LABELS = ("Cyan", "Magenta", "Yellow", "Black")
ODT_TEXT = ("Allotment society annual report", "Table 1: Harvest by month")
ODT = "application/vnd.oasis.opendocument.text"


class Samples:
    """A folder of test documents, each made the first time a test asks for it.

    ``samples / "scan.pdf"`` is the path of that document, as with a folder of files.
    ``missing`` is called with the reason when a document cannot be made here (the fonts
    are not installed); the tests pass the helper that skips, or fails under CI.
    """

    def __init__(self, folder: Path, *, missing: Callable[[str], None]) -> None:
        self.folder = folder
        self.missing = missing

    def __truediv__(self, name: str) -> Path:
        path = self.folder / name
        if not path.exists():
            if name not in BUILDERS:
                raise KeyError(f"no sample document {name!r}; there are {', '.join(BUILDERS)}")
            if name in RENDERED and not (SANS.exists() and MONO.exists()):
                self.missing(f"the DejaVu fonts are not in {FONTS} (Debian package fonts-dejavu-core)")
            path.write_bytes(BUILDERS[name]())
        return path


# --- PDFs with a text layer, and broken ones ------------------------------------------------


def blank_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(300, 300))
    return _saved(pdf)


def text_pdf(text: str, *, pages: int = 1) -> bytes:
    """Pages with a real text layer (Helvetica), so the OCR step keeps them as they are."""
    document = FPDF(format="A4")
    document.set_font("Helvetica", size=12)
    for number in range(1, pages + 1):
        document.add_page()
        document.multi_cell(0, 8, text if pages == 1 else f"{text} (page {number})")
    return bytes(document.output())


def no_docinfo_pdf() -> bytes:
    with pikepdf.open(io.BytesIO(text_pdf("This file has no document information dictionary."))) as pdf:
        del pdf.trailer.Info
        return _saved(pdf)


def outline_pdf() -> bytes:
    document = FPDF(format="A4")
    document.set_font("Helvetica", size=12)
    for number, title in enumerate(("Introduction", "Contents of the box"), start=1):
        document.add_page()
        document.start_section(title)
        document.multi_cell(0, 8, f"Chapter {number}: {title}. " * 4)
        document.image(_png(_picture()), w=40)
    return bytes(document.output())


def invalid_pdf() -> bytes:
    return b"%PDF-1.7\n%%EOF\n"


# --- Scans: text rendered to pixels, no text layer -------------------------------------------


def _render(
    lines: list[str],
    *,
    font: Path = SANS,
    size: int = 42,
    margin: int = 120,
    paper: int = 255,
    page: tuple[int, int] | None = None,
) -> Image.Image:
    """Black text on a white page (``paper`` grey), as a 300 dpi scanner sees it; the page
    is just large enough for the text unless ``page`` gives its size in pixels."""
    typeface = ImageFont.truetype(str(font), size)
    line_height = int(size * 1.6)
    width = max(int(typeface.getlength(line)) for line in lines) + 2 * margin
    size_needed = (width, len(lines) * line_height + 2 * margin)
    image = Image.new("L", page or size_needed, paper)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((margin, margin + row * line_height), line, font=typeface, fill=0)
    return image


def _picture() -> Image.Image:
    """A small picture without text (no font needed): a grey gradient with a dark frame."""
    image = Image.linear_gradient("L").resize((160, 120))
    ImageDraw.Draw(image).rectangle([4, 4, 155, 115], outline=0, width=4)
    return image


def _png(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(DPI, DPI))
    buffer.seek(0)
    return buffer


def _image_pdf(*images: Image.Image) -> bytes:
    """One image-only page per image, at 300 dpi (img2pdf embeds the pixels unchanged)."""
    return img2pdf.convert([_png(image).getvalue() for image in images])


def _scan() -> Image.Image:
    # 40 px (10 pt): the first pass over a sideways copy of this page reads garbage, which
    # the rotation check recognises. At some other sizes it reads nothing at all, and a
    # page without text is never checked for rotation (a limit of the OCR step).
    return _render(SCAN_TEXT.splitlines(), size=40, page=A5)


def scan_png() -> bytes:
    return _png(_scan()).getvalue()


def scan_pdf() -> bytes:
    return _image_pdf(_scan())


def skewed_scan_pdf() -> bytes:
    scan = _scan()
    return _image_pdf(scan.rotate(3, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255))


def fax_scan_pdf() -> bytes:
    """The scan as a fax machine sends it: 1 bit per pixel, CCITT Group 4 encoded."""
    buffer = io.BytesIO()
    scan = _scan().convert("1")
    scan.save(buffer, format="TIFF", compression="group4", dpi=(DPI, DPI))
    return img2pdf.convert(buffer.getvalue())


def typewritten_png() -> bytes:
    """Typewriter-like text on greyish paper, slightly soft, as a phone photographs it."""
    page = _render(TYPEWRITTEN_TEXT.splitlines(), font=MONO, size=40, paper=232)
    return _png(page.filter(ImageFilter.GaussianBlur(0.8))).getvalue()


def french_pdf() -> bytes:
    return _image_pdf(_render(FRENCH_TEXT.splitlines()))


def mixed_pdf() -> bytes:
    """Six pages: five scans and, as page 4, a page with its own text layer."""
    result = pikepdf.new()
    for number, text in enumerate(MIXED_PAGES, start=1):
        content = text_pdf(text) if number == 4 else _image_pdf(_render([text]))
        with pikepdf.open(io.BytesIO(content)) as part:
            result.pages.extend(part.pages)
    return _saved(result)


def cmyk_pdf() -> bytes:
    """Labelled CMYK colour patches under a text layer whose font maps every character to a
    byte-swapped code (the letter A reads as U+4100): no real text looks like that."""
    typeface = ImageFont.truetype(str(SANS), 48)
    inks = {
        "Cyan": (255, 0, 0, 0), "Magenta": (0, 255, 0, 0), "Yellow": (0, 0, 255, 0), "Black": (0, 0, 0, 255),
    }  # fmt: skip
    image = Image.new("CMYK", (1600, 500), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for column, label in enumerate(CMYK_LABELS):
        left = 100 + column * 370
        draw.rectangle([left, 100, left + 250, 300], fill=inks[label])
        draw.text((left, 340), label, font=typeface, fill=(0, 0, 0, 255))
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=92, dpi=(DPI, DPI))

    pdf = pikepdf.new()
    width, height = image.width * 72 / DPI, image.height * 72 / DPI
    page = pdf.add_blank_page(page_size=(width, height))
    picture = pikepdf.Stream(
        pdf, jpeg.getvalue(), Type=Name.XObject, Subtype=Name.Image, Width=image.width,
        Height=image.height, ColorSpace=Name.DeviceCMYK, BitsPerComponent=8, Filter=Name.DCTDecode,
        # Adobe's CMYK JPEGs, which Pillow writes, store the inks inverted.
        Decode=[1, 0, 1, 0, 1, 0, 1, 0],
    )  # fmt: skip
    swapped = "".join(f"<{code:02X}> <{code:02X}00>\n" for code in range(32, 127))
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CMapName /Swapped def 1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"95 beginbfchar\n{swapped}endbfchar\nendcmap CMapName currentdict /CMap defineresource pop end end"
    )
    font = Dictionary(
        Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica,
        ToUnicode=pikepdf.Stream(pdf, cmap.encode()),
    )  # fmt: skip
    page.obj.Resources = Dictionary(XObject=Dictionary(Im0=picture), Font=Dictionary(F1=font))
    hidden = "BT 3 Tr /F1 10 Tf 20 20 Td (Cyan Magenta Yellow Black, printed in four inks) Tj ET"
    page.obj.Contents = pdf.make_stream(f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q {hidden}".encode())
    return _saved(pdf)


# --- OpenDocument text --------------------------------------------------------------------------


def report_odt() -> bytes:
    """A small OpenDocument text as office programs write it, thumbnail included."""
    heading, caption = ODT_TEXT
    rows = "".join(
        f"<table:table-row><table:table-cell><text:p>{month}</text:p></table:table-cell>"
        f"<table:table-cell><text:p>{kilos} kg</text:p></table:table-cell></table:table-row>"
        for month, kilos in (("June", 40), ("July", 85), ("August", 120))
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">'
        f'<office:body><office:text><text:h text:outline-level="1">{heading}</text:h>'
        "<text:p>The members of the society grew more vegetables this year than in any year before.</text:p>"
        f'<table:table table:name="Harvest"><table:table-column table:number-columns-repeated="2"/>{rows}'
        f"</table:table><text:p>{caption}</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODT}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="Thumbnails/thumbnail.png" manifest:media-type="image/png"/>'
        "</manifest:manifest>"
    )
    styles = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-styles xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
        ' xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.2">'
        '<office:styles><style:default-style style:family="paragraph">'
        '<style:text-properties fo:font-size="12pt"/></style:default-style></office:styles>'
        "</office:document-styles>"
    )
    thumbnail = _png(_picture()).getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # In the order office programs write them: the mimetype first and stored, the
        # thumbnail stored, the styles right after it.
        archive.writestr("mimetype", ODT, compress_type=zipfile.ZIP_STORED)
        archive.writestr("Thumbnails/thumbnail.png", thumbnail, compress_type=zipfile.ZIP_STORED)
        archive.writestr("styles.xml", styles, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def damaged_odt() -> bytes:
    """``report.odt`` with one byte of its thumbnail lost, as a bad transfer loses it: every
    entry after it, and the directory, now lie one byte before where the directory says.

    Rebuilt from its entries, it loses the styles that follow the thumbnail (their header
    is read as the thumbnail's last byte); the text, further on, survives."""
    data = report_odt()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        thumbnail = archive.getinfo("Thumbnails/thumbnail.png")
    header = thumbnail.header_offset
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    start = header + 30 + name_length + extra_length
    lost = start + thumbnail.compress_size // 2
    return data[:lost] + data[lost + 1 :]


def _saved(pdf: pikepdf.Pdf) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


# The documents whose text is rendered with the DejaVu fonts.
RENDERED = frozenset(
    {
        "scan.png", "scan.pdf", "skewed-scan.pdf", "fax-scan.pdf", "typewritten.png", "mixed.pdf",
        "francais.pdf", "cmyk.pdf",
    }
)  # fmt: skip
BUILDERS: dict[str, Callable[[], bytes]] = {
    "blank.pdf": blank_pdf,
    "no-docinfo.pdf": no_docinfo_pdf,
    "outline.pdf": outline_pdf,
    "invalid.pdf": invalid_pdf,
    "scan.png": scan_png,
    "scan.pdf": scan_pdf,
    "skewed-scan.pdf": skewed_scan_pdf,
    "fax-scan.pdf": fax_scan_pdf,
    "typewritten.png": typewritten_png,
    "mixed.pdf": mixed_pdf,
    "francais.pdf": french_pdf,
    "cmyk.pdf": cmyk_pdf,
    "report.odt": report_odt,
    "damaged.odt": damaged_odt,
}
