"""A small client written only from CONTRACT.md §3, with ``requests`` against a live server.

The site runs under gunicorn on a free port of 127.0.0.1, next to a real Celery worker;
both share the test's database, WORKDIR and broker. The client knows nothing but HTTP:

1. signs in with the login form (``/accounts/login/``: ``login``, ``password`` and the
   CSRF token of the page), as a person in a browser;
2. with that session, creates an API token (``POST /api/api-tokens/``, ``X-CSRFToken``);
3. with the token only, in a session without cookies: uploads ``scan.pdf``, finds it in
   ``GET /api/files``, waits for ``GET /api/files/{id}`` to say completed, and downloads
   the original (the same bytes) and the processed PDF (named after the document), and
   finds it with ``GET /api/search`` by a word of its OCR text, the match marked;
4. revokes the token with the browser session, after which the token gets 401 JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from accounts.models import User
from conftest import LiveServer, log_tail, set_password_as_server, wait_until
from documents.tests.samples import Samples

pytestmark = pytest.mark.usefixtures("engines")

PASSWORD = "live-client-password-4711"
TIMEOUT = 30  # seconds for one request
PROCESSING_TIMEOUT = 180  # seconds for the worker to finish the document


def sign_in(server: LiveServer, username: str, password: str) -> requests.Session:
    """Log in through the login page, as a browser does."""
    browser = requests.Session()
    page = browser.get(f"{server.url}/accounts/login/", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[-2000:]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf, "the login page has no CSRF token"
    answer = browser.post(
        f"{server.url}/accounts/login/",
        data={"login": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, f"login refused:\n{answer.text[-2000:]}"
    assert "sessionid" in browser.cookies
    return browser


def csrf_header(browser: requests.Session) -> dict[str, str]:
    return {"X-CSRFToken": browser.cookies["csrftoken"]}


def attachment_name(response: requests.Response) -> str:
    """The file name a download is saved as: ``filename*`` (RFC 6266) if given, else ``filename``."""
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    extended = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    if extended:
        return unquote(extended.group(1))
    plain = re.search(r'filename="([^"]*)"', disposition)
    assert plain, disposition
    return plain.group(1)


def wait_until_processed(
    client: requests.Session, server: LiveServer, document_id: int, worker_logs: list[Path]
) -> dict[str, Any]:
    """The document's detail once it is completed; a failure shows why it did not get there."""
    detail: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal detail
        answer = client.get(f"{server.url}/api/files/{document_id}", timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        return detail["status"] in ("completed", "failed")

    def why() -> str:
        worker_tail = "\n".join(log_tail(path) for path in worker_logs)
        return f"steps: {detail.get('steps')}\nlogs: {detail.get('logs')}\n--- worker ---\n{worker_tail}"

    wait_until(
        finished,
        timeout=PROCESSING_TIMEOUT,
        what=f"document {document_id} to finish",
        interval=0.5,
        details=why,
    )
    if detail["status"] != "completed":
        pytest.fail(f"document {document_id} is {detail['status']!r}, not completed\n{why()}")
    return detail


def wait_until_found(client: requests.Session, server: LiveServer, query: str) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        answer = client.get(f"{server.url}/api/search", params={"q": query}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) >= {"results", "total", "page", "pages", "query"}
        return list(body["results"])

    return wait_until(found, timeout=60, what=f"the search to find {query!r}", interval=0.5)


def test_a_client_signs_in_makes_a_token_uploads_waits_downloads_and_revokes_it(
    owner: User,
    samples: Samples,
    document_storage: Path,
    worker_env: dict[str, str],
    start_worker: Callable[..., Any],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    tmp_path: Path,
) -> None:
    assert not owner.is_staff  # an everyday user, not an operator
    set_password_as_server(worker_env, owner, PASSWORD)
    start_worker(worker_env)
    server = start_gunicorn(worker_env)

    # A person signs in and makes a token for the client.
    browser = sign_in(server, owner.username, PASSWORD)
    created = browser.post(
        f"{server.url}/api/api-tokens/",
        json={"name": "live client"},
        headers=csrf_header(browser),
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert set(token) == {"id", "name", "token_prefix", "token"}
    assert token["name"] == "live client"
    assert token["token"].startswith("de_")
    assert token["token"].startswith(token["token_prefix"])

    # From here on the client has the token and nothing else.
    client = requests.Session()
    client.headers["Authorization"] = f"Bearer {token['token']}"
    original = (samples / "scan.pdf").read_bytes()
    uploaded = client.post(
        f"{server.url}/api/ui-upload",
        files={"file": ("scan.pdf", original, "application/pdf")},
        timeout=TIMEOUT,
    )
    assert uploaded.status_code in (200, 202), uploaded.text
    answer = uploaded.json()
    assert answer["status"] == "queued"
    assert answer["original_filename"] == "scan.pdf"
    assert answer["task_id"]
    assert answer["stored_filename"]
    document_id = answer["document_id"]

    listed = client.get(f"{server.url}/api/files", timeout=TIMEOUT)
    assert listed.status_code == 200, listed.text
    files = {item["id"]: item for item in listed.json()["files"]}
    assert files[document_id]["original_filename"] == "scan.pdf"
    assert files[document_id]["file_size"] == len(original)
    assert listed.json()["pagination"]["total"] == len(files) == 1

    detail = wait_until_processed(client, server, document_id, sorted(tmp_path.glob("test-*.log")))
    assert detail["file"]["id"] == document_id
    assert detail["files_on_disk"] == {"original": True, "processed": True}
    assert "ChronoScribe" in detail["ocr_text"]
    assert {step["status"] for step in detail["steps"]} <= {"success", "skipped"}

    download = f"{server.url}/api/files/{document_id}/download"
    as_uploaded = client.get(download, params={"version": "original"}, timeout=TIMEOUT)
    assert as_uploaded.status_code == 200, as_uploaded.text
    assert as_uploaded.content == original
    assert attachment_name(as_uploaded) == "scan.pdf"

    processed = client.get(download, params={"version": "processed"}, timeout=TIMEOUT)
    assert processed.status_code == 200, processed.text
    assert processed.headers["Content-Type"] == "application/pdf"
    assert processed.content.startswith(b"%PDF-")
    assert processed.content != original  # OCR added a text layer
    name = attachment_name(processed)
    assert name.endswith(".pdf")
    # Named after the document: its title, in the letters and digits a file name keeps.
    title = detail["file"]["document_title"]
    assert title
    assert re.sub(r"[^A-Za-z0-9]", "", title) in re.sub(r"[^A-Za-z0-9]", "", name)

    # Indexing follows processing in the worker; a moment later the text is searchable.
    hits = wait_until_found(client, server, "ChronoScribe")
    assert [hit["file_id"] for hit in hits] == [document_id]
    assert "<mark>ChronoScribe</mark>" in hits[0]["_formatted"]["ocr_text"]

    # The person revokes the token; the client is shut out at once.
    revoked = browser.delete(
        f"{server.url}/api/api-tokens/{token['id']}", headers=csrf_header(browser), timeout=TIMEOUT
    )
    assert revoked.status_code == 204, revoked.text
    refused = client.get(f"{server.url}/api/files", timeout=TIMEOUT)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/json")
    assert set(refused.json()) == {"detail"}
    assert refused.json()["detail"]
