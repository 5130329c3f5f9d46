"""The engines that read documents (LibreOffice, pdftotext) run with their address space
capped: one that passes its cap fails its document with a reason that names the cap, and
an ordinary document converts within it."""

from __future__ import annotations

import pytest

from documents.models import DocumentStatus, ProcessingStep, StepStatus
from documents.pipeline import pdf
from documents.pipeline.converters import libreoffice
from documents.pipeline.isolation import memory_cap_note
from documents.tests.conftest import stored_bytes
from documents.tests.samples import ODT_TEXT, text_pdf

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def failed_step(document) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, status=StepStatus.FAILURE)


@pytest.mark.parametrize(
    "cap_mib",
    [
        64,  # too little to map its libraries: it cannot start
        200,  # it starts, and loading the document passes the cap (it then exits 0 with no PDF)
    ],
)
def test_libreoffice_over_its_memory_cap_fails_the_document_with_the_cap_in_the_reason(
    process, samples, monkeypatch, cap_mib
):
    content = (samples / "report.odt").read_bytes()
    monkeypatch.setattr(libreoffice, "LIBREOFFICE_MEMORY_LIMIT", cap_mib * MIB)

    document = process(content, "report.odt")

    assert document.status == DocumentStatus.FAILED
    assert "LibreOffice" in document.error
    assert f"{cap_mib} MiB of memory" in document.error
    assert failed_step(document).name == "convert"
    assert stored_bytes(document.original_file) == content


def test_the_same_document_converts_within_libreoffices_real_cap(process, samples):
    document = process(samples / "report.odt")
    assert document.status == DocumentStatus.COMPLETED, document.error
    assert ODT_TEXT[0] in document.ocr_text


def test_pdftotext_over_its_memory_cap_fails_the_document_with_the_cap_in_the_reason(process, monkeypatch):
    content = text_pdf("The allotment society meets on the first Saturday of June, at ten.")
    # Under 16 MiB it cannot map its libraries (it reads a page of text within 24 MiB).
    monkeypatch.setattr(pdf, "PDFTOTEXT_MEMORY_LIMIT", 8 * MIB)

    document = process(content, "text.pdf")

    assert document.status == DocumentStatus.FAILED
    assert "The PDF's text could not be read (pdftotext exit" in document.error
    assert "at most 8 MiB of memory" in document.error
    assert stored_bytes(document.original_file) == content


@pytest.mark.parametrize(
    ("returncode", "named"),
    [(1, False), (0, False), (125, False), (127, True), (134, True), (-9, True), (-11, True)],
)
def test_only_an_abnormal_end_names_the_memory_cap(returncode, named):
    # A damaged file's exit 1 says enough by itself; an abort, a crash or a library that
    # could not be loaded is how a refused allocation shows.
    assert bool(memory_cap_note(returncode, 512 * MIB)) is named
