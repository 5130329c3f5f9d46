"""Bad input ends as a failed document with a readable reason; nothing is lost."""

from __future__ import annotations

import pytest

from documents.models import DocumentStatus, FailureKind, ProcessingStep, StepStatus
from documents.tests.conftest import (
    encrypted_pdf,
    lying_zip_docx,
    pdf_drawing_image,
    pdf_with_page_box,
    png_claiming_size,
    stored_bytes,
    zip_bomb_docx,
)

pytestmark = pytest.mark.django_db


def assert_failed_with_original_kept(document, content: bytes, reason: str) -> None:
    assert document.status == DocumentStatus.FAILED
    assert reason in document.error
    assert stored_bytes(document.original_file) == content
    assert not document.processed_file


def test_a_pdf_header_without_a_body_fails_clearly(process, samples):
    content = (samples / "invalid.pdf").read_bytes()
    document = process(content, "invalid.pdf")
    assert_failed_with_original_kept(document, content, "The file is not a readable PDF")
    assert "/" not in document.error.split("(", 1)[1]  # no server path in the reason


def test_an_empty_file_fails_clearly(process):
    document = process(b"", "empty.pdf")
    assert document.status == DocumentStatus.FAILED
    assert document.error == "The file is empty."


def test_a_password_protected_pdf_fails_clearly(process, samples, tmp_path):
    protected = encrypted_pdf(samples / "blank.pdf", tmp_path / "protected.pdf")
    content = protected.read_bytes()
    document = process(content, "protected.pdf")
    assert_failed_with_original_kept(document, content, "password-protected")


def test_a_decompression_bomb_image_is_refused(process):
    content = png_claiming_size(30000, 30000)
    document = process(content, "huge.png")
    assert_failed_with_original_kept(document, content, "refused as a possible decompression bomb")
    assert ProcessingStep.objects.get(document=document, name="convert").failure_kind == FailureKind.TOO_LARGE


def test_pages_and_images_over_max_image_pixels_fail_before_rendering_and_a_scan_still_completes(
    process, samples
):
    # One page, 1 KB: a 35,000 x 35,000 pixel image that took ocrmypdf's tree to 3.6 GB.
    bomb = pdf_drawing_image(35_000, 35_000)
    refused = process(bomb, "bomb.pdf")
    assert_failed_with_original_kept(
        refused, bomb, "35000 x 35000 pixels, more than 100000000 pixels (MAX_IMAGE_PIXELS)"
    )
    convert = ProcessingStep.objects.get(document=refused, name="convert")
    assert (convert.status, convert.failure_kind) == (StepStatus.FAILURE, FailureKind.TOO_LARGE)

    # A drawing on a page of 200 x 200 inches passes convert (no text: it needs OCR), and OCR
    # would render it at 80,000 x 80,000 pixels: the tesseract engine refuses it unrendered.
    wide = pdf_with_page_box(14_400, 14_400)
    huge_page = process(wide, "poster.pdf")
    assert_failed_with_original_kept(
        huge_page, wide, "would be rendered for OCR at 400 dpi as 80000 x 80000 pixels"
    )
    ocr = ProcessingStep.objects.get(document=huge_page, name="ocr")
    assert (ocr.status, ocr.failure_kind) == (StepStatus.FAILURE, FailureKind.TOO_LARGE)

    scan = process(samples / "scan.pdf")
    assert scan.status == DocumentStatus.COMPLETED, scan.error
    assert "ChronoScribe" in scan.ocr_text


def test_a_pdf_with_too_many_pages_is_refused(process, samples, settings):
    settings.MAX_PAGES = 3
    content = (samples / "mixed.pdf").read_bytes()
    document = process(content, "long.pdf")
    assert_failed_with_original_kept(
        document, content, "The document has 6 pages; the limit (MAX_PAGES) is 3"
    )


def test_a_zip_bomb_posing_as_docx_is_refused(process):
    content = zip_bomb_docx()
    document = process(content, "report.docx")
    assert_failed_with_original_kept(document, content, "refused as a possible zip bomb")


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("ü" * 300 + ".pdf", "ü" * 196 + ".pdf"),
    ],
)
def test_hostile_names_are_sanitised_and_never_reach_the_disk(
    process, samples, document_storage, hostile, expected
):
    document = process(samples / "blank.pdf", hostile)
    assert document.original_filename == expected
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.original_file.startswith("originals/")
    stored = [path.relative_to(document_storage) for path in document_storage.rglob("*") if path.is_file()]
    assert {path.parts[0] for path in stored} <= {"originals", "processed", "tmp", "cache", "broker"}
    assert all(part.isascii() and ".." not in part for path in stored for part in path.parts)
    assert sorted(path.name for path in document_storage.parent.iterdir()) == ["workdir"]


def test_one_bad_document_does_not_disturb_the_next(process, samples):
    failed = process(b"", "empty.pdf")
    good = process(samples / "blank.pdf")
    assert failed.status == DocumentStatus.FAILED
    assert good.status == DocumentStatus.COMPLETED


def test_a_zip_that_lies_about_its_sizes_is_refused_by_what_it_inflates_to(process):
    # Declares 400 KB inside 640 KB, which passes a check of the declared sizes; inflates to 629 MB.
    content = lying_zip_docx(declared=400 * 1024, inflated_megabytes=629)
    document = process(content, "invoice.docx")
    assert_failed_with_original_kept(document, content, "refused as a possible zip bomb")
