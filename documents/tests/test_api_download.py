"""GET /api/files/{id}/download and /preview: real files, really processed, with their names."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote

import pytest

from documents.tests.conftest import stored_bytes

pytestmark = pytest.mark.django_db

NON_ASCII_NAME = "Grüße \N{EN DASH} Rechnung.pdf"


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def disposition(response) -> tuple[str, str | None]:
    """The disposition type and the file name a browser takes from the header: per RFC 6266
    ``filename*`` when present, else ``filename``."""
    header = response["Content-Disposition"]
    kind = header.split(";", 1)[0].strip()
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", header, re.IGNORECASE)
    if extended:
        return kind, unquote(extended.group(1))
    plain = re.search(r'filename="((?:[^"\\]|\\.)*)"', header)
    return kind, plain.group(1) if plain else None


def test_the_download_of_a_processed_document_is_its_processed_pdf_named_after_that_file(
    api, process, trivial
):
    document = process(trivial, "scan.pdf")
    assert document.processed_file

    response = api.get(f"/api/files/{document.pk}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert disposition(response) == ("attachment", PurePosixPath(document.processed_file).name)
    assert body_of(response) == stored_bytes(document.processed_file)
    assert int(response["Content-Length"]) == len(stored_bytes(document.processed_file))


def test_the_original_version_is_the_uploaded_file_under_its_uploaded_name(api, process, trivial):
    document = process(trivial, "scan.pdf")

    response = api.get(f"/api/files/{document.pk}/download", {"version": "original"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert disposition(response) == ("attachment", "scan.pdf")
    assert response["Content-Disposition"] == 'attachment; filename="scan.pdf"'
    assert body_of(response) == trivial.read_bytes()


def test_a_non_ascii_name_survives_the_download_with_an_ascii_fallback(api, ingest, trivial):
    document = ingest(trivial, NON_ASCII_NAME)

    response = api.get(f"/api/files/{document.pk}/download", {"version": "original"})

    assert response.status_code == 200
    assert disposition(response) == ("attachment", NON_ASCII_NAME)
    header = response["Content-Disposition"]
    assert header.isascii()
    assert "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%E2%80%93%20Rechnung.pdf" in header
    assert header.startswith('attachment; filename="Grusse Rechnung.pdf"; ')


def test_an_unprocessed_document_downloads_its_original_and_has_no_processed_version(api, ingest, samples):
    document = ingest(samples / "scan.png")

    default = api.get(f"/api/files/{document.pk}/download")
    processed = api.get(f"/api/files/{document.pk}/download", {"version": "processed"})

    assert default.status_code == 200
    assert default["Content-Type"] == "image/png"
    assert disposition(default) == ("attachment", "scan.png")
    assert body_of(default) == (samples / "scan.png").read_bytes()
    assert processed.status_code == 404
    assert processed.json() == {"detail": "This document has no processed file yet."}


def test_an_unknown_version_is_a_400(api, ingest, trivial):
    document = ingest(trivial)

    response = api.get(f"/api/files/{document.pk}/download", {"version": "thumbnail"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("version:")


def test_a_missing_stored_file_is_a_json_404_not_a_server_error(api, ingest, trivial, document_storage):
    document = ingest(trivial)
    (document_storage / document.original_file).unlink()

    response = api.get(f"/api/files/{document.pk}/download")

    assert response.status_code == 404
    assert "missing" in response.json()["detail"]


def test_the_preview_is_the_processed_pdf_inline(api, process, trivial):
    document = process(trivial, NON_ASCII_NAME)

    response = api.get(f"/api/files/{document.pk}/preview")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert disposition(response) == ("inline", PurePosixPath(document.processed_file).name)
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert body_of(response) == stored_bytes(document.processed_file)


def test_before_processing_a_pdf_previews_as_its_original(api, ingest, trivial):
    document = ingest(trivial, NON_ASCII_NAME)

    response = api.get(f"/api/files/{document.pk}/preview")

    assert response.status_code == 200
    assert disposition(response) == ("inline", NON_ASCII_NAME)
    assert body_of(response) == trivial.read_bytes()


def csp_directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def test_the_preview_is_sandboxed_so_a_pdf_shown_inline_cannot_act_as_the_site(api, ingest, trivial):
    # Not processed yet: the preview is the original, with whatever active content it carries.
    document = ingest(trivial)

    response = api.get(f"/api/files/{document.pk}/preview")

    assert response.status_code == 200
    policy = csp_directives(response)
    assert policy["sandbox"] == []  # no allow-scripts, no allow-same-origin: an opaque origin
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'self'"]  # the document page still frames it


def test_before_processing_anything_but_a_pdf_has_no_preview(api, ingest, samples):
    document = ingest(samples / "scan.png")

    response = api.get(f"/api/files/{document.pk}/preview")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no PDF to preview" in response.json()["detail"]


def test_a_duplicate_downloads_the_content_of_its_first_copy(api, ingest, trivial):
    ingest(trivial, "first.pdf")
    duplicate = ingest(trivial, "second.pdf")

    response = api.get(f"/api/files/{duplicate.pk}/download")

    assert response.status_code == 200
    assert disposition(response) == ("attachment", "second.pdf")
    assert body_of(response) == trivial.read_bytes()
