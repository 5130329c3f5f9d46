"""Folder templates: placeholders filled from a document, whose values are hostile."""

from __future__ import annotations

import datetime

import pytest

from destinations.paths import (
    MAX_SEGMENT_BYTES,
    folder_template_validate,
    folder_validate,
    remote_path,
    renamed_candidates,
    segment,
)
from docuelevate.errors import InvalidInput
from documents.models import Correspondent
from documents.tests.factories import DocumentFactory


@pytest.fixture
def document(owner):
    return DocumentFactory.build(
        owner=owner,
        processed_file="processed/abc/2024-03-12_Invoice.pdf",
        document_date=datetime.date(2024, 3, 12),
        document_type="Invoice",
        correspondent="ACME Corp",
        document_title="Invoice RE-4711",
    )


def path_for(document, template, folder="archive"):
    return remote_path(folder=folder, template=template, document=document)


def test_placeholders_are_filled_from_the_document(document):
    template = "{year}/{month}/{day}/{document_type}/{correspondent}/{owner}/{title}/{filename}"
    assert path_for(document, template) == (
        "archive/2024/03/12/Invoice/ACME Corp/owner/Invoice RE-4711/2024-03-12_Invoice.pdf"
    )


def test_a_template_without_filename_names_a_folder_and_the_file_keeps_its_name(document):
    assert path_for(document, "{year}/{document_type}") == "archive/2024/Invoice/2024-03-12_Invoice.pdf"
    assert path_for(document, "") == "archive/2024-03-12_Invoice.pdf"
    assert path_for(document, "", folder="") == "2024-03-12_Invoice.pdf"


def test_without_a_document_date_the_day_it_came_in_counts(document):
    document.document_date = None
    document.created_at = datetime.datetime(2023, 12, 31, 23, 30, tzinfo=datetime.UTC)
    assert path_for(document, "{year}-{month}-{day}/{filename}").startswith("archive/2023-12-31/")


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc",
        "../..",
        "..",
        "/etc/passwd",
        "a/../../b",
        "..\\..\\windows",
        "./.",
        "~/.ssh",
    ],
)
def test_a_value_that_looks_like_a_path_stays_one_folder_inside_the_destination(document, hostile):
    document.correspondent = Correspondent(name=hostile)
    path = path_for(document, "{correspondent}/{filename}")
    parts = path.split("/")
    assert parts[0] == "archive"
    assert len(parts) == 3, path  # archive / one segment / file
    assert parts[1] not in {"", ".", ".."}
    assert not parts[1].startswith(".")
    assert "\\" not in parts[1]


def test_control_characters_and_line_breaks_are_dropped(document):
    document.correspondent = Correspondent(name="ACME\r\nX-Injected: yes\x00\x1b[31m")
    path = path_for(document, "{correspondent}/{filename}")
    assert path == "archive/ACMEX-Injected_ yes[31m/2024-03-12_Invoice.pdf"


def test_empty_values_become_a_named_folder_not_an_empty_one(document):
    document.document_type = None
    document.correspondent = Correspondent(name="   ")
    document.document_title = "..."
    assert path_for(document, "{document_type}/{correspondent}/{title}") == (
        "archive/unknown/unknown/unknown/2024-03-12_Invoice.pdf"
    )


def test_long_values_are_shortened_by_bytes_and_the_file_keeps_its_extension(document):
    document.correspondent = Correspondent(name="Ä" * 500)  # two bytes each
    document.processed_file = "processed/abc/" + "x" * 400 + ".pdf"
    correspondent, filename = path_for(document, "{correspondent}/{filename}").split("/")[1:]
    assert len(correspondent.encode()) <= MAX_SEGMENT_BYTES
    assert correspondent == "Ä" * (MAX_SEGMENT_BYTES // 2)
    assert len(filename.encode()) <= MAX_SEGMENT_BYTES
    assert filename.endswith(".pdf")


def test_names_are_written_in_one_unicode_form(document):
    document.correspondent = Correspondent(name="Mu\u0308ller")  # u + combining diaeresis
    assert path_for(document, "{correspondent}").split("/")[1] == "M\u00fcller"


def test_reserved_characters_are_replaced(document):
    document.document_title = 'a<b>c:d"e|f?g*h'
    assert segment(document.document_title) == "a_b_c_d_e_f_g_h"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{year}/{author}", "{author}, which is not a placeholder"),
        ("{title.__class__}", "not a placeholder"),
        ("{title:>300}", "{title:>300}, which is not a placeholder"),
        ("{title!r}", "{title!r}, which is not a placeholder"),
        ("{0}", "{0}, which is not a placeholder"),
        ("{}", "not a placeholder"),
        ("{year", "unmatched"),
        ("../{year}", "contains a . or .. folder"),
        ("{year}/../../etc", "contains a . or .. folder"),
        ("{year}\\{title}", "backslash"),
        ("{year}/\x00", "control characters"),
        ("x" * 501, "longer than 500"),
    ],
)
def test_a_template_that_cannot_be_trusted_is_refused_when_saved(template, message):
    with pytest.raises(InvalidInput) as error:
        folder_template_validate(template)
    assert message in error.value.message


def test_a_brace_can_be_written_doubled(document):
    assert path_for(document, "{{x}}/{year}/{filename}") == "archive/{x}/2024/2024-03-12_Invoice.pdf"


def test_a_base_folder_is_normalised_and_may_not_climb():
    assert folder_validate("/scans//2024/") == "scans/2024"
    with pytest.raises(InvalidInput):
        folder_validate("scans/../../etc")


def test_renaming_numbers_the_name_before_the_extension():
    assert list(renamed_candidates("a/b/Invoice.pdf", limit=3)) == [
        "a/b/Invoice.pdf",
        "a/b/Invoice (2).pdf",
        "a/b/Invoice (3).pdf",
    ]
    assert list(renamed_candidates("Invoice.pdf", limit=2)) == ["Invoice.pdf", "Invoice (2).pdf"]
