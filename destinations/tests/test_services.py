"""Deliveries in this process against a real S3 API: exactly once, checked before writing,
one destination's trouble kept to itself."""

from __future__ import annotations

import datetime
import socket

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.tests.factories import UserFactory
from destinations.models import CollisionPolicy, Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.selectors import deliveries_for_document
from destinations.services import (
    DELIVERY_STALE_GRACE_SECONDS,
    DELIVERY_TIME_LIMIT,
    DeliveryOutcome,
    deliveries_resend_overdue,
    deliveries_resume_abandoned,
    deliveries_resume_expired,
    deliveries_resume_stale,
    deliveries_schedule,
    delivery_run,
    destination_create,
    destination_update,
    system_destinations_sync,
)
from destinations.state import delivery_claim
from destinations.tests.conftest import S3_KEYS, sha256
from docuelevate.errors import Conflict, InvalidInput
from documents.models import DocumentStatus, FailureKind, ProcessingLog

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"


@pytest.fixture
def enqueued(monkeypatch):
    """The deliveries handed to the queue (captured, not sent)."""
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


def deliver_all(document):
    """Schedule and run every delivery of ``document`` here, as a worker would."""
    runs = [
        delivery_run(delivery_id=delivery_id) for delivery_id in deliveries_schedule(document_id=document.pk)
    ]
    return runs


def test_a_processed_document_is_delivered_under_its_templated_path(
    processed, make_s3_destination, bucket, enqueued, django_capture_on_commit_callbacks
):
    destination = make_s3_destination(folder_template="{year}/{correspondent}/{filename}")
    document = processed(CONTENT, correspondent="ACME", document_date=datetime.date(2024, 3, 12))
    with django_capture_on_commit_callbacks(execute=True):
        due = deliveries_schedule(document_id=document.pk)
    assert enqueued == due

    run = delivery_run(delivery_id=due[0])

    assert run.outcome == DeliveryOutcome.DELIVERED
    key = "archive/2024/ACME/2024-03-12_Invoice.pdf"
    assert bucket.keys() == [key]
    assert bucket.read(key) == CONTENT
    delivery = Delivery.objects.get(pk=due[0])
    assert (delivery.status, delivery.attempts, delivery.remote_path) == (DeliveryStatus.DELIVERED, 1, key)
    assert delivery.content_sha256 == sha256(CONTENT)
    assert delivery.remote_id == f"s3://{bucket.name}/{key}"
    assert delivery.delivered_at is not None
    steps = list(ProcessingLog.objects.filter(document=document).values_list("step_name", "status"))
    assert steps == [
        ("upload_to_s3", "pending"),
        ("upload_to_s3", "in_progress"),
        ("upload_to_s3", "success"),
    ]
    assert Destination.objects.get(pk=destination.pk).health_status == HealthStatus.OK


def test_a_delivery_run_twice_uploads_once(processed, make_s3_destination, s3_server, bucket, enqueued):
    make_s3_destination()
    document = processed(CONTENT)
    (delivery_id,) = deliveries_schedule(document_id=document.pk)
    writes = len(s3_server.writes)
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.NOOP  # the message came twice
    assert len(s3_server.writes) == writes + 1
    assert Delivery.objects.get(pk=delivery_id).attempts == 1


def test_the_same_content_already_there_counts_as_delivered_without_an_upload(
    processed, make_s3_destination, s3_server, bucket, enqueued
):
    make_s3_destination()
    document = processed(CONTENT)
    # An earlier run uploaded it, then its worker died before recording anything.
    bucket.put("archive/2024-03-12_Invoice.pdf", CONTENT, sha256=sha256(CONTENT))
    writes = len(s3_server.writes)
    (run,) = deliver_all(document)
    assert run.outcome == DeliveryOutcome.DELIVERED
    assert "nothing to upload" in run.message
    assert len(s3_server.writes) == writes
    assert Delivery.objects.get(document=document).remote_path == "archive/2024-03-12_Invoice.pdf"


def test_new_content_replaces_the_documents_own_file_and_a_new_name_removes_the_old_one(
    processed, make_s3_destination, bucket, enqueued
):
    make_s3_destination(folder_template="{title}")
    document = processed(CONTENT, document_title="Invoice")
    deliver_all(document)
    assert bucket.keys() == ["archive/Invoice/2024-03-12_Invoice.pdf"]

    # Reprocessed: new bytes under the same name, then a new title and so a new folder.
    document.processed_file = processed(b"%PDF-1.7 version two").processed_file
    document.save()
    (run,) = deliver_all(document)
    assert run.outcome == DeliveryOutcome.DELIVERED
    assert bucket.read("archive/Invoice/2024-03-12_Invoice.pdf") == b"%PDF-1.7 version two"

    document.document_title = "Invoice RE-4711"
    document.save()
    (run,) = deliver_all(document)
    assert bucket.keys() == ["archive/Invoice RE-4711/2024-03-12_Invoice.pdf"]
    assert "Removed the earlier copy archive/Invoice/2024-03-12_Invoice.pdf" in run.message
    delivery = Delivery.objects.get(document=document)
    assert (delivery.attempts, delivery.remote_path) == (1, "archive/Invoice RE-4711/2024-03-12_Invoice.pdf")


@pytest.mark.parametrize(
    ("policy", "keys", "status"),
    [
        (
            CollisionPolicy.RENAME,
            ["archive/2024-03-12_Invoice (2).pdf", "archive/2024-03-12_Invoice.pdf"],
            "delivered",
        ),
        (CollisionPolicy.REPLACE, ["archive/2024-03-12_Invoice.pdf"], "delivered"),
        (CollisionPolicy.SKIP, ["archive/2024-03-12_Invoice.pdf"], "skipped"),
    ],
)
def test_someone_elses_file_under_the_name_is_handled_by_the_collision_policy(
    processed, make_s3_destination, bucket, enqueued, policy, keys, status
):
    make_s3_destination(collision_policy=policy)
    bucket.put("archive/2024-03-12_Invoice.pdf", b"somebody else's file")
    deliver_all(processed(CONTENT))
    assert bucket.keys() == keys
    assert Delivery.objects.get().status == status
    kept = b"somebody else's file" if policy != CollisionPolicy.REPLACE else CONTENT
    assert bucket.read("archive/2024-03-12_Invoice.pdf") == kept


def test_a_documents_destinations_are_the_system_wide_ones_and_its_owners_own(
    processed, make_s3_destination, owner, enqueued
):
    system = make_s3_destination(name="everyone's")
    own = make_s3_destination(name="mine", owner=owner)
    make_s3_destination(name="someone else's", owner=UserFactory.create())
    make_s3_destination(name="switched off", owner=owner, enabled=False)
    document = processed(CONTENT)
    deliveries_schedule(document_id=document.pk)
    assert set(Delivery.objects.filter(document=document).values_list("destination", flat=True)) == {
        system.pk,
        own.pk,
    }


def test_an_unfinished_document_is_not_delivered(processed, make_s3_destination, enqueued):
    make_s3_destination()
    document = processed(CONTENT, status=DocumentStatus.PROCESSING)
    assert deliveries_schedule(document_id=document.pk) == []
    assert not Delivery.objects.exists()


def test_one_broken_destination_fails_alone(processed, make_s3_destination, bucket, enqueued):
    broken = make_s3_destination(name="gone", bucket_name="no-such-bucket")
    working = make_s3_destination(name="fine")
    document = processed(CONTENT)
    outcomes = {run.outcome for run in deliver_all(document)}
    assert outcomes == {DeliveryOutcome.DELIVERED, DeliveryOutcome.FAILED}
    failed = Delivery.objects.get(destination=broken)
    assert failed.status == DeliveryStatus.FAILED
    assert failed.error_kind == FailureKind.CONFIGURATION
    assert "The bucket no-such-bucket does not exist" in failed.error
    assert Delivery.objects.get(destination=working).status == DeliveryStatus.DELIVERED
    document.refresh_from_db()
    assert document.status == DocumentStatus.COMPLETED
    broken.refresh_from_db()
    assert broken.health_status == HealthStatus.FAILING
    assert "no-such-bucket" in broken.health_error


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_destination(owner) -> None:
    """An S3 destination of ``owner``'s whose endpoint refuses every connection."""
    destination_create(
        kind="s3",
        name="down",
        owner=owner,
        settings={"bucket": "b", "endpoint_url": f"http://127.0.0.1:{closed_port()}"},
        secrets=S3_KEYS,
    )


def test_a_temporary_failure_is_retried_with_jitter_then_fails_with_its_kind(
    processed, owner, settings, enqueued, loopback_allowed
):
    settings.TASK_RETRY_MAX_RETRIES = 2
    settings.TASK_RETRY_DELAYS = [100]
    unreachable_destination(owner)
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    first, second, third = (delivery_run(delivery_id=delivery_id) for _ in range(3))
    assert [first.outcome, second.outcome, third.outcome] == ["retry", "retry", "failed"]
    assert first.retry_in is not None
    assert 90 <= first.retry_in <= 110
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind, delivery.attempts) == ("failed", FailureKind.TEMPORARY, 3)
    assert "could not be reached" in delivery.error


def test_a_delivery_the_broker_refused_stays_pending_and_is_sent_again_once_overdue(
    processed, make_s3_destination, bucket, settings, monkeypatch, django_capture_on_commit_callbacks, clock
):
    settings.WORKER_CLAIM_TIMEOUT = 30
    make_s3_destination()
    document = processed(CONTENT)

    def refuse(delivery_id):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = deliveries_schedule(document_id=document.pk)  # Redis is away: nothing raised
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING

    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    clock.shift(29)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resend_overdue() == []  # a worker may still be about to take it
    clock.shift(2)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resend_overdue() == [delivery_id]
        assert deliveries_resend_overdue() == []  # sent again, it is due from now
    assert sent == [delivery_id]
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert len(bucket.keys()) == 1


def test_a_delivery_waiting_for_its_retry_is_not_taken_for_lost_before_its_time(
    processed, owner, settings, enqueued, loopback_allowed, clock
):
    settings.WORKER_CLAIM_TIMEOUT = 30
    settings.TASK_RETRY_DELAYS = [100]
    unreachable_destination(owner)
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    run = delivery_run(delivery_id=delivery_id)
    assert run.outcome == DeliveryOutcome.RETRY
    assert run.retry_in is not None
    clock.shift(run.retry_in + 29)
    assert deliveries_resend_overdue() == []
    clock.shift(2)
    assert deliveries_resend_overdue() == [delivery_id]


def test_only_one_of_two_runs_claims_a_delivery(processed, make_s3_destination, enqueued):
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    assert delivery_claim(delivery_id=delivery_id, task_id="a", worker_name="w1@host") is not None
    assert delivery_claim(delivery_id=delivery_id, task_id="b", worker_name="w2@host") is None


def test_a_request_during_a_run_makes_it_go_round_again(processed, make_s3_destination, bucket, enqueued):
    make_s3_destination()
    document = processed(CONTENT)
    (delivery_id,) = deliveries_schedule(document_id=document.pk)
    delivery = Delivery.objects.get(pk=delivery_id)
    Delivery.objects.filter(pk=delivery_id).update(
        requested_at=timezone.now() + datetime.timedelta(seconds=5)
    )
    run = delivery_run(delivery_id=delivery_id)
    assert run.again
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED


def test_a_delivery_left_by_a_dead_worker_is_resumed_when_it_starts_again(
    processed, make_s3_destination, bucket, enqueued, django_capture_on_commit_callbacks
):
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    delivery_claim(delivery_id=delivery_id, task_id="t", worker_name="crashy@host")  # then SIGKILL
    enqueued.clear()
    assert deliveries_resume_abandoned(worker_name="other@host") == []
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resume_abandoned(worker_name="crashy@host") == [delivery_id]
    assert enqueued == [delivery_id]
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind) == (DeliveryStatus.PENDING, FailureKind.WORKER_LOST)
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert Delivery.objects.get(pk=delivery_id).attempts == 2


def test_the_watchdog_sends_again_a_delivery_in_progress_past_its_time_limit(
    processed, make_s3_destination, enqueued, django_capture_on_commit_callbacks, clock
):
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    delivery_claim(delivery_id=delivery_id, task_id="t", worker_name="lost@node")
    clock.shift(DELIVERY_TIME_LIMIT)
    assert deliveries_resume_stale() == []  # at its time limit: the grace still runs
    clock.shift(DELIVERY_STALE_GRACE_SECONDS + 1)
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resume_stale() == [delivery_id]
    assert enqueued == [delivery_id]


def test_a_delivery_whose_worker_stopped_renewing_its_claim_is_sent_again_whatever_its_name(
    processed, make_s3_destination, settings, enqueued, django_capture_on_commit_callbacks, clock
):
    settings.WORKER_CLAIM_TIMEOUT = 30
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    delivery_claim(delivery_id=delivery_id, task_id="t", worker_name="pod-a@node")  # then SIGKILL
    clock.shift(29)
    assert deliveries_resume_expired() == []  # its claim still runs
    assert delivery_claim(delivery_id=delivery_id, task_id="again", worker_name="pod-b@node") is None
    clock.shift(2)
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resume_expired() == [delivery_id]
    assert enqueued == [delivery_id]
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind, delivery.claim_expires_at) == (
        DeliveryStatus.PENDING,
        FailureKind.WORKER_LOST,
        None,
    )
    assert (
        delivery_run(delivery_id=delivery_id, worker_name="pod-b@node").outcome == DeliveryOutcome.DELIVERED
    )


def test_a_delivery_whose_worker_keeps_dying_fails_instead_of_looping(
    processed, make_s3_destination, settings, enqueued
):
    settings.TASK_RETRY_MAX_RETRIES = 1
    make_s3_destination()
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    for _ in range(2):
        delivery_claim(delivery_id=delivery_id, task_id="t", worker_name="crashy@host")
        deliveries_resume_abandoned(worker_name="crashy@host")
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind) == (
        DeliveryStatus.FAILED,
        FailureKind.WORKER_LOST_REPEATEDLY,
    )


def test_the_document_detail_shows_each_delivery_and_no_secret(
    processed, make_s3_destination, bucket, enqueued
):
    make_s3_destination(name="Archive bucket")
    document = processed(CONTENT)
    deliver_all(document)
    (shown,) = deliveries_for_document(document)
    assert shown["destination"] == "Archive bucket"
    assert (shown["kind"], shown["status"], shown["attempts"]) == ("s3", "delivered", 1)
    assert shown["remote_path"] == "archive/2024-03-12_Invoice.pdf"
    assert shown["delivered_at"] is not None
    assert shown["error"] == ""
    assert S3_KEYS["secret_access_key"] not in repr(shown)


# --- Destinations --------------------------------------------------------------------------


def test_a_destination_with_an_unknown_placeholder_is_refused(make_s3_destination):
    with pytest.raises(InvalidInput, match=r"\{author\}, which is not a placeholder"):
        make_s3_destination(folder_template="{year}/{author}")
    assert not Destination.objects.exists()


def test_a_users_destination_names_are_their_own(make_s3_destination, owner, other_user):
    make_s3_destination(name="Archive", owner=owner)
    make_s3_destination(name="Archive", owner=other_user)
    with pytest.raises(Conflict):
        make_s3_destination(name="Archive", owner=owner)


def test_secrets_are_write_only_and_change_key_by_key(make_s3_destination, owner):
    destination = make_s3_destination(owner=owner)
    destination_update(destination=destination, secrets={"secret_access_key": "a-new-secret-value"})
    destination.refresh_from_db()
    assert destination.secrets.reveal() == {
        "access_key_id": S3_KEYS["access_key_id"],
        "secret_access_key": "a-new-secret-value",
    }
    with pytest.raises(InvalidInput, match="go together"):
        destination_update(destination=destination, secrets={"secret_access_key": ""})


@pytest.fixture
def s3_environment(db, settings, s3_server, bucket):
    settings.S3_ENABLED = True
    settings.S3_BUCKET_NAME = bucket.name
    settings.S3_FOLDER_PREFIX = "scans/"
    settings.S3_ENDPOINT_URL = s3_server.endpoint
    settings.AWS_ACCESS_KEY_ID = S3_KEYS["access_key_id"]
    settings.AWS_SECRET_ACCESS_KEY = S3_KEYS["secret_access_key"]
    return settings


def test_the_environments_destination_follows_its_variables(s3_environment, bucket):
    (destination,) = system_destinations_sync()
    assert (destination.system_key, destination.owner, destination.enabled) == ("env:s3", None, True)
    assert destination.settings["bucket"] == bucket.name
    assert destination.settings["folder"] == "scans"
    assert destination.secrets.reveal() == S3_KEYS
    stamp = destination.updated_at

    (again,) = system_destinations_sync()
    assert again.pk == destination.pk
    assert Destination.objects.get(pk=destination.pk).updated_at == stamp  # nothing written

    s3_environment.AWS_SECRET_ACCESS_KEY = "rotated-secret-key-value"
    system_destinations_sync()
    assert (
        Destination.objects.get(pk=destination.pk).secrets["secret_access_key"] == "rotated-secret-key-value"
    )

    s3_environment.S3_ENABLED = False
    assert system_destinations_sync() == []
    assert Destination.objects.get(pk=destination.pk).enabled is False


def test_the_environments_destination_gets_every_document(s3_environment, processed, bucket, enqueued):
    deliver_all(processed(CONTENT))
    assert bucket.keys() == ["scans/2024-03-12_Invoice.pdf"]


def test_the_environments_destination_keeps_its_variables_but_takes_a_template(s3_environment):
    (destination,) = system_destinations_sync()
    with pytest.raises(Conflict, match="defined by the environment"):
        destination_update(destination=destination, settings={"bucket": "elsewhere"})
    destination_update(destination=destination, folder_template="{year}")
    (synced,) = system_destinations_sync()
    assert synced.folder_template == "{year}"
