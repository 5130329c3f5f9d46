"""Deliveries by a real Celery worker after real processing, against a real S3 API."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from django.utils import timezone

from conftest import log_tails, wait_until
from destinations.models import Delivery, DeliveryStatus
from destinations.tasks import delivery_run_task
from destinations.tests.conftest import kill_worker_mid_upload
from documents.models import Document, DocumentStatus, FailureKind
from documents.services import document_ingest
from documents.storage import open_file, read_chunks

pytestmark = pytest.mark.usefixtures("engines")

# Seconds for a worker to process and deliver a document, on a busy machine.
PROCESSING_TIMEOUT = 180


def upload(owner, path):
    with path.open("rb") as handle:
        return document_ingest(owner=owner, chunks=read_chunks(handle), filename=path.name).document


def delivered(document):
    return Delivery.objects.filter(document=document).exclude(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.IN_PROGRESS]
    )


def wait_for_delivery(document, tmp_path):
    """Until the document's delivery has ended, delivered or failed."""
    wait_until(
        lambda: delivered(document).exists(),
        timeout=PROCESSING_TIMEOUT,
        what="the delivery",
        details=log_tails(tmp_path),
    )


def processed_bytes(document: Document) -> bytes:
    with open_file(document.processed_file) as handle:
        return handle.read()


def test_a_processed_document_lands_once_under_its_templated_path_and_a_redelivery_changes_nothing(
    owner, samples, worker_env, start_worker, make_s3_destination, bucket, s3_server, tmp_path
):
    make_s3_destination(folder_template="{year}/{correspondent}/{filename}")
    start_worker(worker_env)
    document = upload(owner, samples / "blank.pdf")
    wait_for_delivery(document, tmp_path)

    document.refresh_from_db()
    assert document.status == DocumentStatus.COMPLETED
    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    key = f"archive/{timezone.localdate().year}/unknown/{PurePosixPath(document.processed_file).name}"
    assert bucket.keys() == [key]
    assert bucket.read(key) == processed_bytes(document)

    writes = len(s3_server.writes)
    again = delivery_run_task.apply_async(args=(delivery.pk,), ignore_result=False)
    assert again.get(timeout=120) == "noop"
    assert len(s3_server.writes) == writes
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1
    assert document.logs.filter(step_name="upload_to_s3", status="success").count() == 1


def test_a_worker_killed_mid_upload_ends_with_one_complete_object(
    owner, samples, worker_env, start_worker, make_s3_destination, bucket, s3_server, tmp_path
):
    make_s3_destination()
    held = s3_server.hold("/archive/")  # the first upload into the folder waits for the test
    worker = start_worker(worker_env, name="crashy")
    document = upload(owner, samples / "blank.pdf")
    kill_worker_mid_upload(
        worker,
        started=held.started.is_set,
        release=held.released.set,
        logs=list(tmp_path.glob("*.log")),
        timeout=PROCESSING_TIMEOUT,
    )
    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.IN_PROGRESS  # nobody could record anything
    assert bucket.keys() == []

    start_worker(worker_env, name="crashy")  # the same node comes back
    wait_for_delivery(document, tmp_path)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.attempts == 2
    document.refresh_from_db()
    name = PurePosixPath(document.processed_file).name
    assert bucket.keys() == [f"archive/{name}"]
    assert bucket.read(f"archive/{name}") == processed_bytes(document)
    assert Delivery.objects.filter(document=document).count() == 1
    assert document.logs.filter(step_name="upload_to_s3", message__contains="worker stopped").exists()


def test_refused_credentials_fail_the_delivery_with_the_reason_and_the_document_stays_completed(
    owner, samples, worker_env, start_worker, make_s3_destination, bucket, s3_server, tmp_path
):
    make_s3_destination(
        keys={"access_key_id": "AKIAUNKNOWNKEY000000", "secret_access_key": "wrong-secret-value"}
    )
    s3_server.authentication(enforced=True)
    try:
        start_worker(worker_env)
        document = upload(owner, samples / "blank.pdf")
        wait_for_delivery(document, tmp_path)
    finally:
        s3_server.authentication(enforced=False)

    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error_kind == FailureKind.CONFIGURATION
    assert "the access key or secret key is wrong" in delivery.error
    assert delivery.attempts == 1  # not retried: retrying cannot help
    document.refresh_from_db()
    assert (document.status, document.error) == (DocumentStatus.COMPLETED, "")
    assert bucket.keys() == []
    failure = document.logs.get(step_name="upload_to_s3", status="failure")
    assert failure.kind == FailureKind.CONFIGURATION
    for path in tmp_path.glob("*.log"):
        assert "wrong-secret-value" not in path.read_text(errors="replace")
