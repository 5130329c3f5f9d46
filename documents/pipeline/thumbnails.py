"""A small picture of a document's first page, for the files grid and the search results.

Poppler's ``pdftoppm`` renders it, isolated like the converters (``run_isolated``: no
network, a bare environment) and bounded three ways, because the PDF is hostile input:

- the page is scaled to THUMBNAIL_WIDTH pixels wide and cropped to THUMBNAIL_MAX_HEIGHT,
  so a page box of 3 x 14,400 points cannot ask for a bitmap of a million rows (pdftoppm
  renders only the cropped slice; uncropped, it answered such a page with a broken file
  and exit status 0 once out of memory);
- its address space is capped (THUMBNAIL_MEMORY_LIMIT); a 30,000 x 30,000 pixel image on
  the page is decoded a row at a time well inside it;
- a timeout kills it.

What it wrote is checked from the PNG's header and end alone (no decoder reads it here).
A thumbnail is a convenience: when one cannot be made the document still completes, the
reason is logged and the pages show a placeholder.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

from documents import storage
from documents.models import Document
from documents.pipeline.base import StepFailed
from documents.pipeline.isolation import run_isolated

logger = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 300
# Taller than an A4 page at this width (300 x 424); a longer page shows its top.
THUMBNAIL_MAX_HEIGHT = 480
THUMBNAIL_TIMEOUT = 60.0
# pdftoppm renders a first page in about 10 MB; this leaves room for large images and fonts.
THUMBNAIL_MEMORY_LIMIT = 512 * 1024 * 1024
CONTENT_TYPE = "image/png"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The last chunk of every complete PNG: length 0, type IEND, and its fixed CRC.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def thumbnail_render(*, pdf: Path, scratch: Path) -> Path:
    """The first page of ``pdf`` as a PNG in ``scratch``; StepFailed saying why when there is none."""
    stem = scratch / "thumbnail"
    command = [
        "pdftoppm", "-f", "1", "-l", "1", "-png", "-singlefile",
        "-scale-to-x", str(THUMBNAIL_WIDTH), "-scale-to-y", "-1",
        "-x", "0", "-y", "0", "-W", str(THUMBNAIL_WIDTH), "-H", str(THUMBNAIL_MAX_HEIGHT),
        str(pdf), str(stem),
    ]  # fmt: skip
    run_isolated(
        command, timeout=THUMBNAIL_TIMEOUT, what="pdftoppm", home=scratch, memory_limit=THUMBNAIL_MEMORY_LIMIT
    )
    produced = stem.with_suffix(".png")
    width, height = _png_size(produced)
    if not (0 < width <= THUMBNAIL_WIDTH and 0 < height <= THUMBNAIL_MAX_HEIGHT):
        raise StepFailed(f"pdftoppm made a picture of {width} x {height} pixels, not a thumbnail.")
    return produced


def thumbnail_make(*, document: Document, scratch: Path) -> str | None:
    """Render the first page of ``document``'s processed PDF and store it as its thumbnail.

    Returns None once it is stored, else the reason it could not be made (also logged). A
    thumbnail from an earlier run is removed then, so the pages show the placeholder rather
    than a picture of another version of the document.
    """
    name = storage.thumbnail_name(document.uuid)
    try:
        with storage.local_copy(document.processed_file) as pdf:
            picture = thumbnail_render(pdf=pdf, scratch=scratch)
    except (StepFailed, OSError) as error:
        reason = error.message if isinstance(error, StepFailed) else f"{error.__class__.__name__}: {error}"
        logger.warning("document %s: no thumbnail: %s", document.pk, reason)
        storage.delete(name)
        return reason
    storage.store_file(picture, name)
    return None


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header, once its last chunk shows it was written whole."""
    try:
        with path.open("rb") as handle:
            header = handle.read(24)
            handle.seek(max(0, path.stat().st_size - len(PNG_END)))
            end = handle.read()
    except FileNotFoundError:
        raise StepFailed("pdftoppm wrote no picture.") from None
    if len(header) < 24 or not header.startswith(PNG_SIGNATURE) or header[12:16] != b"IHDR":
        raise StepFailed("pdftoppm wrote something that is not a PNG.")
    if end != PNG_END:
        raise StepFailed("pdftoppm stopped before the picture was complete.")
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)
