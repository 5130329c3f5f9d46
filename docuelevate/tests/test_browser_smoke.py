"""The site in a real browser (Debian's Chromium) under the strict Content-Security-Policy:
sign in, move around, and no page logs a script error or a CSP violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-browser-tested-passphrase-7"
TIMEOUT_MS = 30_000


def test_signing_in_and_visiting_the_pages_raises_no_script_error_or_csp_violation(
    owner: User,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(TIMEOUT_MS)

    browser_page.sign_in(server, owner.username, PASSWORD)
    assert owner.username in page.content()

    for path in ("/", "/search?q=anything", "/api/docs/"):
        response = page.goto(f"{server.url}{path}")
        assert response is not None, path
        assert response.status == 200, path
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    # The API explorer's own script ran: it rendered the operations from /api/schema/.
    assert page.locator(".opblock").count() > 0

    assert browser_page.problems == []
