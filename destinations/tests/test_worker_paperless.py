"""A Paperless-ngx delivery by a real Celery worker that is killed while Paperless-ngx
consumes the posted file: the worker that comes back waits on the same task, and the file
is posted once. Paperless-ngx answers from recorded exchanges (``recordings/``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from destinations.models import Delivery, DeliveryStatus
from destinations.services import deliveries_schedule, destination_create
from destinations.tests.conftest import wait_until
from destinations.tests.test_kinds_paperless import CHECKSUM, CONTENT, RECORDINGS, TASK, TOKEN
from documents import storage
from documents.models import FailureKind
from documents.tests.factories import DocumentFactory
from documents.tests.http_replay import running_replay_server


def test_a_worker_killed_while_paperless_consumes_leaves_one_posted_document(
    owner, worker_env, start_worker, tmp_path, loopback_allowed
):
    # The user's own Paperless is the replay server on 127.0.0.1, for the worker too.
    worker_env["URL_FETCH_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    document = DocumentFactory.create(owner=owner, document_title="Invoice")
    document.processed_file = storage.store_bytes(CONTENT, storage.processed_name(document.uuid, "Invoice"))
    document.save(update_fields=["processed_file"])

    def logs() -> list[Path]:
        return list(tmp_path.glob("*.log"))

    with running_replay_server() as paperless:
        destination_create(
            kind="paperless",
            name="Paperless",
            owner=owner,
            settings={"host": paperless.url},
            secrets={"api_token": TOKEN},
        )
        # Paperless takes the file in and then consumes it for as long as anyone asks.
        paperless.play("paperless_consumption_slow", RECORDINGS)
        worker = start_worker(worker_env, name="paperless-crashy")
        deliveries_schedule(document_id=document.pk)

        def polled() -> bool:
            return any(request.path.startswith("/api/tasks/") for request in paperless.received)

        wait_until(polled, what="the consumption task to be polled", logs=logs())
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and all it started
        worker.wait()

        delivery = Delivery.objects.get(document=document)
        assert delivery.status == DeliveryStatus.IN_PROGRESS  # nobody could record anything
        # The task was kept before the waiting began.
        assert delivery.remote_version == f"paperless-task:{CHECKSUM}:{TASK}"

        # Meanwhile Paperless has finished; the same node comes back.
        paperless.play("paperless_consumption_finished", RECORDINGS)
        start_worker(worker_env, name="paperless-crashy")
        wait_until(
            lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERED).exists(),
            what="the delivery",
            logs=logs(),
        )

    delivery.refresh_from_db()
    assert (delivery.remote_path, delivery.remote_id, delivery.attempts) == ("documents/42", "42", 2)
    posts = [request for request in paperless.received if request.path == "/api/documents/post_document/"]
    assert len(posts) == 1
    assert document.logs.filter(step_name="upload_to_paperless", kind=FailureKind.WORKER_LOST).exists()
