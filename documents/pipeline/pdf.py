"""Facts about PDF files that several steps need, with readable errors for broken ones."""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import pikepdf
from django.conf import settings

from documents.pipeline.base import StepFailed, StepInputTooLarge
from documents.pipeline.inspection import pdf_large_image
from documents.pipeline.isolation import engine_environment, memory_cap_note, memory_capped

logger = logging.getLogger(__name__)

# A page with fewer visible characters than this has no real text layer (a stray page
# number or a scanner's stamp does not make a scan searchable).
MIN_TEXT_CHARACTERS_PER_PAGE = 20
# pdftotext's address space: it read the six pages of the corpus's multipage.pdf within 24 MiB
# (it does not start under 16 MiB); the rest is room for large fonts and long pages.
PDFTOTEXT_MEMORY_LIMIT = 512 * 1024 * 1024


def check_pdf(path: Path) -> int:
    """Open a PDF the way the pipeline will use it and return its page count.

    Raises StepFailed with the reason a user can act on: protected, unreadable, empty;
    StepInputTooLarge when it is longer than MAX_PAGES or holds an image of more than
    MAX_IMAGE_PIXELS pixels, measured from its dictionaries before anything decodes it.
    """
    try:
        with pikepdf.open(path) as pdf:
            pages = len(pdf.pages)
            large_image = _large_image(pdf) if 0 < pages <= settings.MAX_PAGES else None
    except pikepdf.PasswordError:
        raise StepFailed("The PDF is password-protected; remove the password and upload it again.") from None
    except (pikepdf.PdfError, ValueError) as exc:
        # qpdf starts its messages with the file's path, which is nobody's business.
        reason = _first_line(exc).replace(f"{path}: ", "").replace(str(path), "the file")
        raise StepFailed(f"The file is not a readable PDF ({reason}).") from None
    if pages == 0:
        raise StepFailed("The PDF has no pages.")
    if pages > settings.MAX_PAGES:
        raise StepInputTooLarge(
            f"The document has {pages} pages; the limit (MAX_PAGES) is {settings.MAX_PAGES}."
        )
    if large_image:
        raise StepInputTooLarge(large_image)
    return pages


def _large_image(pdf: pikepdf.Pdf) -> str | None:
    try:
        return pdf_large_image(pdf)
    except (pikepdf.PdfError, ValueError, TypeError, RecursionError) as exc:
        # A structure the inspection cannot read is left to the engines' memory limits,
        # which hold for any input; a readable file is not refused for it.
        logger.warning("PDF inspection stopped: %s", _first_line(exc))
        return None


def page_texts(path: Path, *, timeout: float = 120) -> list[str]:
    """The text layer of every page, in order (poppler's pdftotext, fast and faithful)."""
    try:
        result = subprocess.run(
            memory_capped(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], PDFTOTEXT_MEMORY_LIMIT),
            capture_output=True,
            timeout=timeout,
            env=engine_environment(Path(tempfile.gettempdir())),
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else "pdftotext failed"
        note = memory_cap_note(exc.returncode, PDFTOTEXT_MEMORY_LIMIT)
        raise StepFailed(
            f"The PDF's text could not be read (pdftotext exit {exc.returncode}: {detail}).{note}"
        ) from None
    except subprocess.TimeoutExpired:
        raise StepFailed("Reading the PDF's text took too long.") from None
    pages = result.stdout.decode("utf-8", "replace").split("\f")
    # pdftotext ends every page with a form feed, so the last piece is what follows the last.
    return pages[:-1] if len(pages) > 1 else pages


def has_text(page_text: str) -> bool:
    return sum(not character.isspace() for character in page_text) >= MIN_TEXT_CHARACTERS_PER_PAGE


def is_garbled(page_text: str) -> bool:
    """True for a text layer that cannot be real text, so the page needs OCR after all.

    Catches the common breakages of a font's Unicode map: byte-swapped UTF-16 (ASCII
    letters turned into CJK ideographs that all end in 0x00), private-use code points,
    replacement characters and control characters.
    """
    characters = [character for character in page_text if not character.isspace()]
    if not characters:
        return False
    suspicious = sum(
        1
        for character in characters
        if (ord(character) > 0xFF and ord(character) & 0xFF == 0)
        or 0xE000 <= ord(character) <= 0xF8FF
        or character == "\ufffd"
        or ord(character) < 0x20
    )
    return suspicious / len(characters) > 0.3


def page_needs_ocr(page_text: str) -> bool:
    return not has_text(page_text) or is_garbled(page_text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__
