"""The document page's edit form and the trash in a real browser (Debian's Chromium through
Playwright) against gunicorn, under the strict Content-Security-Policy: edit a title and
find it by search, trash a document and restore it, and two tabs saving the same document
where the second one resolves the conflict. The console never shows a script error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server
from documents.models import Document
from documents.tests.factories import DocumentFactory

PASSWORD = "a-browser-tested-passphrase-7"
STEP_MS = 30_000


@pytest.fixture
def site(
    owner: User,
    process_env: dict[str, str],
    transactional_db: None,
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> LiveServer:
    """The site under gunicorn on the test's database, with the owner's password set."""
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(env, owner, PASSWORD)
    return start_gunicorn(env)


def watch(page: Any, problems: list[str]) -> None:
    """Collect a further tab's script errors as browser_page does for its own."""
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))


def signed_in(browser_page: BrowserPage, site: LiveServer, owner: User) -> Any:
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    page.on("dialog", lambda dialog: dialog.accept())  # "Move … to the trash?"
    browser_page.sign_in(site, owner.username, PASSWORD)
    return page


def test_a_title_edited_on_the_document_page_is_found_by_search(
    owner: User, site: LiveServer, browser_page: BrowserPage
) -> None:
    document = DocumentFactory.create(owner=owner, document_title="Scan 001", original_filename="s1.pdf")
    page = signed_in(browser_page, site, owner)

    page.goto(f"{site.url}/files/{document.pk}")
    title = page.get_by_label("Title", exact=True)
    title.fill("Quarterly heating statement")
    title.press("Enter")  # Enter in a field submits the form
    page.wait_for_url(f"{site.url}/files/{document.pk}#edit-title")

    assert "Saved." in page.locator(".messages").inner_text()
    assert page.get_by_label("Title", exact=True).input_value() == "Quarterly heating statement"
    assert "Quarterly heating statement" in page.locator("#changes-title + *").inner_text()
    page.goto(f"{site.url}/search")
    page.locator("#id_q").fill("heating")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{site.url}/search?*")
    assert page.locator(".result", has_text="Quarterly heating statement").count() == 1
    assert browser_page.problems == []


def test_a_document_moved_to_the_trash_is_restored_from_the_trash_page(
    owner: User, site: LiveServer, browser_page: BrowserPage
) -> None:
    document = DocumentFactory.create(owner=owner, document_title="Lease", original_filename="lease.pdf")
    page = signed_in(browser_page, site, owner)

    page.goto(f"{site.url}/files/{document.pk}")
    page.get_by_role("button", name="Move to trash").click()
    page.wait_for_url(f"{site.url}/files")
    assert "lease.pdf was moved to the trash." in page.locator(".messages").inner_text()
    assert page.locator("a", has_text="lease.pdf").count() == 0

    page.get_by_role("link", name="Restore it").click()
    page.wait_for_url(f"{site.url}/trash#trashed-{document.pk}")
    assert "30 days" in page.locator(f"#trashed-{document.pk}").inner_text()
    page.get_by_role("button", name="Restore lease.pdf").click()
    page.wait_for_url(f"{site.url}/trash")
    assert "lease.pdf is back among your files." in page.locator(".messages").inner_text()
    assert "The trash is empty." in page.locator("main").inner_text()

    page.goto(f"{site.url}/files")
    assert page.locator("a", has_text="lease.pdf").count() == 1
    assert Document.objects.get(pk=document.pk).trashed_at is None
    assert browser_page.problems == []


def test_two_tabs_edit_one_document_and_the_second_resolves_the_conflict(
    owner: User, site: LiveServer, browser_page: BrowserPage
) -> None:
    document = DocumentFactory.create(owner=owner, document_title="Scan 002", original_filename="s2.pdf")
    first = signed_in(browser_page, site, owner)
    second = first.context.new_page()
    second.set_default_timeout(STEP_MS)
    watch(second, browser_page.problems)
    first.goto(f"{site.url}/files/{document.pk}")
    second.goto(f"{site.url}/files/{document.pk}")

    first.get_by_label("Title", exact=True).fill("Title from the first tab")
    first.get_by_role("button", name="Save", exact=True).click()
    first.wait_for_url(f"{site.url}/files/{document.pk}#edit-title")

    second.get_by_label("Title", exact=True).fill("Title from the second tab")
    second.get_by_role("button", name="Save", exact=True).click()
    second.wait_for_load_state()
    conflict = second.locator("#edit-conflict")
    assert "Someone changed this document after you opened it" in conflict.inner_text()
    row = conflict.locator("tr[data-field=document_title]")
    assert row.locator("[data-side=theirs]").inner_text() == "Title from the first tab"
    assert row.locator("[data-side=yours]").inner_text() == "Title from the second tab"
    assert second.get_by_label("Title", exact=True).input_value() == "Title from the second tab"
    assert Document.objects.get(pk=document.pk).document_title == "Title from the first tab"

    second.get_by_role("button", name="Save mine over theirs").click()
    second.wait_for_url(f"{site.url}/files/{document.pk}#edit-title")
    assert "Saved." in second.locator(".messages").inner_text()
    assert Document.objects.get(pk=document.pk).document_title == "Title from the second tab"
    first.reload()
    assert first.get_by_label("Title", exact=True).input_value() == "Title from the second tab"
    # The conflict page is answered 409, which Chromium notes in the console; nothing else.
    assert browser_page.problems == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
