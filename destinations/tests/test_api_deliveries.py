"""A document's deliveries through the files API: ``deliveries`` in ``GET /api/files/{id}``
and ``POST /api/files/{id}/redeliver``, against a real S3 API."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from destinations.models import Delivery, DeliveryStatus
from destinations.services import deliveries_schedule, delivery_run
from destinations.tests.conftest import S3_KEYS
from documents.models import DocumentStatus

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"


@pytest.fixture
def as_persona(request):
    def sign_in(persona: str) -> APIClient:
        client = APIClient()
        if persona != "anonymous":
            client.force_authenticate(request.getfixturevalue(persona))
        return client

    return sign_in


@pytest.fixture
def enqueued(monkeypatch, django_capture_on_commit_callbacks):
    """The deliveries handed to the queue once the request's transaction commits."""
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


@pytest.fixture
def delivered(processed, make_s3_destination, owner, enqueued):
    """The owner's document delivered to a system-wide destination and to the owner's own."""
    make_s3_destination(name="Company archive")
    make_s3_destination(name="My bucket", owner=owner, folder="mine")
    document = processed(CONTENT)
    for delivery_id in deliveries_schedule(document_id=document.pk):
        delivery_run(delivery_id=delivery_id)
    enqueued.clear()
    return document


def test_the_detail_shows_each_delivery_without_a_secret(as_persona, delivered):
    answer = as_persona("owner").get(f"/api/files/{delivered.pk}")
    assert answer.status_code == 200
    deliveries = answer.json()["deliveries"]
    assert [row["destination"] for row in deliveries] == ["Company archive", "My bucket"]
    first = deliveries[0]
    assert set(first) == {
        "destination", "destination_id", "kind", "status", "attempts", "remote_path", "delivered_at", "error",
    }  # fmt: skip
    assert (first["kind"], first["status"], first["attempts"], first["error"]) == ("s3", "delivered", 1, "")
    assert first["remote_path"] == "archive/2024-03-12_Invoice.pdf"
    assert first["delivered_at"] is not None
    assert deliveries[1]["remote_path"] == "mine/2024-03-12_Invoice.pdf"
    assert S3_KEYS["secret_access_key"] not in answer.content.decode()


def test_the_detail_costs_the_same_queries_for_one_delivery_or_several(
    as_persona, processed, make_s3_destination, enqueued, django_assert_num_queries, document_storage
):
    client = as_persona("owner")
    make_s3_destination(name="one")
    document = processed(CONTENT)
    deliveries_schedule(document_id=document.pk)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(f"/api/files/{document.pk}").json()["deliveries"]) == 1
    assert sum("destinations_delivery" in query["sql"] for query in one.captured_queries) == 1
    for name in ("two", "three", "four"):
        make_s3_destination(name=name)
    deliveries_schedule(document_id=document.pk)
    with django_assert_num_queries(len(one)):
        assert len(client.get(f"/api/files/{document.pk}").json()["deliveries"]) == 4


def test_a_redeliver_sends_every_delivery_again_with_fresh_attempts(
    as_persona, delivered, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_persona("owner").post(f"/api/files/{delivered.pk}/redeliver")
    assert answer.status_code == 202
    body = answer.json()
    assert (body["document_id"], body["queued"]) == (delivered.pk, 2)
    assert {row["status"] for row in body["deliveries"]} == {"pending"}
    assert {row["attempts"] for row in body["deliveries"]} == {0}
    assert sorted(enqueued) == sorted(
        Delivery.objects.filter(document=delivered).values_list("pk", flat=True)
    )
    # A redelivered file that is still there unchanged costs a look, not a second copy.
    for delivery_id in enqueued:
        delivery_run(delivery_id=delivery_id)
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert delivered.logs.filter(step_name="upload_to_s3", message__contains="Already at").count() == 2


def test_a_redeliver_to_one_destination_leaves_the_others_alone(
    as_persona, delivered, enqueued, django_capture_on_commit_callbacks
):
    mine = Delivery.objects.get(document=delivered, destination__name="My bucket")
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_persona("owner").post(
            f"/api/files/{delivered.pk}/redeliver?destination={mine.destination_id}"
        )
    assert answer.status_code == 202
    assert answer.json()["queued"] == 1
    assert enqueued == [mine.pk]
    statuses = dict(Delivery.objects.filter(document=delivered).values_list("destination__name", "status"))
    assert statuses == {"Company archive": "delivered", "My bucket": "pending"}


@pytest.mark.parametrize(
    ("destination", "status"), [("999999", 404), ("0", 400), ("x", 400), ("99999999999999999999999", 400)]
)
def test_a_redeliver_to_a_destination_the_document_does_not_go_to_is_refused(
    as_persona, delivered, enqueued, destination, status
):
    answer = as_persona("owner").post(f"/api/files/{delivered.pk}/redeliver?destination={destination}")
    assert answer.status_code == status
    assert enqueued == []
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_someone_elses_destination_is_not_a_place_to_redeliver_to(
    as_persona, delivered, make_s3_destination, other_user, enqueued
):
    theirs = make_s3_destination(name="Not yours", owner=other_user)
    answer = as_persona("owner").post(f"/api/files/{delivered.pk}/redeliver?destination={theirs.pk}")
    assert answer.status_code == 404
    assert not Delivery.objects.filter(destination=theirs).exists()


@pytest.mark.parametrize(("persona", "status"), [("owner", 202), ("operator", 202), ("other_user", 404)])
def test_who_may_redeliver_a_document(as_persona, delivered, settings, persona, status):
    settings.MULTI_USER_ENABLED = True
    answer = as_persona(persona).post(f"/api/files/{delivered.pk}/redeliver")
    assert answer.status_code == status
    if status == 404:
        assert answer.json() == {"detail": "No such document."}
        assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_anonymous_callers_cannot_redeliver(as_persona, delivered):
    assert as_persona("anonymous").post(f"/api/files/{delivered.pk}/redeliver").status_code == 401


def test_a_document_still_being_processed_is_not_redelivered(
    as_persona, processed, make_s3_destination, enqueued
):
    make_s3_destination()
    document = processed(CONTENT, status=DocumentStatus.PROCESSING)
    answer = as_persona("owner").post(f"/api/files/{document.pk}/redeliver")
    assert answer.status_code == 409
    assert "once its processing has finished" in answer.json()["detail"]
    assert not Delivery.objects.exists()
