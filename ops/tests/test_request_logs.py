"""Structured logs from real processes: gunicorn and a Celery worker on the test's database.

Both run as in production (LOG_FORMAT from the environment, gunicorn with the project's
logger class); the tests read what they wrote to stdout and stderr, line by line.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from fpdf import FPDF

from accounts.models import User
from conftest import (
    LiveServer,
    log_tail,
    run_manage,
    set_password_as_server,
    stop_process_group,
    wait_until,
)
from documents.tests.conftest import (  # noqa: F401  # fixtures shared here
    document_storage,
    worker_env,
)
from documents.tests.test_api_live_client import csrf_header, sign_in
from ops.logging import ContextFilter, JsonFormatter, TextFormatter, log_context

TIMEOUT = 30
PROCESSING_TIMEOUT = 180
GUNICORN_LOGGER = "--logger-class ops.logging.GunicornLogger"
USER_PASSWORD = "user-password-" + secrets.token_urlsafe(12)
# The OCR text of the uploaded document: long and unlike anything else in a log.
OCR_SENTENCE = (
    "Seventeen purple walruses negotiated quietly with the lighthouse keeper about overdue invoices"
)


def text_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer is ``text``: the pipeline keeps it as the OCR text."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def wait_for_status(
    client: requests.Session, server: LiveServer, document_id: int, wanted: set[str], logs: list[Path]
) -> dict[str, Any]:
    detail: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal detail
        answer = client.get(f"{server.url}/api/files/{document_id}", timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        return detail if detail["status"] in wanted else None

    return wait_until(
        reached,
        timeout=PROCESSING_TIMEOUT,
        what=f"document {document_id} to be {' or '.join(sorted(wanted))}",
        interval=0.5,
        details=lambda: (
            f"it is {detail.get('status')!r}\n{detail.get('steps')}\n"
            + "\n".join(log_tail(path) for path in logs)
        ),
    )


def worker_logs(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("test-*.log"))


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's output as JSON; fails naming the first line that is not."""
    entries = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line!r}\n{log_tail(path)}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    assert entries, f"{path.name} is empty"
    return entries


def live_env(worker_env: dict[str, str], log_format: str) -> dict[str, str]:  # noqa: F811
    return {
        **worker_env,
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": "INFO",
        # What the deployment's gunicorn command line carries (see docs/operations.md).
        "GUNICORN_CMD_ARGS": GUNICORN_LOGGER,
    }


# --- JSON lines from gunicorn and the worker ---------------------------------------------------


def test_json_logs_parse_line_by_line(
    owner: User,
    engines: None,
    document_storage: Path,  # noqa: F811
    worker_env: dict[str, str],  # noqa: F811
    start_worker: Callable[..., subprocess.Popen[bytes]],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    tmp_path: Path,
) -> None:
    env = live_env(worker_env, "json")
    set_password_as_server(env, owner, USER_PASSWORD)
    worker = start_worker(env)
    server = start_gunicorn(env)

    # A request id from the proxy is kept; a malformed one is replaced by one of ours.
    given = requests.get(
        f"{server.url}/api/whoami", headers={"X-Request-ID": "proxy-7f3a.42"}, timeout=TIMEOUT
    )
    assert given.headers["X-Request-ID"] == "proxy-7f3a.42"
    hostile = requests.get(
        f"{server.url}/api/whoami", headers={"X-Request-ID": 'x" injected=1 ' + "y" * 300}, timeout=TIMEOUT
    )
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])
    missing = requests.get(f"{server.url}/api/files/123456", timeout=TIMEOUT)
    assert missing.status_code == 401

    browser = sign_in(server, owner.username, USER_PASSWORD)
    uploaded = browser.post(
        f"{server.url}/api/ui-upload",
        files={"file": ("walrus.pdf", text_pdf(OCR_SENTENCE), "application/pdf")},
        headers=csrf_header(browser),
        timeout=TIMEOUT,
    )
    assert uploaded.status_code in (200, 202), uploaded.text
    document_id = uploaded.json()["document_id"]
    wait_for_status(browser, server, document_id, {"completed"}, worker_logs(tmp_path))
    # An API client's user is known only once DRF has read its token, inside the view.
    created = browser.post(
        f"{server.url}/api/api-tokens/", json={"name": "logs"}, headers=csrf_header(browser), timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    by_token = requests.get(
        f"{server.url}/api/files",
        headers={"Authorization": f"Bearer {created.json()['token']}"},
        timeout=TIMEOUT,
    )
    assert by_token.status_code == 200
    responses = [given, hostile, missing, uploaded, by_token]

    # The worker stops as a container runtime stops it, so its last lines are read too.
    stop_process_group(worker)
    web = json_lines(server.log)
    tasks = [entry for path in worker_logs(tmp_path) for entry in json_lines(path)]

    access = {entry["request_id"]: entry for entry in web if entry["logger"] == "docuelevate.request"}
    for response in responses:
        line = access[response.headers["X-Request-ID"]]
        assert line["method"] == response.request.method
        assert line["status"] == response.status_code
        assert isinstance(line["duration_ms"], int | float)
    assert access["proxy-7f3a.42"]["route"] == "whoami"
    assert "user_id" not in access["proxy-7f3a.42"]  # nobody signed in
    upload_line = access[uploaded.headers["X-Request-ID"]]
    assert upload_line["route"] == "api-ui-upload"  # the pattern's name, not the path
    assert upload_line["user_id"] == owner.pk
    assert access[missing.headers["X-Request-ID"]]["route"] == "api-file"
    assert access[by_token.headers["X-Request-ID"]]["user_id"] == owner.pk
    # Django's own line about the refused request belongs to the same request.
    refused = [
        entry for entry in web if entry["logger"] == "django.request" and entry.get("status_code") == 401
    ]
    assert missing.headers["X-Request-ID"] in {entry.get("request_id") for entry in refused}
    # gunicorn's own lines are JSON too, and it does not repeat the access lines.
    assert any(entry["logger"] == "gunicorn.error" and "Booting worker" in entry["message"] for entry in web)
    assert not any(entry["logger"] == "gunicorn.access" for entry in web)

    for_document = [entry for entry in tasks if entry.get("document_id") == document_id]
    assert {entry["logger"] for entry in for_document} >= {"celery.app.trace"}
    assert all(entry["task_id"] for entry in for_document)
    succeeded = [entry for entry in for_document if "succeeded" in entry["message"]]
    assert len({entry["task_id"] for entry in succeeded}) >= 5  # one task per pipeline step
    assert any("starting" in entry["message"] and entry.get("queues") for entry in tasks)
    assert any("shutdown" in entry["message"] for entry in tasks)
    assert OCR_SENTENCE not in server.log.read_text() + "".join(p.read_text() for p in worker_logs(tmp_path))


# --- No secret in any line ------------------------------------------------------------------------


def database_url_with_password(password: str) -> str | None:
    """The test database's URL with a password in it: PostgreSQL here trusts local clients,
    so it connects whatever the password; SQLite has none to give."""
    settings_dict = connection.settings_dict
    if connection.vendor != "postgresql":
        return None
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    user = settings_dict.get("USER") or "postgres"
    return f"postgresql://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_token_password_or_ocr_text_reaches_any_log_line(
    log_format: str,
    owner: User,
    engines: None,
    document_storage: Path,  # noqa: F811
    worker_env: dict[str, str],  # noqa: F811
    start_worker: Callable[..., subprocess.Popen[bytes]],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    tmp_path: Path,
) -> None:
    secret_values = {
        "SESSION_SECRET": "session-secret-" + secrets.token_urlsafe(32),
        "ADMIN_PASSWORD": "admin-password-" + secrets.token_urlsafe(12),
        "METRICS_TOKEN": "metrics-token-" + secrets.token_urlsafe(16),
        "database password": "db-password-" + secrets.token_urlsafe(12),
        "user password": USER_PASSWORD,
        "wrong password": "wrong-password-" + secrets.token_urlsafe(12),
    }
    env = live_env(worker_env, log_format)
    env.update(
        SESSION_SECRET=secret_values["SESSION_SECRET"],
        ADMIN_USERNAME="chief",
        ADMIN_PASSWORD=secret_values["ADMIN_PASSWORD"],
        METRICS_TOKEN=secret_values["METRICS_TOKEN"],
        # Debug lines too: an operator chasing a problem turns them on.
        LOG_LEVEL="DEBUG",
    )
    url = database_url_with_password(secret_values["database password"])
    if url is not None:
        env["DATABASE_URL"] = url
    outputs: list[str] = []
    bootstrap = run_manage(env, "bootstrap_admin")
    assert bootstrap.returncode == 0, bootstrap.stderr
    outputs += [bootstrap.stdout, bootstrap.stderr]
    set_password_as_server(env, owner, USER_PASSWORD)
    worker = start_worker(env)
    server = start_gunicorn(env)
    base = server.url

    # Signing in: wrongly, then rightly; the operator too.
    page = requests.get(f"{base}/accounts/login/", timeout=TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    wrong = requests.post(
        f"{base}/accounts/login/",
        data={
            "login": owner.username,
            "password": secret_values["wrong password"],
            "csrfmiddlewaretoken": token.group(1),
        },
        cookies=page.cookies,
        timeout=TIMEOUT,
    )
    assert wrong.status_code == 200  # the form again, with an error
    browser = sign_in(server, owner.username, USER_PASSWORD)
    chief = sign_in(server, "chief", secret_values["ADMIN_PASSWORD"])
    assert chief.get(f"{base}/status", timeout=TIMEOUT).status_code == 200

    # An API token: made, used in each way clients send it, misspelt, put in a query string.
    created = browser.post(
        f"{base}/api/api-tokens/", json={"name": "logs"}, headers=csrf_header(browser), timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    api_token = created.json()["token"]
    secret_values["API token"] = api_token
    client = requests.Session()
    client.headers["Authorization"] = f"Bearer {api_token}"
    assert client.get(f"{base}/api/files", timeout=TIMEOUT).status_code == 200
    assert requests.get(
        f"{base}/api/files", headers={"Authorization": f"Token {api_token}"}, timeout=TIMEOUT
    ).ok
    bad = requests.get(
        f"{base}/api/files", headers={"Authorization": f"Bearer {api_token}x"}, timeout=TIMEOUT
    )
    assert bad.status_code == 401
    assert requests.get(f"{base}/api/files?token={api_token}", timeout=TIMEOUT).status_code == 401
    assert requests.get(f"{base}/api/nowhere?api_key={api_token}", timeout=TIMEOUT).status_code == 404

    # The metrics token, right and as a query parameter.
    metrics_token = secret_values["METRICS_TOKEN"]
    requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=TIMEOUT)
    requests.get(f"{base}/metrics?token={metrics_token}", timeout=TIMEOUT)

    # A document whose text is the sentence, and one that fails in the pipeline.
    uploaded = client.post(
        f"{base}/api/ui-upload",
        files={"file": ("walrus.pdf", text_pdf(OCR_SENTENCE), "application/pdf")},
        timeout=TIMEOUT,
    )
    assert uploaded.status_code in (200, 202), uploaded.text
    broken = client.post(
        f"{base}/api/ui-upload",
        files={"file": ("broken.pdf", b"%PDF-1.7\n" + OCR_SENTENCE.encode() + b"\n%%EOF", "application/pdf")},
        timeout=TIMEOUT,
    )
    assert broken.status_code in (200, 202), broken.text
    done = wait_for_status(
        client, server, uploaded.json()["document_id"], {"completed"}, worker_logs(tmp_path)
    )
    assert OCR_SENTENCE in " ".join(done["ocr_text"].split())  # the text really went through the pipeline
    wait_for_status(client, server, broken.json()["document_id"], {"failed"}, worker_logs(tmp_path))
    found = client.get(f"{base}/api/search", params={"q": "walruses lighthouse"}, timeout=TIMEOUT)
    assert found.status_code == 200

    # Failure paths: a URL with a password in it, a body too large, a document not there.
    refused = client.post(
        f"{base}/api/process-url",
        json={"url": f"http://chief:{secret_values['ADMIN_PASSWORD']}@127.0.0.1:9/x.pdf"},
        timeout=TIMEOUT,
    )
    assert refused.status_code == 400
    too_large = client.post(
        f"{base}/api/process-url",
        data=json.dumps({"url": "http://example.org/" + "a" * 2_000_000, "password": USER_PASSWORD}),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert too_large.status_code == 413
    assert client.get(f"{base}/api/files/999999", timeout=TIMEOUT).status_code == 404

    stop_process_group(worker)
    outputs.append(server.log.read_text(errors="replace"))
    outputs += [path.read_text(errors="replace") for path in worker_logs(tmp_path)]
    everything = "\n".join(outputs)
    # The logs are there (the test would pass trivially on empty ones) ...
    assert everything.count("docuelevate.request") >= 15
    assert "succeeded" in everything
    # ... and hold none of it.
    leaked = [name for name, value in secret_values.items() if value in everything]
    assert leaked == [], f"in the logs: {leaked}"
    assert OCR_SENTENCE not in " ".join(everything.split())


# --- The pieces, without processes ------------------------------------------------------------


@pytest.fixture
def record() -> logging.LogRecord:
    return logging.LogRecord("documents", logging.INFO, __file__, 1, "step %s done", ("ocr",), None)


def test_lines_written_inside_a_context_carry_its_fields_and_an_explicit_extra_wins(
    record: logging.LogRecord,
) -> None:
    record.document_id = 7
    with log_context(task_id="abc", document_id=9):
        ContextFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["task_id"] == "abc"
    assert entry["document_id"] == 7
    assert "request_id" not in entry


def test_text_lines_show_the_context_after_the_message(record: logging.LogRecord) -> None:
    with log_context(request_id="r-1"):
        ContextFilter().filter(record)
    assert TextFormatter().format(record).endswith("documents: step ocr done [request_id=r-1]")
    plain = logging.LogRecord("documents", logging.INFO, __file__, 1, "no context", (), None)
    ContextFilter().filter(plain)
    assert TextFormatter().format(plain).endswith("documents: no context")


def test_json_extras_are_masked_and_the_raw_request_is_not_written(settings: Any) -> None:
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found", (), None)
    record.request = "<WSGIRequest: GET '/accounts/password/reset/key/1-secretkey/'>"
    record.data = {"args": [f"redis://:{'hunter2-very-secret'}@redis:6379/0"], "key": settings.SECRET_KEY}
    entry = json.loads(JsonFormatter().format(record))
    assert "request" not in entry
    assert "hunter2-very-secret" not in json.dumps(entry)
    assert settings.SECRET_KEY not in json.dumps(entry)


@pytest.mark.django_db
def test_every_response_carries_the_request_id_of_its_access_line(
    client: Any, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(owner)
    with caplog.at_level(logging.INFO, logger="docuelevate.request"):
        kept = client.get("/api/files", headers={"X-Request-ID": "lb-0042"})
        made = client.get("/api/files", headers={"X-Request-ID": "two words"})
        unknown = client.get("/no/such/page/")
    assert kept["X-Request-ID"] == "lb-0042"
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])
    # The fields arrive as extras on the record, which its type does not declare.
    lines = {
        vars(record)["request_id"]: vars(record)
        for record in caplog.records
        if record.name == "docuelevate.request"
    }
    assert set(lines) == {"lb-0042", made["X-Request-ID"], unknown["X-Request-ID"]}
    kept_line = lines["lb-0042"]
    assert (kept_line["route"], kept_line["status"], kept_line["user_id"]) == ("api-files", 200, owner.pk)
    assert lines[unknown["X-Request-ID"]]["route"] == "unmatched"  # never the path
