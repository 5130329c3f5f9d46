"""The upload page /upload: what it shows, who may see it, and that the API it sends files to
accepts them the way its script sends them (session cookie plus the X-CSRFToken header);
then the whole page in a real browser under the strict Content-Security-Policy."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from django.test import Client

from accounts.models import User
from conftest import (
    PROJECT_DIR,
    BrowserPage,
    LiveServer,
    current_database_url,
    set_password_as_server,
)
from documents.models import Document

PASSWORD = "an-upload-page-passphrase-9"
TIMEOUT_MS = 30_000


def small_pdf(marker: str = "one") -> bytes:
    """A valid one-page PDF; the marker makes different contents (and so no duplicates)."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = marker
    output = io.BytesIO()
    pdf.save(output)
    return output.getvalue()


def signed_in_csrf_client(user: User) -> tuple[Client, str]:
    """A browser-like client that enforces CSRF, after it loaded the page: the token the script sends."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.get("/upload")
    assert response.status_code == 200
    return client, client.cookies["csrftoken"].value


def file_upload(name: str, content: bytes) -> io.BytesIO:
    upload = io.BytesIO(content)
    upload.name = name
    return upload


# --- The page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_shows_a_labelled_drop_zone_with_file_and_folder_inputs_and_a_url_form(
    client: Client, owner: User, django_assert_max_num_queries: Any
) -> None:
    client.force_login(owner)
    with django_assert_max_num_queries(4):
        response = client.get("/upload")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="drop-zone"' in html
    assert "Drop files or whole folders here" in html
    # Every field has a label, so the picker works from the keyboard and a screen reader names it.
    for field_id in ("upload-files", "upload-folder", "upload-url", "upload-url-name"):
        assert f'<label for="{field_id}"' in html
        assert f'id="{field_id}"' in html
    assert re.search(r'<input id="upload-files" name="file" type="file" multiple', html)
    assert re.search(r'<input id="upload-folder" type="file" multiple webkitdirectory', html)
    assert 'aria-live="polite"' in html
    assert "<progress" in html
    # The script finds the real API routes and the limit in the page.
    assert 'data-upload-url="/api/ui-upload"' in html
    assert 'data-process-url="/api/process-url"' in html
    # Progress comes from the light status route, asked for all rows at once.
    assert 'data-status-url="/files/status"' in html
    assert 'data-status-limit="200"' in html
    assert "Nothing sent yet" in html


@pytest.mark.django_db
def test_the_page_loads_its_script_with_the_csp_nonce_and_has_no_inline_script_or_handler(
    client: Client, owner: User
) -> None:
    client.force_login(owner)
    html = client.get("/upload").content.decode()

    # The nonce is filled in where security headers are on (the browser test below runs so);
    # here the attribute is what the template owes.
    assert re.search(r'<script nonce="[^"]*" src="/static/js/upload\.[0-9a-f]+\.js" defer></script>', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.django_db
def test_the_page_tells_the_upload_limit_from_the_settings(
    client: Client, owner: User, settings: Any
) -> None:
    settings.MAX_UPLOAD_SIZE = 5 * 1024**2
    client.force_login(owner)
    html = client.get("/upload").content.decode()

    assert f'data-max-size="{5 * 1024**2}"' in html
    assert "up to 5.0\xa0MB each" in html


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/upload")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/upload"


def test_the_script_builds_rows_from_text_never_from_html() -> None:
    # File names come from the user's disk and URLs from anywhere: as HTML they could inject markup.
    script = (PROJECT_DIR / "static" / "js" / "upload.js").read_text()
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "webkitGetAsEntry" in script
    assert "upload.onprogress" in script


def test_the_script_polls_the_light_status_route_never_each_documents_detail() -> None:
    script = (PROJECT_DIR / "static" / "js" / "upload.js").read_text()
    assert "config.statusUrl" in script
    assert "/api/files" not in script
    assert "filesApi" not in script


# --- The API as the page's script calls it ------------------------------------------------


@pytest.mark.django_db
def test_a_session_upload_with_the_csrf_header_is_accepted_and_can_be_polled(
    owner: User, document_storage: Path
) -> None:
    client, token = signed_in_csrf_client(owner)

    response = client.post(
        "/api/ui-upload", {"file": file_upload("scan.pdf", small_pdf())}, headers={"X-CSRFToken": token}
    )

    assert response.status_code in (200, 202)
    body = response.json()
    assert body["status"] == "queued"
    document = Document.objects.get(pk=body["document_id"])
    assert document.owner == owner
    # The script then polls the document with the same session, until processing ends.
    polled = client.get(f"/api/files/{body['document_id']}")
    assert polled.status_code == 200
    assert polled.json()["status"] == "pending"


@pytest.mark.django_db
def test_a_session_upload_without_the_csrf_header_is_refused_and_stores_nothing(
    owner: User, document_storage: Path
) -> None:
    client, _token = signed_in_csrf_client(owner)

    response = client.post("/api/ui-upload", {"file": file_upload("scan.pdf", small_pdf())})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_the_same_file_again_answers_duplicate_with_the_original_the_page_links_to(
    owner: User, document_storage: Path
) -> None:
    client, token = signed_in_csrf_client(owner)
    content = small_pdf()
    first = client.post(
        "/api/ui-upload", {"file": file_upload("scan.pdf", content)}, headers={"X-CSRFToken": token}
    ).json()

    again = client.post(
        "/api/ui-upload", {"file": file_upload("copy.pdf", content)}, headers={"X-CSRFToken": token}
    ).json()

    assert again["status"] == "duplicate"
    assert again["duplicate_of"]["original_file_id"] == first["document_id"]
    assert again["duplicate_of"]["original_filename"] == "scan.pdf"


@pytest.mark.django_db
def test_a_refused_file_answers_a_detail_the_page_shows_in_its_row(
    owner: User, document_storage: Path
) -> None:
    client, token = signed_in_csrf_client(owner)

    response = client.post(
        "/api/ui-upload",
        {"file": file_upload("program.bin", b"\x7fELF\x02\x01\x01" + bytes(200))},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 415
    assert "not supported" in response.json()["detail"]


@pytest.mark.django_db
def test_a_url_to_a_private_address_is_refused_with_a_detail_not_a_csrf_error(
    owner: User, document_storage: Path
) -> None:
    client, token = signed_in_csrf_client(owner)

    response = client.post(
        "/api/process-url",
        {"url": "http://127.0.0.1/secret.pdf"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Document.objects.exists()


# --- In a real browser ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_files_get_a_row_each_with_their_outcome_and_no_script_error(
    owner: User,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
    tmp_path: Path,
) -> None:
    # The embedded broker in this test's WORKDIR: the queued task reaches no one else's worker.
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        process_env.pop(name, None)
    env = {
        **process_env,
        "DATABASE_URL": current_database_url(),
        "SECURITY_HEADERS_ENABLED": "true",
        "MAX_UPLOAD_SIZE": "100000",
    }
    set_password_as_server(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(TIMEOUT_MS)
    browser_page.sign_in(server, owner.username, PASSWORD, then="/upload")

    folder = tmp_path / "picked"
    folder.mkdir()
    invoice = small_pdf("invoice")
    (folder / "invoice.pdf").write_bytes(invoice)
    (folder / "again.pdf").write_bytes(invoice)
    (folder / "program.bin").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))
    (folder / "huge.pdf").write_bytes(small_pdf("huge") + bytes(200_000))
    page.locator("#upload-files").set_input_files(str(folder / "invoice.pdf"))
    rows = page.locator("#upload-list li")
    first = rows.nth(0)
    # No worker runs here: the document waits in the queue, and the row says so.
    first.locator(".upload-status", has_text="waiting for a worker").wait_for()
    document = Document.objects.get()
    assert first.locator(".upload-status a").get_attribute("href") == f"/files/{document.pk}"

    page.locator("#upload-files").set_input_files(
        [str(folder / "again.pdf"), str(folder / "program.bin"), str(folder / "huge.pdf")]
    )
    page.locator('#upload-list li[data-state="error"]').nth(1).wait_for()
    page.locator('#upload-list li[data-state="duplicate"]').wait_for()

    duplicate = page.locator('#upload-list li[data-state="duplicate"]')
    assert duplicate.locator("a").get_attribute("href") == f"/files/{document.pk}"
    statuses = [rows.nth(index).locator(".upload-status").inner_text() for index in range(rows.count())]
    assert any(status.startswith("Unsupported:") for status in statuses), statuses
    assert any(status.startswith("Too large:") for status in statuses), statuses
    assert page.locator("#upload-empty").is_hidden()
    # The browser logs every refused request; the 415 is the answer this test asked for.
    refused = "the server responded with a status of 415"
    assert [problem for problem in browser_page.problems if refused not in problem] == []
