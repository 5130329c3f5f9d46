"""Thumbnails: finalize pictures a document's first page with the real pdftoppm, bounded
against hostile pages; the page route and the API route hand it to whoever may see the
document; the files grid and the search results show it, or a placeholder."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pikepdf
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from fpdf import FPDF
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_create
from documents import storage
from documents.models import Document, DocumentStatus
from documents.pipeline.base import StepFailed
from documents.pipeline.runner import pipeline_run_sync
from documents.pipeline.thumbnails import THUMBNAIL_MAX_HEIGHT, THUMBNAIL_WIDTH, thumbnail_render
from documents.services import document_delete, document_reprocess
from documents.tests.conftest import store_thumbnail, stored_bytes
from documents.tests.factories import with_entries

pytestmark = pytest.mark.django_db


def landscape_then_portrait_pdf() -> bytes:
    """Two pages with text: a landscape first page and a portrait second one, so the
    picture's shape tells which page it shows."""
    document = FPDF(format="A4")
    document.set_font("Helvetica", size=24)
    document.add_page(orientation="L")
    document.multi_cell(0, 12, "The first page of this document, in landscape.")
    document.add_page(orientation="P")
    document.multi_cell(0, 12, "The second page, upright.")
    return bytes(document.output())


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def with_thumbnail(document: Document) -> Document:
    """``document`` as finalize leaves it: completed, with a thumbnail in the storage."""
    store_thumbnail(document)
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.COMPLETED)
    return Document.objects.get(pk=document.pk)


def session(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- Made in finalize, with the real pdftoppm ----------------------------------------------------


def test_finalize_stores_a_300_pixel_wide_picture_of_the_first_page(process, tmp_path: Path):
    source = tmp_path / "two-pages.pdf"
    source.write_bytes(landscape_then_portrait_pdf())

    document = process(source)

    assert document.status == DocumentStatus.COMPLETED
    image = picture(stored_bytes(storage.thumbnail_name(document.uuid)))
    assert image.format == "PNG"
    # A4 landscape at 300 pixels wide is about 212 high; the upright second page would be 424.
    assert image.width == THUMBNAIL_WIDTH
    assert abs(image.height - THUMBNAIL_WIDTH * 210 / 297) <= 1
    # Not a blank picture: the first page's text is on it.
    darkest, _lightest = image.convert("L").getextrema()
    assert isinstance(darkest, int)
    assert darkest < 100
    assert len(stored_bytes(storage.thumbnail_name(document.uuid))) < 60_000


def test_a_thumbnail_that_cannot_be_rendered_leaves_the_document_completed_and_says_why(
    process, trivial, monkeypatch, caplog
):
    def broken(command: list[str], **kwargs: object) -> None:
        raise StepFailed("pdftoppm failed (exit 1: Syntax Error: Couldn't read xref table).")

    monkeypatch.setattr("documents.pipeline.thumbnails.run_isolated", broken)

    document = process(trivial, "blank.pdf")

    assert document.status == DocumentStatus.COMPLETED
    assert storage.exists(document.processed_file)
    assert not storage.exists(storage.thumbnail_name(document.uuid))
    assert document.steps.get(name="finalize").status == "success"
    said = list(document.logs.filter(step_name="finalize").values_list("message", flat=True))
    assert any("no thumbnail (pdftoppm failed (exit 1" in message for message in said)
    assert "no thumbnail" in caplog.text


def test_reprocessing_replaces_the_thumbnail_and_a_failed_render_removes_the_old_one(
    process, trivial, monkeypatch
):
    document = process(trivial, "blank.pdf")
    name = storage.thumbnail_name(document.uuid)
    storage.store_bytes(b"an older picture", name)

    document_reprocess(document=document, enqueue=False)
    document = pipeline_run_sync(document_id=document.pk)

    assert picture(stored_bytes(name)).width == THUMBNAIL_WIDTH

    def broken(command: list[str], **kwargs: object) -> None:
        raise StepFailed("pdftoppm did not finish within 60 seconds.")

    monkeypatch.setattr("documents.pipeline.thumbnails.run_isolated", broken)
    document_reprocess(document=document, enqueue=False)
    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.COMPLETED
    assert not storage.exists(name)


def test_deleting_a_document_removes_its_thumbnail(
    process, trivial, django_capture_on_commit_callbacks, sent
):
    document = process(trivial, "blank.pdf")
    assert storage.exists(storage.thumbnail_name(document.uuid))

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)

    assert not storage.exists(storage.thumbnail_name(document.uuid))


# --- Hostile pages stay bounded ------------------------------------------------------------------


def tall_page_pdf(path: Path) -> Path:
    """One page 3 points wide and 14,400 high (PDF's largest): at 300 pixels wide, a bitmap of
    1.44 million rows unless the rendering is cropped."""
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(3, 14400))
        pdf.save(path)
    return path


def huge_image_pdf(path: Path, *, side: int = 20_000) -> Path:
    """A letter page filled by one grey image of ``side`` x ``side`` pixels, a few hundred KB
    packed and 400 MB unpacked."""
    packer = zlib.compressobj(9)
    row = b"\x80" * side
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(612, 792))
        image = pikepdf.Stream(pdf, data)
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = side, side
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
        image.Filter = pikepdf.Name.FlateDecode
        page = pdf.pages[0]
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q")
        pdf.save(path)
    return path


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("make", "size"),
    # The letter page at 300 pixels wide is 388 or 389 high, as pdftoppm rounds.
    [(tall_page_pdf, (THUMBNAIL_WIDTH, THUMBNAIL_MAX_HEIGHT)), (huge_image_pdf, (THUMBNAIL_WIDTH, 389))],
    ids=["a page 4800 times taller than wide", "a 20000 x 20000 pixel image"],
)
def test_a_hostile_page_still_gives_a_small_picture(
    make: Callable[[Path], Path], size: tuple[int, int], tmp_path: Path
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    produced = thumbnail_render(pdf=make(tmp_path / "hostile.pdf"), scratch=scratch)

    width, height = picture(produced.read_bytes()).size
    assert width == size[0]
    assert abs(height - size[1]) <= 1


# --- The page route ------------------------------------------------------------------------------


def test_the_owner_gets_the_picture_privately_cached(ingest, owner):
    document = with_thumbnail(ingest(b"This is a note with a picture.", "a.txt"))

    response = session(owner).get(f"/files/{document.pk}/thumbnail")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=86400"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert body_of(response) == stored_bytes(storage.thumbnail_name(document.uuid))


def test_without_a_thumbnail_the_route_answers_a_placeholder_cached_briefly(ingest, owner):
    document = ingest(b"This is a note not processed yet.", "a.txt")

    response = session(owner).get(f"/files/{document.pk}/thumbnail")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "private, max-age=60"
    assert body_of(response).startswith(b"<svg ")
    assert b"<script" not in body_of(response)


def test_another_users_thumbnail_is_a_404_and_an_operator_sees_it(
    ingest, owner, other_user, operator, settings
):
    settings.MULTI_USER_ENABLED = True
    document = with_thumbnail(ingest(b"This is a note with a picture.", "a.txt"))

    assert session(other_user).get(f"/files/{document.pk}/thumbnail").status_code == 404
    seen = session(operator).get(f"/files/{document.pk}/thumbnail")
    assert seen.status_code == 200
    assert seen["Content-Type"] == "image/png"


def test_an_anonymous_visitor_is_sent_to_log_in(client, ingest):
    document = with_thumbnail(ingest(b"This is a note with a picture.", "a.txt"))

    response = client.get(f"/files/{document.pk}/thumbnail")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- The API route -------------------------------------------------------------------------------


def token_client(user: User) -> APIClient:
    _, raw_token = token_create(user=user, name="gallery app")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client


def test_an_api_client_with_a_token_gets_the_png(ingest, owner):
    document = with_thumbnail(ingest(b"This is a note with a picture.", "a.txt"))

    response = token_client(owner).get(f"/api/files/{document.pk}/thumbnail")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private, ")
    assert body_of(response) == stored_bytes(storage.thumbnail_name(document.uuid))


def test_the_api_says_404_with_a_reason_while_there_is_no_thumbnail(ingest, owner, other_user, settings):
    settings.MULTI_USER_ENABLED = True
    document = ingest(b"This is a note not processed yet.", "a.txt")

    mine = token_client(owner).get(f"/api/files/{document.pk}/thumbnail")
    theirs = token_client(other_user).get(f"/api/files/{with_thumbnail(document).pk}/thumbnail")

    assert mine.status_code == 404
    assert mine.json() == {"detail": "This document has no thumbnail."}
    assert theirs.status_code == 404
    assert theirs.json() == {"detail": "No such document."}


# --- The files grid --------------------------------------------------------------------------


def thumbnail_sources(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"[^>]*loading="lazy"', html)


def test_the_grid_shows_a_card_per_document_with_its_lazy_thumbnail(ingest, owner):
    documents = [ingest(f"This is note number {number}.".encode(), f"n{number}.txt") for number in range(3)]
    Document.objects.filter(pk=documents[0].pk).update(
        **with_entries({"document_title": "March invoice", "document_type": "invoice"}, owner_id=owner.pk)
    )

    html = session(owner).get("/files", {"view": "grid"}).content.decode()

    cards = re.findall(r'<li class="file-card" data-document-id="(\d+)">', html)
    assert sorted(int(pk) for pk in cards) == sorted(document.pk for document in documents)
    sources = thumbnail_sources(html)
    assert len(sources) == 3
    assert {source.split("?v=")[0] for source in sources} == {
        f"/files/{document.pk}/thumbnail" for document in documents
    }
    assert "March invoice" in html
    assert "invoice" in html
    assert html.count('class="status-badge"') == 3
    assert "<table" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r" on[a-z]+=", html)


def test_the_grid_is_kept_across_pages_sorting_and_filters(ingest, owner):
    for number in range(26):
        ingest(f"This is note number {number}.".encode(), f"n{number}.txt")

    html = session(owner).get("/files", {"view": "grid", "per_page": "25", "search": "n"}).content.decode()

    assert 'name="view" value="grid"' in html  # the filter form sends it again
    next_link = re.search(r'<a href="([^"]*)" rel="next">', html)
    assert next_link is not None
    assert {"view=grid", "search=n", "page=2"} <= set(unescape(next_link.group(1)).lstrip("?").split("&"))
    sort_link = re.search(r'<a href="([^"]*)">Size</a>', html)
    assert sort_link is not None
    assert {"view=grid", "sort_by=file_size"} <= set(unescape(sort_link.group(1)).lstrip("?").split("&"))
    table_link = re.search(r'<a class="button" href="([^"]*)">Table</a>', html)
    assert table_link is not None
    assert "view=" not in table_link.group(1)
    assert "search=n" in unescape(table_link.group(1))
    assert re.search(r'href="\?[^"]*view=grid[^"]*"[^>]*aria-current="page">Grid', html)
    # The table links to the grid with the same filters.
    table = session(owner).get("/files", {"search": "n", "sort_by": "file_size"}).content.decode()
    grid_link = re.search(r'<a class="button" href="([^"]*)">Grid</a>', table)
    assert grid_link is not None
    assert {"view=grid", "search=n", "sort_by=file_size"} <= set(
        unescape(grid_link.group(1)).lstrip("?").split("&")
    )


def test_the_table_stays_the_default_view(ingest, owner):
    ingest(b"This is a note.", "a.txt")

    html = session(owner).get("/files").content.decode()

    assert "<table" in html
    assert 'class="file-grid"' not in html


@pytest.mark.parametrize("count", [3, 30])
def test_the_grid_costs_the_same_few_queries_for_3_or_30_documents(
    ingest, owner, count, django_assert_max_num_queries
):
    for number in range(count):
        ingest(f"This is note number {number}.".encode(), f"n{number}.txt")
    client = session(owner)

    # The same budget as the table (test_files_pages): the picture's address needs no query.
    with django_assert_max_num_queries(14):
        response = client.get("/files", {"per_page": "50", "view": "grid"})

    assert len(thumbnail_sources(response.content.decode())) == count


# --- manage.py thumbnails ------------------------------------------------------------------------


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("thumbnails", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_makes_the_missing_thumbnails_of_older_documents_only(process, trivial, tmp_path):
    older = process(trivial, "older.pdf")
    storage.delete(storage.thumbnail_name(older.uuid))  # filed before thumbnails existed
    other = tmp_path / "two-pages.pdf"
    other.write_bytes(landscape_then_portrait_pdf())
    recent = process(other)
    kept = stored_bytes(storage.thumbnail_name(recent.uuid))

    out, err = run_command("--missing")

    assert f"document {older.pk}: thumbnail made" in out
    assert "1 made, 0 failed, 1 already had one" in out
    assert err == ""
    assert picture(stored_bytes(storage.thumbnail_name(older.uuid))).width == THUMBNAIL_WIDTH
    assert stored_bytes(storage.thumbnail_name(recent.uuid)) == kept


def test_the_command_refuses_an_unknown_document_and_reports_a_missing_pdf(ingest):
    document = ingest(b"This is a note whose PDF went missing.", "a.txt")
    Document.objects.filter(pk=document.pk).update(processed_file=f"processed/{document.uuid.hex}/gone.pdf")

    with pytest.raises(CommandError, match="No processed document 999999"):
        run_command("--id", "999999")
    out, err = run_command("--missing")

    assert err == f"document {document.pk}: its processed PDF is missing\n"
    assert out.endswith("0 made, 1 failed, 0 already had one\n")
