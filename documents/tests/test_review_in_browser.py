"""The review inbox from the keyboard, in a real browser (Debian's Chromium) under the strict
Content-Security-Policy: a key takes the suggested correspondent, Enter confirms and the next
document follows, j and k move through the queue; no script error or CSP violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server
from documents.models import Correspondent, Document
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-browser-tested-passphrase-7"
TIMEOUT_MS = 30_000


def test_a_person_confirms_with_a_suggestion_and_moves_through_the_queue_from_the_keyboard(
    owner: User,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    telekom = Correspondent.objects.create(owner=owner, name="Telekom")
    suggested = {"id": telekom.pk, "name": "Telekom", "confidence": 64, "set": False}
    first = DocumentFactory.create(
        owner=owner,
        confidence=30,
        document_title="Phone bill",
        metadata={"suggestions": {"correspondent": suggested}},
    )
    second = DocumentFactory.create(owner=owner, confidence=30, document_title="Unclear letter")
    third = DocumentFactory.create(owner=owner, confidence=30, document_title="Another letter")
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(TIMEOUT_MS)
    browser_page.sign_in(server, owner.username, PASSWORD)

    page.goto(f"{server.url}/review")
    assert page.locator("#review-position").inner_text().startswith("Document 1 of 3 waiting")
    page.locator("body").press("1")  # the first suggestion: the correspondent
    assert page.locator("select[name=correspondent]").input_value() == str(telekom.pk)
    page.locator("body").press("Enter")
    page.wait_for_url(f"{server.url}/review?id={second.pk}")
    assert "Unclear letter" in page.locator("h2#review-preview").inner_text()
    assert Document.objects.get(pk=first.pk).correspondent_id == telekom.pk

    page.locator("body").press("j")
    page.wait_for_url(f"{server.url}/review?id={third.pk}")
    page.locator("body").press("k")
    page.wait_for_url(f"{server.url}/review?id={second.pk}")
    assert page.locator("#review-position").inner_text().startswith("Document 1 of 2 waiting")
    assert browser_page.problems == []
