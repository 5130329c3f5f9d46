"""Where deliveries meet the pipeline: after processing in-process (``--sync``), and the watchdog."""

from __future__ import annotations

from io import StringIO
from pathlib import PurePosixPath

import pytest
from django.core.management import call_command

from destinations.models import Delivery, DeliveryStatus
from destinations.services import DELIVERY_STALE_GRACE_SECONDS, DELIVERY_TIME_LIMIT, deliveries_schedule
from destinations.state import delivery_claim
from documents.models import Document, DocumentStatus
from documents.storage import open_file
from documents.tasks import stuck_steps_watchdog_task


def processed_bytes(document: Document) -> bytes:
    with open_file(document.processed_file) as handle:
        return handle.read()


@pytest.mark.usefixtures("engines", "document_storage")
def test_ingest_and_reprocess_with_sync_deliver_in_this_process(owner, samples, make_s3_destination, bucket):
    make_s3_destination(folder_template="{owner}")
    call_command("ingest", str(samples / "blank.pdf"), "--sync", "--owner", owner.username, stdout=StringIO())

    document = Document.objects.get(owner=owner)
    assert document.status == DocumentStatus.COMPLETED
    key = f"archive/owner/{PurePosixPath(document.processed_file).name}"
    assert bucket.keys() == [key]
    assert bucket.read(key) == processed_bytes(document)
    assert Delivery.objects.get(document=document).status == DeliveryStatus.DELIVERED

    call_command("reprocess", "--id", str(document.pk), "--sync", stdout=StringIO())
    document.refresh_from_db()
    assert bucket.keys() == [key]  # the same place, the newest file
    assert bucket.read(key) == processed_bytes(document)
    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_the_watchdog_sends_again_deliveries_whose_worker_vanished(
    processed, make_s3_destination, monkeypatch, django_capture_on_commit_callbacks, clock
):
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed().pk)
    delivery_claim(delivery_id=delivery_id, task_id="t", worker_name="gone@node")
    clock.shift(DELIVERY_TIME_LIMIT + DELIVERY_STALE_GRACE_SECONDS + 5)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert stuck_steps_watchdog_task() == 1
    assert sent == [delivery_id]
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING
    assert stuck_steps_watchdog_task() == 0
