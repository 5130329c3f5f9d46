"""A person's whole visit in a real browser (Debian's Chromium through Playwright), against
gunicorn and a real worker, under the strict Content-Security-Policy: sign in, drop two
sample documents on the upload page, watch them being processed, read one, search for it,
make and revoke an API token; the console never shows a script error or a CSP violation."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server
from documents.tests.samples import Samples

pytestmark = pytest.mark.usefixtures("engines")

PASSWORD = "a-browser-tested-passphrase-7"
STEP_MS = 30_000
PROCESSING_MS = 300_000  # OCR of two documents on a busy two-core machine
# Drops the files on the drop zone as a person's drag and drop would: a DataTransfer
# holding real File objects, delivered with the dragenter/dragover/drop events.
DROP_FILES = """([selector, files]) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, { type: file.type }));
  }
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}"""


def as_dropped(path: Path, mime_type: str) -> dict[str, str]:
    return {"name": path.name, "type": mime_type, "data": base64.b64encode(path.read_bytes()).decode()}


def test_a_person_uploads_reads_searches_and_manages_tokens_without_a_script_error(
    owner: User,
    samples: Samples,
    document_storage: Path,
    worker_env: dict[str, str],
    start_worker: Callable[..., Any],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    site_env = {**worker_env, "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(site_env, owner, PASSWORD)
    start_worker(worker_env)
    server = start_gunicorn(site_env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    page.on("dialog", lambda dialog: dialog.accept())  # the "Revoke …?" confirmation

    browser_page.sign_in(server, owner.username, PASSWORD)
    # Every request the pages make, to see which route the upload page polls.
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(server.url)))

    # Two documents dropped at once: a row each, a progress bar each, then both completed
    # while the page stays loaded.
    page.goto(f"{server.url}/upload")
    dropped = [
        as_dropped(samples / "scan.pdf", "application/pdf"),
        as_dropped(samples / "typewritten.png", "image/png"),
    ]
    page.evaluate(DROP_FILES, ["#drop-zone", dropped])
    rows = page.locator("#upload-list > li")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert page.locator("#upload-list progress").count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('#upload-list > li')]"
        ".every((row) => ['completed', 'error'].includes(row.dataset.state))",
        timeout=PROCESSING_MS,
    )
    states = {
        rows.nth(i).locator(".upload-name").inner_text(): rows.nth(i).get_attribute("data-state")
        for i in (0, 1)
    }
    assert states == {"scan.pdf": "completed", "typewritten.png": "completed"}, page.locator(
        "#upload-list"
    ).inner_text()
    assert all(
        value == "100"
        for value in page.locator("#upload-list progress").evaluate_all(
            "bars => bars.map(b => String(b.value))"
        )
    )
    # The rows' progress came from the light status route, both documents in each request,
    # never from each document's whole detail.
    polls = [url for url in asked if url.startswith("/files/status?ids=")]
    assert polls, asked
    assert not [url for url in asked if url.startswith("/api/files/")], asked
    assert any(len(url.split("=", 1)[1].split(",")) == 2 for url in polls), polls

    # The document page shows what OCR found.
    page.locator("#upload-list > li", has_text="scan.pdf").get_by_role("link", name="Open document").click()
    page.wait_for_url(f"{server.url}/files/*")
    assert "ChronoScribe" in page.content()
    # The preview, served sandboxed, still opens in the page's frame: Chromium's PDF viewer
    # attaches a frame of its own inside it (a refused frame shows an error page instead).
    preview = page.locator("iframe[title^='Preview of']").element_handle().content_frame()
    assert preview is not None
    preview.wait_for_load_state()
    assert preview.url.endswith("/preview")
    # Polled through Playwright's own wait, which lets the page's events reach this process.
    deadline = time.monotonic() + STEP_MS / 1000
    while not preview.child_frames and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(preview.child_frames) == 1, preview.url

    # Search finds it, with the word marked.
    page.goto(f"{server.url}/search")
    page.locator("#id_q").fill("ChronoScribe")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{server.url}/search?*")
    assert page.locator("mark", has_text="ChronoScribe").count() > 0
    assert "scan.pdf" in page.content()

    # The grid shows both documents' first pages, the PNGs finalize made (not placeholders),
    # and the search result its own.
    pictures: dict[str, str] = {}

    def note_picture(response: Any) -> None:
        if response.url.split("?")[0].endswith("/thumbnail"):
            pictures[response.url] = response.headers.get("content-type", "")

    page.on("response", note_picture)
    for address, selector, count in (
        ("/files?view=grid", ".file-grid img", 2),
        ("/search?q=ChronoScribe", ".result img", 1),
    ):
        page.goto(f"{server.url}{address}")
        images = page.locator(selector)
        assert images.count() == count
        page.wait_for_function(
            "(selector) => [...document.querySelectorAll(selector)]"
            ".every((img) => img.complete && img.naturalWidth > 0)",
            arg=selector,
        )
        assert images.evaluate_all("imgs => imgs.map((img) => img.naturalWidth)") == [300] * count
    assert len(pictures) == 2, pictures
    assert set(pictures.values()) == {"image/png"}, pictures

    # A token: shown once, then revoked.
    page.goto(f"{server.url}/api-tokens")
    page.get_by_label("Name").fill("browser token")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("de_")
    page.goto(f"{server.url}/api-tokens")
    assert token not in page.content()  # shown once only
    page.get_by_role("button", name="Revoke browser token").click()
    page.wait_for_load_state("load")
    assert "revoked" in page.locator("main").inner_text().lower()

    assert browser_page.problems == []


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def test_the_menu_and_the_filters_fold_on_a_phone_only_and_status_looks_like_the_other_pages(
    operator: User,
    process_env: dict[str, str],
    transactional_db: None,
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(env, operator, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    browser_page.sign_in(server, operator.username, PASSWORD)
    menu = page.get_by_role("button", name="Menu")
    navigation = page.locator("#site-nav")
    filters_button = page.get_by_role("button", name="Filters")
    filters = page.locator("#file-filters")

    # On a desktop: the whole navigation and the filters, no button to fold them.
    page.set_viewport_size(DESKTOP)
    page.goto(f"{server.url}/files")
    assert navigation.is_visible()
    assert not menu.is_visible()
    assert filters.is_visible()
    assert not filters_button.is_visible()

    # On a phone: both folded behind their buttons, which open them.
    page.set_viewport_size(PHONE)
    page.goto(f"{server.url}/files")
    assert menu.is_visible()
    assert not navigation.is_visible()
    assert filters_button.is_visible()
    assert not filters.is_visible()
    filters_button.click()
    assert filters.is_visible()
    assert filters_button.get_attribute("aria-expanded") == "true"
    menu.click()
    assert navigation.is_visible()
    # A filter in use stays in sight.
    page.goto(f"{server.url}/files?status=failed")
    assert filters.is_visible()

    # /status is styled like the other pages: its tables and badges have rules of their own.
    page.set_viewport_size(DESKTOP)
    page.goto(f"{server.url}/status")
    badge = page.locator("tr[data-service=database] .status-badge")
    assert badge.inner_text() == "Working"
    assert badge.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert (
        page.locator("table.data-table").first.evaluate("el => getComputedStyle(el).borderCollapse")
        == "collapse"
    )

    assert browser_page.problems == []
