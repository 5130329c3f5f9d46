"""Security headers and the Content-Security-Policy as a browser receives them from gunicorn.

SECURITY_HEADERS_ENABLED is read when the settings load, so each case starts the site in
its own process with that environment, behind a declared TLS proxy (SECURE_PROXY=true and
the proxy's X-Forwarded-Proto header), as in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
import requests

from conftest import LiveServer, current_database_url, log_tail, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30
VIA_TLS_PROXY = {"X-Forwarded-Proto": "https", "Host": "docs.example.org"}
NONCE = re.compile(r"'nonce-([A-Za-z0-9+/=]+)'")


@pytest.fixture
def site(process_env: dict[str, str], start_gunicorn: Callable[[dict[str, str]], LiveServer]):
    """Start the site with extra environment; it shares this test's database."""

    def start(**environment: str) -> LiveServer:
        env = {
            **process_env,
            "DATABASE_URL": current_database_url(),
            "SECURE_PROXY": "true",
            "EXTERNAL_HOSTNAME": "docs.example.org",
            **environment,
        }
        return start_gunicorn(env)

    return start


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def nonce_of(policy: str) -> str:
    found = NONCE.search(policy)
    assert found, f"no nonce in {policy!r}"
    return found.group(1)


def test_with_headers_enabled_every_page_carries_them_and_scripts_need_the_pages_nonce(site):
    server = site(SECURITY_HEADERS_ENABLED="true")
    page = requests.get(f"{server.url}/accounts/login/", headers=VIA_TLS_PROXY, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    headers = page.headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert "geolocation=()" in headers["Permissions-Policy"]

    policy = directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["report-uri"] == ["/api/csp-report"]
    # Scripts: this origin and this response's nonce, nothing inline, nothing foreign.
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert all(source in ("'self'",) or source.startswith("'nonce-") for source in policy["script-src"])
    nonce = nonce_of(headers["Content-Security-Policy"])
    scripts = re.findall(r"<script\b[^>]*>", page.text)
    assert scripts, "the page loads its script"
    assert all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert all("src=" in tag for tag in scripts), "no inline script"
    assert not re.search(r"\son[a-z]+=", page.text), "no inline event handlers"

    again = requests.get(f"{server.url}/accounts/login/", headers=VIA_TLS_PROXY, timeout=TIMEOUT)
    assert nonce_of(again.headers["Content-Security-Policy"]) != nonce  # one per response

    # The API explorer works under the same policy: its scripts are files with the nonce.
    explorer = requests.get(f"{server.url}/api/docs/", headers=VIA_TLS_PROXY, timeout=TIMEOUT)
    assert explorer.status_code == 200
    explorer_nonce = nonce_of(explorer.headers["Content-Security-Policy"])
    tags = re.findall(r"<(?:script|style)\b[^>]*>", explorer.text)
    assert len(tags) == 4
    assert all(f'nonce="{explorer_nonce}"' in tag for tag in tags)


def test_a_violation_report_is_accepted_and_logged(site):
    server = site(SECURITY_HEADERS_ENABLED="true")
    report = {
        "csp-report": {
            "document-uri": "https://docs.example.org/files",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js",
        }
    }
    answer = requests.post(
        f"{server.url}/api/csp-report",
        data=json.dumps(report),
        headers={**VIA_TLS_PROXY, "Content-Type": "application/csp-report"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 204
    # The Reporting API's format is understood too, and rubbish is quietly ignored.
    modern = [{"type": "csp-violation", "body": {"blockedURL": "inline", "effectiveDirective": "style-src"}}]
    for body in (json.dumps(modern), "not json"):
        answer = requests.post(
            f"{server.url}/api/csp-report",
            data=body,
            headers={**VIA_TLS_PROXY, "Content-Type": "application/reports+json"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 204
    wait_until(
        lambda: "evil.example" in server.log.read_text(),
        timeout=10,
        what="the reports in the server's log",
        details=lambda: log_tail(server.log),
    )
    log = log_tail(server.log, 20_000)
    assert "CSP violation: script-src-elem blocked https://evil.example/x.js" in log
    assert "CSP violation: style-src blocked inline" in log


def test_with_headers_left_to_the_proxy_only_the_harmless_ones_are_sent(site):
    server = site()  # SECURITY_HEADERS_ENABLED defaults to false
    page = requests.get(f"{server.url}/accounts/login/", headers=VIA_TLS_PROXY, timeout=TIMEOUT)
    assert page.status_code == 200
    left_to_the_proxy = ("Strict-Transport-Security", "Content-Security-Policy", "Permissions-Policy")
    for header in (*left_to_the_proxy, "Referrer-Policy"):
        assert header not in page.headers, header
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Behind the declared proxy, the session and CSRF cookies are Secure and HttpOnly/SameSite.
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie


def test_plain_http_is_sent_to_https_and_unknown_host_names_are_refused(site):
    server = site()
    plain = requests.get(
        f"{server.url}/accounts/login/",
        headers={"Host": "docs.example.org"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://docs.example.org/accounts/login/"
    stranger = requests.get(
        f"{server.url}/accounts/login/", headers={**VIA_TLS_PROXY, "Host": "evil.example"}, timeout=TIMEOUT
    )
    assert stranger.status_code == 400  # ALLOWED_HOSTS: only the names the site is reached by
