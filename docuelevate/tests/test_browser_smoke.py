"""The site in a real browser (Debian's Chromium) under the strict Content-Security-Policy:
sign in, move around, and no page logs a script error or a CSP violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, run_manage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-browser-tested-passphrase-7"
TIMEOUT_MS = 30_000


def set_password(env: dict[str, str], user: User, password: str) -> None:
    """With the server's own hasher: the tests' fast one is not among the server's."""
    code = (
        "from accounts.models import User; "
        f"u = User.objects.get(pk={user.pk}); u.set_password({password!r}); u.save()"
    )
    result = run_manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr


def test_signing_in_and_visiting_the_pages_raises_no_script_error_or_csp_violation(
    owner: User,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(f"{server.url}/accounts/login/")
    page.locator("input[name=login]").fill(owner.username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_url(f"{server.url}/")
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
