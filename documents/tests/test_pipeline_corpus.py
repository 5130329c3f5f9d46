"""The whole pipeline, in process, with the real engines on the sample documents."""

from __future__ import annotations

import json

import pikepdf
import pytest

from documents.models import DocumentStatus, StepStatus
from documents.tests.conftest import stored_bytes

pytestmark = pytest.mark.django_db


def step_statuses(document):
    return {step.name: step.status for step in document.steps.all()}


def test_a_scanned_pdf_becomes_searchable_and_is_filed(process, samples):
    document = process(samples / "scan.pdf")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "ChronoScribe" in document.ocr_text
    assert "Sixteen Track MIDI Sequence Recorder" in document.ocr_text
    assert document.processed_file.startswith("processed/")
    assert document.processed_file.endswith(".pdf")
    assert step_statuses(document)["convert"] == StepStatus.SKIPPED  # already a PDF
    assert step_statuses(document)["ocr"] == StepStatus.SUCCESS
    sidecar = json.loads(stored_bytes(document.processed_file.removesuffix(".pdf") + ".json"))
    assert sidecar["filehash"] == document.filehash
    assert sidecar["title"] == document.document_title


def test_the_processed_pdf_carries_the_metadata_and_a_text_layer(process, samples, tmp_path):
    document = process(samples / "scan.pdf")
    processed = tmp_path / "processed.pdf"
    processed.write_bytes(stored_bytes(document.processed_file))
    with pikepdf.open(processed) as pdf:
        assert str(pdf.docinfo["/Title"]) == document.document_title
        assert pdf.open_metadata()["dc:title"] == document.document_title
    import subprocess

    text = subprocess.run(["pdftotext", str(processed), "-"], capture_output=True, check=True).stdout.decode()
    assert "ChronoScribe" in text


def test_the_original_is_kept_unchanged(process, samples):
    document = process(samples / "scan.pdf")
    assert stored_bytes(document.original_file) == (samples / "scan.pdf").read_bytes()


def test_an_image_is_converted_then_ocred(process, samples):
    document = process(samples / "typewritten.png")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.mime_type == "image/png"
    assert step_statuses(document)["convert"] == StepStatus.SUCCESS
    assert document.page_count == 1
    assert len(document.ocr_text.split()) > 20


def test_an_opendocument_text_is_converted_with_libreoffice(process, samples):
    document = process(samples / "damaged.odt")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.mime_type == "application/vnd.oasis.opendocument.text"
    assert "Harvest by month" in document.ocr_text
    # Born-digital text needs no OCR.
    assert step_statuses(document)["ocr"] == StepStatus.SKIPPED


def test_a_mixed_pdf_gets_every_page_searchable_and_keeps_six_pages(process, samples, tmp_path):
    document = process(samples / "mixed.pdf")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "lighthouse" in document.ocr_text
    assert "harbour master" in document.ocr_text
    processed = tmp_path / "processed.pdf"
    processed.write_bytes(stored_bytes(document.processed_file))
    with pikepdf.open(processed) as pdf:
        assert len(pdf.pages) == 6
    ocr_log = document.logs.filter(step_name="ocr", status=StepStatus.SUCCESS).get()
    assert "page(s) 1, 2, 3, 5, 6 of 6" in ocr_log.message  # page 4 kept its own text


def test_french_diacritics_survive(process, samples):
    document = process(samples / "francais.pdf")
    assert document.status == DocumentStatus.COMPLETED, document.error
    words = " ".join(document.ocr_text.split())  # line breaks fall where the page has them
    assert "whisky" in words
    assert "juge blond" in words


def test_a_broken_text_layer_is_replaced_by_ocr(process, samples):
    document = process(samples / "cmyk.pdf")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "Magenta" in document.ocr_text


@pytest.mark.parametrize(
    "name", ["blank.pdf", "outline.pdf", "no-docinfo.pdf", "skewed-scan.pdf", "fax-scan.pdf"]
)
def test_odd_but_valid_pdfs_are_processed(process, samples, name):
    document = process(samples / name)
    assert document.status == DocumentStatus.COMPLETED, document.error


def test_a_sideways_scan_is_turned_upright_and_read(process, samples, tmp_path):
    sideways = tmp_path / "sideways.png"
    from PIL import Image

    with Image.open(samples / "scan.png") as image:
        image.rotate(90, expand=True).save(sideways)
    document = process(sideways)
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "ChronoScribe" in document.ocr_text
    assert (
        "checked rotation of page(s) 1"
        in document.logs.get(step_name="ocr", status=StepStatus.SUCCESS).message
    )


def test_a_skewed_scan_is_straightened(process, samples):
    document = process(samples / "skewed-scan.pdf")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "straightened page(s) 1" in document.logs.get(step_name="ocr", status=StepStatus.SUCCESS).message
    assert "ChronoScribe" in document.ocr_text


def test_a_phone_photo_in_heic_is_converted_and_read(process, samples, tmp_path):
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    photo = tmp_path / "photo.heic"
    with Image.open(samples / "scan.png") as image:
        image.convert("RGB").save(photo, quality=90)
    document = process(photo)
    assert document.mime_type == "image/heic"
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert "ChronoScribe" in document.ocr_text
