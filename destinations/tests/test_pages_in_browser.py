"""A person sets up a destination in a real browser (Debian's Chromium through Playwright),
against gunicorn, a real worker and a real S3 API, under the strict Content-Security-Policy:
add an S3 bucket on /destinations, test it, and see a processed document delivered there
on the document page; the console never shows a script error or a CSP violation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from conftest import BrowserPage, LiveServer, set_password_as_server
from destinations.models import Destination
from destinations.tests.conftest import S3_KEYS, Bucket, wait_until
from destinations.tests.servers.s3 import S3Server
from documents.services import document_ingest
from documents.tests.samples import Samples

pytestmark = pytest.mark.usefixtures("engines")

PASSWORD = "a-browser-tested-passphrase-7"
STEP_MS = 30_000
DELIVERY_SECONDS = 240  # processing and delivering one page on a busy two-core machine


def test_a_person_adds_a_bucket_tests_it_and_sees_a_document_delivered_there(
    owner: User,
    samples: Samples,
    worker_env: dict[str, str],
    start_worker: Callable[..., Any],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
    s3_server: S3Server,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    # The bucket is on 127.0.0.1: a user's destination may reach it only because the
    # operator allows that network, as for an intranet server.
    worker_env["URL_FETCH_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    site_env = {**worker_env, "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(site_env, owner, PASSWORD)
    start_worker(worker_env)
    server = start_gunicorn(site_env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    browser_page.sign_in(server, owner.username, PASSWORD)

    # Add: the kind first, then its settings and keys.
    page.get_by_role("link", name="Destinations").click()
    page.wait_for_url(f"{server.url}/destinations")
    page.get_by_label("Kind").select_option("s3")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{server.url}/destinations/new?kind=s3")
    page.get_by_label("Name", exact=True).fill("My bucket")
    page.get_by_label("Bucket").fill(bucket.name)
    page.get_by_label("Folder", exact=True).fill("scans")
    page.get_by_label("Endpoint URL").fill(s3_server.endpoint)
    page.get_by_label("Access key ID").fill(S3_KEYS["access_key_id"])
    page.get_by_label("Secret access key").fill(S3_KEYS["secret_access_key"])
    page.get_by_label("Folder template").fill("{year}/{filename}")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{server.url}/destinations")
    assert "Saved My bucket" in page.locator("main").inner_text()
    assert Destination.objects.get().owner == owner

    # Test: a file written and removed, and the health badge says so.
    page.get_by_role("button", name="Test My bucket").click()
    page.wait_for_url(f"{server.url}/destinations")
    assert "My bucket works" in page.locator("main").inner_text()
    assert page.locator("tr", has_text="My bucket").locator(".status-badge", has_text="Working").count() == 1
    assert bucket.keys() == []

    # A document processed by the worker lands in the bucket; its page shows where.
    with (samples / "blank.pdf").open("rb") as handle:
        document = document_ingest(owner=owner, chunks=[handle.read()], filename="blank.pdf").document
    # Enqueued from this process, on the broker the worker reads (the test's WORKDIR).
    wait_until(
        lambda: bool(bucket.keys()),
        what="the delivery",
        logs=list(tmp_path.glob("*.log")),
        timeout=DELIVERY_SECONDS,
    )
    (key,) = bucket.keys()
    document.refresh_from_db()
    assert key == f"scans/{timezone.localdate().year}/{PurePosixPath(document.processed_file).name}"
    page.goto(f"{server.url}/files/{document.pk}")
    deliveries = page.locator("section[aria-labelledby=deliveries-title]")
    deadline = time.monotonic() + STEP_MS / 1000
    while "Delivered" not in deliveries.inner_text() and time.monotonic() < deadline:
        page.reload()  # the delivery is recorded just after the upload
    row = deliveries.locator("tr", has_text="My bucket")
    assert row.locator(".status-badge").inner_text() == "Delivered"
    assert key in row.inner_text()

    # Redeliver: queued again, and the file there unchanged is not uploaded twice.
    writes = len(s3_server.writes)
    page.get_by_role("button", name="Redeliver to My bucket").click()
    page.wait_for_url(f"{server.url}/files/{document.pk}*")
    assert "1 delivery queued again." in page.locator("main").inner_text()
    deadline = time.monotonic() + STEP_MS / 1000
    while "Delivered" not in deliveries.inner_text() and time.monotonic() < deadline:
        page.reload()
    assert bucket.keys() == [key]
    assert len(s3_server.writes) == writes

    assert browser_page.problems == []
