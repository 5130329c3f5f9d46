"""POST /api/process-url, ``document_ingest_url`` and ``document_fetch_url``: a real HTTP(S)
server on 127.0.0.1.

127.0.0.1 is itself refused by the rule against private addresses, so the happy paths let
it through as an operator lets an intranet server through (``URL_FETCH_ALLOWED_NETWORKS``,
the ``loopback_allowed`` fixture), and the refusals go through the view exactly as a client
reaches it, with the setting empty as it is by default.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError as BrokerUnavailable
from rest_framework.test import APIClient

from documents.models import Document, DocumentStatus, ProcessingLog, StepStatus
from documents.services import (
    URL_STALE_GRACE_SECONDS,
    URL_TASK_TIME_LIMIT,
    document_fetch_resume_stale,
    document_fetch_url,
    document_ingest_url,
)
from documents.tests import file_server
from documents.tests.file_server import FileServer, certificate_for, serve, url_of
from documents.tests.samples import Samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(samples: Samples) -> Iterator[FileServer]:
    yield from serve(samples)


@pytest.fixture
def resolve_as(monkeypatch):
    """Make chosen host names resolve to chosen addresses, as a DNS server would."""
    return lambda mapping: file_server.resolve_as(monkeypatch, mapping)


# --- Fetching (the services, allowed to reach 127.0.0.1) ----------------------------------


@pytest.fixture
def loopback_allowed(settings) -> None:
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)


def fetched(owner, url: str, *, filename: str | None = None) -> Document:
    """Accept ``url`` as the route does, then download it as the worker's task does."""
    accepted = document_ingest_url(owner=owner, url=url, filename=filename)
    return document_fetch_url(document_id=accepted.document.pk)


def assert_failed_without_file(document: Document, reason: str) -> None:
    assert document.status == DocumentStatus.FAILED
    assert reason in document.error
    assert document.original_file == ""
    assert ProcessingLog.objects.filter(document=document, step_name="fetch", status="failed").exists()


def test_a_url_is_accepted_at_once_and_downloaded_by_the_worker_then_queued_like_an_upload(
    loopback_allowed, owner, server, samples, document_storage, sent, django_capture_on_commit_callbacks
):
    url = url_of(server, "/files/blank.pdf")
    with django_capture_on_commit_callbacks(execute=True):
        accepted = document_ingest_url(owner=owner, url=url)

    # Accepting fetched nothing: the download is the worker's.
    document = accepted.document
    assert server.requests == []
    assert (document.status, document.source, document.source_ref) == (DocumentStatus.PENDING, "url", url)
    assert [(call["task"], call["args"], call["task_id"]) for call in sent] == [
        ("documents.tasks.document_fetch_url_task", (document.pk,), accepted.task_id)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        document = document_fetch_url(document_id=document.pk)

    assert document.original_filename == "blank.pdf"
    assert document.mime_type == "application/pdf"
    assert (document_storage / document.original_file).read_bytes() == (samples / "blank.pdf").read_bytes()
    assert sent[-1]["task"] == "documents.tasks.pipeline_step_task"
    assert sent[-1]["args"] == (document.pk, "convert")
    assert set(document.steps.values_list("status", flat=True)) == {"pending"}


def test_a_fetch_task_delivered_again_downloads_and_ingests_once(
    loopback_allowed, owner, server, document_storage, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = fetched(owner, url_of(server, "/files/blank.pdf"))
        # Delivered again before processing started (the worker died after the commit):
        # the first step is sent again, which the runner's claim makes run once.
        again = document_fetch_url(document_id=document.pk)
        document.steps.filter(name="convert").update(status=StepStatus.IN_PROGRESS)
        # Delivered again once processing runs: nothing more.
        document_fetch_url(document_id=document.pk)

    assert again.original_file == document.original_file
    assert [path for path, _host in server.requests] == ["/files/blank.pdf"]
    assert len(list((document_storage / "originals").iterdir())) == 1
    assert ProcessingLog.objects.filter(document=document, step_name="ingest").count() == 1
    pipeline_sends = [call["args"] for call in sent if call["task"] == "documents.tasks.pipeline_step_task"]
    assert pipeline_sends == [(document.pk, "convert"), (document.pk, "convert")]


def test_a_url_whose_file_is_already_there_is_recorded_as_a_duplicate(
    loopback_allowed, owner, server, document_storage, sent
):
    first = fetched(owner, url_of(server, "/files/blank.pdf"))
    second = fetched(owner, url_of(server, "/named"))

    assert second.status == DocumentStatus.DUPLICATE
    assert second.duplicate_of == first
    assert second.original_file == ""


def test_the_name_comes_from_the_filename_field_then_content_disposition_then_the_url_path(
    loopback_allowed, owner, server, document_storage
):
    assert fetched(owner, url_of(server, "/named"), filename="mine.pdf").original_filename == "mine.pdf"
    Document.objects.all().delete()

    assert fetched(owner, url_of(server, "/named")).original_filename == "Grüße \N{EN DASH} Rechnung.pdf"
    Document.objects.all().delete()

    assert fetched(owner, url_of(server, "/files/scan.png?x=1")).original_filename == "scan.png"


def test_up_to_three_redirects_are_followed_and_a_fourth_fails_the_document(
    loopback_allowed, owner, server, document_storage
):
    assert fetched(owner, url_of(server, "/redirect/3")).original_filename == "blank.pdf"

    assert_failed_without_file(fetched(owner, url_of(server, "/redirect/4")), "redirected more than 3 times")


def test_a_redirect_to_a_cloud_metadata_address_is_checked_again_and_refused(
    loopback_allowed, owner, server, document_storage
):
    accepted = document_ingest_url(owner=owner, url=url_of(server, "/to-metadata"))
    document = document_fetch_url(document_id=accepted.document.pk)

    assert [path for path, _host in server.requests] == ["/to-metadata"]
    assert_failed_without_file(document, "private or reserved")


def test_the_download_connects_to_the_address_that_was_checked_and_names_the_host(
    loopback_allowed, owner, server, document_storage, resolve_as
):
    # A name our resolver knows but the system's does not: only the checked address can be used.
    resolve_as({"files.example.test": ["127.0.0.1"]})

    document = fetched(owner, url_of(server, "/files/blank.pdf", host="files.example.test"))

    assert document.original_filename == "blank.pdf"
    assert server.requests == [("/files/blank.pdf", f"files.example.test:{server.server_address[1]}")]


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_a_file_over_the_size_limit_fails_while_streaming_and_nothing_is_kept(
    loopback_allowed, owner, server, document_storage, settings, path
):
    settings.MAX_UPLOAD_SIZE = 10_000

    assert_failed_without_file(fetched(owner, url_of(server, path)), "larger than the limit of 10000 bytes")
    assert not (document_storage / "originals").exists()
    assert not any((document_storage / "tmp").glob("*"))


def test_an_error_answer_of_the_server_fails_the_document_naming_the_status(
    loopback_allowed, owner, server, document_storage
):
    assert_failed_without_file(fetched(owner, url_of(server, "/nothing-here")), "answered 404")


def test_a_server_that_refuses_the_connection_is_unreachable_not_a_timeout(
    loopback_allowed, owner, document_storage
):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert_failed_without_file(fetched(owner, f"http://127.0.0.1:{port}/x.pdf"), "could not be reached")


# --- HTTPS: the checked address, the URL's name for TLS -----------------------------------


@pytest.fixture
def tls_server(samples: Samples, tmp_path: Path, settings) -> Iterator[FileServer]:
    """An HTTPS server whose certificate (for files.example.test) the fetcher is told to trust."""
    cert, key = certificate_for("files.example.test", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    settings.URL_FETCH_CA_BUNDLE = str(cert)
    yield from serve(samples, tls=context)


def test_https_is_verified_against_the_name_in_the_url_while_connecting_to_the_checked_address(
    loopback_allowed, owner, tls_server, document_storage, resolve_as
):
    resolve_as({"files.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})

    trusted = url_of(tls_server, "/files/blank.pdf", host="files.example.test", scheme="https")
    document = fetched(owner, trusted)
    assert document.original_filename == "blank.pdf"

    # The same server under a name its certificate does not carry is not trusted.
    other = fetched(owner, url_of(tls_server, "/files/scan.png", host="other.example.test", scheme="https"))
    assert_failed_without_file(other, "certificate")


# --- The route, as clients reach it --------------------------------------------------------


def test_the_route_answers_202_with_the_document_at_once_without_fetching(
    api, server, document_storage, loopback_allowed, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/process-url",
            {"url": url_of(server, "/slow"), "filename": "scan.pdf"},
            format="json",
        )

    assert response.status_code == 202
    document = Document.objects.get()
    assert response.json() == {
        "task_id": sent[0]["task_id"],
        "document_id": document.pk,
        "status": "queued",
        "original_filename": "scan.pdf",
        "stored_filename": "",
    }
    assert server.requests == []  # the slow server holds a worker, never the web request
    assert api.get(f"/api/files/{document.pk}").json()["status"] == "pending"


def test_a_url_accepted_while_the_broker_is_away_is_kept_and_sent_again_by_the_watchdog(
    api, server, document_storage, loopback_allowed, monkeypatch, django_capture_on_commit_callbacks, clock
):
    def refuse(*args, **kwargs):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("documents.tasks.document_fetch_url_task.apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/process-url", {"url": url_of(server, "/files/blank.pdf")}, format="json")

    assert response.status_code == 202
    document = Document.objects.get()
    assert document.status == DocumentStatus.PENDING

    sent: list[tuple[int, ...]] = []
    monkeypatch.setattr(
        "documents.tasks.document_fetch_url_task.apply_async", lambda args, **options: sent.append(args)
    )
    clock.shift(URL_TASK_TIME_LIMIT + URL_STALE_GRACE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert document_fetch_resume_stale() == [document.pk]
    assert sent == [(document.pk,)]


def test_a_download_that_fails_on_the_worker_shows_its_reason_in_the_files_api(
    api, owner, server, document_storage, loopback_allowed, settings
):
    settings.MAX_UPLOAD_SIZE = 10_000
    response = api.post("/api/process-url", {"url": url_of(server, "/big")}, format="json")
    document_id = response.json()["document_id"]

    document_fetch_url(document_id=document_id)

    detail = api.get(f"/api/files/{document_id}").json()
    assert detail["status"] == "failed"
    assert any("10000 bytes" in entry["message"] for entry in detail["logs"])


def test_the_route_never_fetches_from_the_local_machine(api, server, document_storage):
    response = api.post("/api/process-url", {"url": url_of(server, "/files/blank.pdf")}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]
    assert server.requests == []
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x.pdf",
        "http://127.0.0.2:8080/x.pdf",
        "http://10.1.2.3/x.pdf",
        "http://192.168.0.10/x.pdf",
        "http://172.16.5.5/x.pdf",
        "http://100.64.0.1/x.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/x.pdf",
        "http://0.0.0.0/x.pdf",
        "http://224.0.0.1/x.pdf",
        "http://240.0.0.1/x.pdf",
        "http://[::1]/x.pdf",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/x.pdf",
        "http://[::ffff:127.0.0.1]/x.pdf",
        "http://[::ffff:169.254.169.254]/x.pdf",
        "http://[64:ff9b::a9fe:a9fe]/x.pdf",
        "http://[ff02::1]/x.pdf",
    ],
)
def test_private_loopback_link_local_multicast_reserved_and_metadata_addresses_are_refused(
    api, document_storage, url
):
    response = api.post("/api/process-url", {"url": url}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]
    assert not Document.objects.exists()


def test_a_listed_network_never_opens_the_cloud_metadata_addresses(api, settings, document_storage):
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"),)

    response = api.post("/api/process-url", {"url": "http://169.254.169.254/latest/"}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]
    assert not Document.objects.exists()


def test_a_host_with_any_private_address_among_public_ones_is_refused(api, document_storage, resolve_as):
    resolve_as({"mixed.example.test": ["93.184.215.14", "10.0.0.5"]})

    response = api.post("/api/process-url", {"url": "http://mixed.example.test/x.pdf"}, format="json")

    assert response.status_code == 400
    assert "private or reserved" in response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x.pdf", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "Only http:// and https://"),
        ("not a url", "Only http:// and https://"),
        ("http:///x.pdf", "no host name"),
        ("http://user:secret@example.com/x.pdf", "user name or password"),
        ("http://example.com:99999/x.pdf", "invalid port"),
        ("http://does-not-exist.invalid/x.pdf", "could not be resolved"),
        ("http://bücher.invalid/x.pdf", "could not be resolved"),
        ("http://a..b/x.pdf", "is not valid"),
    ],
)
def test_urls_that_are_not_plain_public_http_are_refused_with_a_reason(api, document_storage, url, message):
    response = api.post("/api/process-url", {"url": url}, format="json")

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_request_without_a_url_is_a_400_naming_the_field(api):
    response = api.post("/api/process-url", {"filename": "x.pdf"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("url:")


def test_an_anonymous_request_is_refused_with_json_and_fetches_nothing(server, document_storage):
    response = APIClient().post(
        "/api/process-url", {"url": url_of(server, "/files/blank.pdf")}, format="json"
    )

    assert response.status_code in (401, 403)
    assert "detail" in response.json()
    assert server.requests == []
