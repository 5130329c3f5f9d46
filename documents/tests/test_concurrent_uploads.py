"""Many clients uploading at once to the embedded installation (SQLite, the file broker),
through gunicorn with two workers while a Celery worker processes what arrives.

Two web processes and a worker write to one SQLite file. A write that finds the file locked
must wait its turn (WAL, IMMEDIATE transactions and the busy timeout in settings.py), not fail
with "database is locked": the client would get a 500 and the upload would be lost.
bench/load.py runs the same with 200 users and reports the latencies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from conftest import LiveServer, log_tails, run_manage, wait_until
from documents.tests.samples import text_pdf

UPLOADERS = 20
TIMEOUT = 60
PROCESSING_TIMEOUT = 180


def embedded_installation(env: dict[str, str]) -> str:
    """Migrate the installation's own SQLite database; an API token of a new account in it."""
    migrated = run_manage(env, "migrate", "-v0", timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    code = (
        "from accounts.models import User; from accounts.services import token_create; "
        "user = User.objects.create_user(username='uploader', password=None); "
        "print(token_create(user=user, name='uploads')[1])"
    )
    made = run_manage(env, "shell", "-c", code)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_twenty_clients_uploading_at_once_to_the_embedded_installation_all_get_their_document_once(
    embedded_env: dict[str, str],
    start_worker: Callable[..., Any],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    tmp_path: Path,
) -> None:
    # One address and one token send all twenty; the rate limiter would rightly slow that down.
    env = {**embedded_env, "RATE_LIMITING_ENABLED": "false"}
    token = embedded_installation(env)
    start_worker(env)
    server = start_gunicorn(env)
    headers = {"Authorization": f"Bearer {token}"}
    # Every client sends at the same moment, so the writes meet in the database.
    everyone_ready = threading.Barrier(UPLOADERS)

    def upload_and_read(number: int) -> list[tuple[str, int, Any]]:
        with requests.Session() as client:
            client.headers.update(headers)
            pdf = text_pdf(f"Delivery note {number} of the concurrent upload test")
            everyone_ready.wait(timeout=TIMEOUT)
            uploaded = client.post(
                f"{server.url}/api/ui-upload",
                files={"file": (f"note-{number}.pdf", pdf, "application/pdf")},
                timeout=TIMEOUT,
            )
            answers = [("upload", uploaded.status_code, uploaded.json() if uploaded.ok else uploaded.text)]
            if uploaded.ok:
                document_id = uploaded.json()["document_id"]
                status = client.get(f"{server.url}/api/files/{document_id}", timeout=TIMEOUT)
                answers.append(("status", status.status_code, status.text[:200]))
            listed = client.get(f"{server.url}/api/files", timeout=TIMEOUT)
            answers.append(("list", listed.status_code, listed.text[:200]))
            return answers

    with ThreadPoolExecutor(max_workers=UPLOADERS) as pool:
        answers = [answer for answers in pool.map(upload_and_read, range(UPLOADERS)) for answer in answers]

    failed = [answer for answer in answers if answer[1] != 200]
    assert not failed, f"{failed}\n{log_tails(tmp_path)()}"
    uploads = [body for name, _status, body in answers if name == "upload"]
    assert [upload["status"] for upload in uploads] == ["queued"] * UPLOADERS
    document_ids = {upload["document_id"] for upload in uploads}
    assert len(document_ids) == UPLOADERS

    def all_completed() -> list[dict[str, Any]] | None:
        listed = requests.get(
            f"{server.url}/api/files", params={"per_page": 100}, headers=headers, timeout=TIMEOUT
        )
        assert listed.status_code == 200, listed.text
        files: list[dict[str, Any]] = listed.json()["files"]
        return files if all(item["status"] == "completed" for item in files) else None

    files = wait_until(
        all_completed,
        timeout=PROCESSING_TIMEOUT,
        what="every uploaded document to be completed",
        interval=0.5,
        details=log_tails(tmp_path),
    )
    # Each upload is one document, the worker finished each, and nothing else appeared.
    assert sorted(item["id"] for item in files) == sorted(document_ids)
    assert "database is locked" not in log_tails(tmp_path, characters=10**7)()
