"""Making a coloured tag and bulk-tagging three documents with it in a real browser
(Debian's Chromium through Playwright), against gunicorn and a real worker, under the strict
Content-Security-Policy: the progress page follows the operation to its end by itself,
without a script error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from accounts.models import User
from conftest import BrowserPage, LiveServer, set_password_as_server
from documents.models import Tag
from documents.tests.factories import DocumentFactory

PASSWORD = "a-browser-tested-passphrase-7"
STEP_MS = 30_000
WORKER_MS = 120_000


def test_a_person_makes_a_coloured_tag_bulk_tags_three_documents_and_watches_the_progress(
    owner: User,
    document_storage: Path,
    worker_env: dict[str, str],
    start_worker: Callable[..., Any],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    ticked = DocumentFactory.create_batch(3, owner=owner)
    left = DocumentFactory.create(owner=owner)
    site_env = {**worker_env, "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(site_env, owner, PASSWORD)
    start_worker(worker_env, queues="default")
    server = start_gunicorn(site_env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    browser_page.sign_in(server, owner.username, PASSWORD, then="/organise/tags")

    # A coloured tag, made on the tags page.
    page.get_by_label("Name").fill("Receipts 2025")
    page.locator("#id_new-colour").fill("#0a7b83")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_url(f"{server.url}/organise/tags")
    tag = Tag.objects.get(owner=owner, name="Receipts 2025")
    assert tag.colour == "#0a7b83"

    page.goto(f"{server.url}/files")
    for document in ticked:
        page.locator(f'input[name="ids"][value="{document.pk}"]').check()
    page.get_by_label("Tag", exact=True).select_option(label="Receipts 2025")
    page.get_by_role("button", name="Add tag").click()

    page.wait_for_url(f"{server.url}/files/bulk/**")
    page.wait_for_function(
        "() => document.querySelector('#bulk-progress .status-badge').dataset.status === 'done'",
        timeout=WORKER_MS,
    )
    assert page.locator('[data-field="done"]').inner_text() == "3"
    assert page.locator('[data-field="failed"]').inner_text() == "0"
    assert sorted(tag.documents.values_list("pk", flat=True)) == sorted(d.pk for d in ticked)
    assert not left.tags.exists()
    assert browser_page.problems == []
