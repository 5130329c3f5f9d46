"""/metrics: who may read it, and what Prometheus reads there, parsed with its own parser.

The live test runs gunicorn with two workers, as production does, and checks that every
scrape, whichever worker answers it, counts the requests both workers served.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client
from django.utils import timezone
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from conftest import LiveServer, log_tail, run_manage
from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.steps import STEP_NAMES
from documents.tests.factories import DocumentFactory
from ops import metrics
from ops.models import BackupRecord, BackupStatus, BackupTier
from sources.models import Source, SourceKind

TOKEN = "metrics-token-for-the-tests-0123456789"
LATENCY = "docuelevate_http_request_duration_seconds"
# A document id that must never show up as a label value.
DOCUMENT_ID = "424242"
FAMILIES = {
    "docuelevate_documents",
    "docuelevate_documents_processed",  # the parser names a counter without its _total
    "docuelevate_step_duration_seconds",
    "docuelevate_celery_queue_length",
    "docuelevate_celery_workers_online",
    "docuelevate_backup_age_seconds",
    "docuelevate_info",
    LATENCY,
}


def parse(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Metric, sample_name: str, **labels: str) -> float:
    found = [s.value for s in family.samples if s.name == sample_name and s.labels == labels]
    assert len(found) == 1, f"{sample_name}{labels} in {family.samples}"
    return found[0]


@pytest.fixture
def open_with_token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []


def scrape(client: Client) -> dict[str, Metric]:
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    return parse(answer.content.decode())


# --- Who may read it ----------------------------------------------------------------------------


def test_metrics_are_closed_when_neither_a_token_nor_addresses_are_set(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Token {TOKEN}", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
def test_metrics_refuse_a_caller_without_the_right_bearer_token(
    client: Client, open_with_token: None, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 403
    assert b"docuelevate_" not in answer.content


@pytest.mark.django_db
def test_metrics_answer_the_right_bearer_token(client: Client, open_with_token: None) -> None:
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "docuelevate_documents" in parse(answer.content.decode())


@pytest.mark.django_db
def test_metrics_answer_an_allowed_address_without_a_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.8").status_code == 403


@pytest.mark.django_db
def test_behind_the_proxy_only_the_address_the_proxy_saw_counts(client: Client, settings: Any) -> None:
    settings.SECURE_PROXY = True
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOWED_IPS = ["192.0.2.7"]
    proxy: dict[str, Any] = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_PROTO": "https"}
    allowed = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9, 192.0.2.7", **proxy)
    assert allowed.status_code == 200
    # The client wrote the allowed address itself; the proxy appended the real one.
    forged = client.get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.7, 203.0.113.9", **proxy)
    assert forged.status_code == 403


# --- What it says -------------------------------------------------------------------------------


def _document(owner: User, status: str, name: str) -> Document:
    return DocumentFactory.create(owner=owner, original_filename=name, status=status)


def test_metrics_count_documents_outcomes_and_step_durations_from_the_database(
    client: Client, owner: User, open_with_token: None
) -> None:
    now = timezone.now()
    done = _document(owner, DocumentStatus.COMPLETED, "done")
    broken = _document(owner, DocumentStatus.FAILED, "broken")
    _document(owner, DocumentStatus.PENDING, "waiting")
    copy = _document(owner, DocumentStatus.DUPLICATE, "copy")
    for document, seconds in ((done, 3), (broken, 40)):
        ProcessingStep.objects.create(
            document=document,
            name="ocr",
            position=1,
            status=StepStatus.SUCCESS if document is done else StepStatus.FAILURE,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
        )
    # A step still running has no duration yet.
    ProcessingStep.objects.create(document=done, name="convert", position=0, started_at=now)
    ProcessingLog.objects.create(document=done, step_name=STEP_NAMES[-1], status=StepStatus.SUCCESS)
    ProcessingLog.objects.create(document=done, step_name="ocr", status=StepStatus.SUCCESS)  # not an end
    ProcessingLog.objects.create(document=broken, step_name="ocr", status=StepStatus.FAILURE)
    ProcessingLog.objects.create(document=copy, step_name="ingest", status=DocumentStatus.DUPLICATE)

    families = scrape(client)

    documents = families["docuelevate_documents"]
    assert value(documents, "docuelevate_documents", status="completed") == 1
    assert value(documents, "docuelevate_documents", status="pending") == 1
    assert value(documents, "docuelevate_documents", status="processing") == 0
    processed = families["docuelevate_documents_processed"]
    assert processed.type == "counter"
    for outcome in ("completed", "failed", "duplicate"):
        assert value(processed, "docuelevate_documents_processed_total", outcome=outcome) == 1
    steps = families["docuelevate_step_duration_seconds"]
    assert steps.type == "histogram"
    name = "docuelevate_step_duration_seconds"
    assert value(steps, f"{name}_count", step="ocr") == 2
    assert value(steps, f"{name}_sum", step="ocr") == pytest.approx(43)
    assert value(steps, f"{name}_bucket", step="ocr", le="2.5") == 0
    assert value(steps, f"{name}_bucket", step="ocr", le="5.0") == 1
    assert value(steps, f"{name}_bucket", step="ocr", le="60.0") == 2
    assert value(steps, f"{name}_bucket", step="ocr", le="+Inf") == 2
    assert not [s for s in steps.samples if s.labels.get("step") == "convert"]
    assert "docuelevate_celery_workers_online" in families


def test_backup_age_appears_once_a_backup_succeeded(
    client: Client, db: None, open_with_token: None, clock: Any
) -> None:
    assert "docuelevate_backup_age_seconds" not in scrape(client)
    finished = timezone.now() - timedelta(hours=2)
    BackupRecord.objects.create(
        tier=BackupTier.DAILY, status=BackupStatus.SUCCEEDED, started_at=finished, finished_at=finished
    )
    age = scrape(client)["docuelevate_backup_age_seconds"]
    assert value(age, "docuelevate_backup_age_seconds") == 7200


def test_deliveries_are_counted_by_kind_and_status_with_failing_destinations_and_durations(
    client: Client, owner: User, open_with_token: None
) -> None:
    now = timezone.now()
    archive = Destination.objects.create(kind="s3", name="archive", health_status=HealthStatus.OK)
    broken = Destination.objects.create(
        kind="s3", name="broken", owner=owner, health_status=HealthStatus.FAILING
    )
    Destination.objects.create(kind="webdav", name="new", owner=owner)  # never checked
    Destination.objects.create(kind="webdav", name="off", enabled=False, health_status=HealthStatus.FAILING)
    for number, (destination, status, seconds) in enumerate(
        [
            (archive, DeliveryStatus.DELIVERED, 2),
            (archive, DeliveryStatus.DELIVERED, 45),
            (archive, DeliveryStatus.PENDING, None),
            (broken, DeliveryStatus.FAILED, 1),  # failed: no delivery duration
        ]
    ):
        Delivery.objects.create(
            document=_document(owner, DocumentStatus.COMPLETED, f"document-{number}"),
            destination=destination,
            status=status,
            started_at=now - timedelta(seconds=seconds) if seconds else None,
            finished_at=now if seconds else None,
        )

    families = scrape(client)

    deliveries = families["docuelevate_deliveries"]
    assert deliveries.type == "gauge"
    assert value(deliveries, "docuelevate_deliveries", kind="s3", status="delivered") == 2
    assert value(deliveries, "docuelevate_deliveries", kind="s3", status="pending") == 1
    assert value(deliveries, "docuelevate_deliveries", kind="s3", status="failed") == 1
    assert value(deliveries, "docuelevate_deliveries", kind="s3", status="skipped") == 0  # there, as 0
    assert not [s for s in deliveries.samples if s.labels["kind"] == "webdav"]  # none went there yet

    destinations = families["docuelevate_destinations"]
    assert value(destinations, "docuelevate_destinations", kind="s3", health="ok") == 1
    assert value(destinations, "docuelevate_destinations", kind="s3", health="failing") == 1
    assert value(destinations, "docuelevate_destinations", kind="webdav", health="unknown") == 1
    assert value(destinations, "docuelevate_destinations", kind="webdav", health="failing") == 0  # disabled

    name = "docuelevate_delivery_duration_seconds"
    durations = families[name]
    assert durations.type == "histogram"
    assert value(durations, f"{name}_count", kind="s3") == 2
    assert value(durations, f"{name}_sum", kind="s3") == pytest.approx(47)
    assert value(durations, f"{name}_bucket", kind="s3", le="2.5") == 1
    assert value(durations, f"{name}_bucket", kind="s3", le="30.0") == 1
    assert value(durations, f"{name}_bucket", kind="s3", le="60.0") == 2


def test_request_latency_is_labelled_by_route_name_never_by_path(
    client: Client, db: None, open_with_token: None
) -> None:
    assert client.get(f"/api/files/{DOCUMENT_ID}").status_code == 401
    assert client.get(f"/no/such/page/{DOCUMENT_ID}").status_code == 404

    latency = scrape(client)[LATENCY]
    routes = {sample.labels["route"] for sample in latency.samples}
    assert {"api-file", "unmatched"} <= routes
    assert not [route for route in routes if DOCUMENT_ID in route]
    assert value(latency, f"{LATENCY}_count", route="api-file", method="GET", status="401") >= 1


@pytest.mark.subprocess
def test_a_new_server_removes_the_metrics_folders_of_servers_no_longer_running(tmp_path: Path) -> None:
    host = socket.gethostname()
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = tmp_path / f"server-{host}-{finished.pid}-1"  # that pid ran, and is gone
    reused = tmp_path / f"server-{host}-{os.getpid()}-1"  # a live pid, but started at another time
    running = tmp_path / f"server-{host}-{os.getpid()}-{metrics._start_time(os.getpid())}"
    other_host = tmp_path / f"server-{host}-2-{finished.pid}-1"  # host "<host>-2" on a shared volume
    for folder in (dead, reused, running, other_host):
        folder.mkdir()

    mine = metrics.server_folder(tmp_path)

    assert mine.name == f"server-{host}-{os.getppid()}-{metrics._start_time(os.getppid())}"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [mine.name, running.name, other_host.name]
    )


# --- Live: gunicorn with two workers ------------------------------------------------------------


def test_metrics_under_gunicorn_count_the_requests_of_both_workers(
    embedded_env: dict[str, str],
    redis_url: str,
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> None:
    # The API budget per client is far above what this test sends from its one address.
    env = {**embedded_env, "METRICS_TOKEN": TOKEN, "REDIS_URL": redis_url, "RATE_LIMIT_DEFAULT": "10000/m"}
    migrated = run_manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    made = run_manage(
        env,
        "shell",
        "-c",
        "from django.utils import timezone; from ops.models import BackupRecord; "
        "BackupRecord.objects.create(tier='daily', status='succeeded', finished_at=timezone.now())",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    server = start_gunicorn(env)
    metrics_dir = Path(env["WORKDIR"]) / "metrics"

    def ask(_: int) -> int:
        # A new connection each time, so either worker may take it.
        return requests.get(f"{server.url}/api/files/{DOCUMENT_ID}", timeout=30).status_code

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            assert set(pool.map(ask, range(40))) == {401}
            sent += 40
            # Each worker process writes its own file: two files, two workers served.
            if len(list(metrics_dir.glob("server-*/histogram_*.db"))) >= 2:
                break
    workers_seen = sorted(path.name for path in metrics_dir.glob("server-*/histogram_*.db"))
    assert len(workers_seen) >= 2, f"{workers_seen}\n{log_tail(server.log)}"

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(4):  # whichever worker answers the scrape, it counts every request
        answer = requests.get(f"{server.url}/metrics", headers=bearer, timeout=30)
        assert answer.status_code == 200, log_tail(server.log)
        families = parse(answer.text)
        assert set(families) >= FAMILIES
        latency = families[LATENCY]
        assert value(latency, f"{LATENCY}_count", route="api-file", method="GET", status="401") == sent
        assert not [s for s in latency.samples if DOCUMENT_ID in s.labels.get("route", "")]
        queues = families["docuelevate_celery_queue_length"]
        assert {s.labels["queue"] for s in queues.samples} == {"document_processor", "default", "celery"}
        assert value(families["docuelevate_backup_age_seconds"], "docuelevate_backup_age_seconds") >= 0

    unauthorised = requests.get(f"{server.url}/metrics", timeout=30)
    assert unauthorised.status_code == 403


def test_documents_are_counted_by_source_and_sources_by_health_with_the_age_of_their_last_success(
    client: Client, owner: User, open_with_token: None
) -> None:
    for number, source in enumerate(["upload", "upload", "imap", "watch"]):
        DocumentFactory.create(owner=owner, original_filename=f"from-{number}.pdf", source=source)
    now = timezone.now()
    Source.objects.create(
        kind=SourceKind.IMAP,
        name="Scanner inbox",
        last_poll_at=now,
        last_success_at=now - timedelta(hours=1),
        last_error="The mail server refused the sign-in of scans: check the password.",
        last_error_kind="configuration",
    )
    Source.objects.create(
        kind=SourceKind.WATCH, name="Scans", last_poll_at=now, last_success_at=now - timedelta(minutes=2)
    )
    Source.objects.create(kind=SourceKind.IMAP, name="Alice's mail", owner=owner)  # never polled
    Source.objects.create(kind=SourceKind.WATCH, name="Old share", enabled=False, last_error="gone")

    families = scrape(client)

    by_source = families["docuelevate_documents_by_source"]
    assert value(by_source, "docuelevate_documents_by_source", source="upload") == 2
    assert value(by_source, "docuelevate_documents_by_source", source="imap") == 1
    assert value(by_source, "docuelevate_documents_by_source", source="watch") == 1
    sources = families["docuelevate_sources"]
    assert value(sources, "docuelevate_sources", kind="imap", health="failing") == 1
    assert value(sources, "docuelevate_sources", kind="imap", health="unknown") == 1
    assert value(sources, "docuelevate_sources", kind="imap", health="ok") == 0  # there, as 0
    assert value(sources, "docuelevate_sources", kind="watch", health="ok") == 1
    assert value(sources, "docuelevate_sources", kind="watch", health="failing") == 0  # disabled
    age = families["docuelevate_source_last_success_age_seconds"]
    # The system-wide sources only, each by name; a user's own mailbox makes no series.
    assert {sample.labels["name"] for sample in age.samples} == {"Scanner inbox", "Scans"}
    inbox = value(age, "docuelevate_source_last_success_age_seconds", kind="imap", name="Scanner inbox")
    assert 3600 <= inbox < 3600 + 300
    scans = value(age, "docuelevate_source_last_success_age_seconds", kind="watch", name="Scans")
    assert 120 <= scans < 120 + 300
