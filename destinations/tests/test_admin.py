"""Destinations and deliveries in the operators' admin: secrets by name only, changes checked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from destinations.models import Delivery, DeliveryStatus, Destination
from destinations.services import destination_create
from destinations.tests.conftest import S3_KEYS
from documents.models import FailureKind
from documents.tests.factories import DocumentFactory


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def destination(owner) -> Destination:
    return destination_create(
        kind="s3", name="Archive", owner=owner, settings={"bucket": "archive"}, secrets=S3_KEYS
    )


def test_an_operator_sees_a_destination_and_the_names_of_its_secrets_only(operator_client, destination):
    listing = operator_client.get(reverse("admin:destinations_destination_changelist"))
    page = operator_client.get(reverse("admin:destinations_destination_change", args=[destination.pk]))
    assert listing.status_code == page.status_code == 200
    html = page.content.decode()
    assert "access_key_id, secret_access_key" in html
    assert S3_KEYS["secret_access_key"] not in html
    assert S3_KEYS["access_key_id"] not in html
    assert str(Destination.objects.get(pk=destination.pk).secrets.token) not in html


def test_a_template_with_an_unknown_placeholder_is_refused_in_the_admin(operator_client, destination):
    url = reverse("admin:destinations_destination_change", args=[destination.pk])
    form = {
        "name": "Archive",
        "enabled": "on",
        "folder_template": "{year}/{author}",
        "collision_policy": "rename",
    }
    answer = operator_client.post(url, form)
    assert answer.status_code == 200
    assert "{author}, which is not a placeholder" in answer.content.decode()
    destination.refresh_from_db()
    assert destination.folder_template == ""

    form["folder_template"] = "{year}/{document_type}"
    assert operator_client.post(url, form).status_code == 302
    destination.refresh_from_db()
    assert destination.folder_template == "{year}/{document_type}"
    assert destination.secrets.reveal() == S3_KEYS  # untouched by the form


def test_a_user_without_staff_rights_does_not_reach_the_admin(client, owner, destination):
    client.force_login(owner)
    answer = client.get(reverse("admin:destinations_destination_change", args=[destination.pk]))
    assert answer.status_code == 302


def test_operators_filter_deliveries_by_kind_status_and_error_kind_and_change_nothing(
    operator_client, destination, owner
):
    elsewhere = Destination.objects.create(kind="webdav", name="Cloud folder", owner=owner)
    failed = Delivery.objects.create(
        document=DocumentFactory.create(owner=owner, original_filename="refused.pdf"),
        destination=destination,
        status=DeliveryStatus.FAILED,
        error="S3 refused the credentials",
        error_kind=FailureKind.CONFIGURATION,
    )
    Delivery.objects.create(
        document=DocumentFactory.create(owner=owner, original_filename="arrived.pdf"),
        destination=elsewhere,
        status=DeliveryStatus.DELIVERED,
    )
    listing = reverse("admin:destinations_delivery_changelist")

    everything = operator_client.get(listing).content.decode()
    assert "refused.pdf" in everything
    assert "arrived.pdf" in everything
    assert "S3 and compatible" in everything  # the kind column
    assert "WebDAV" in everything
    for query in ("destination__kind=s3", "status=failed", "error_kind=configuration"):
        filtered = operator_client.get(f"{listing}?{query}").content.decode()
        assert "refused.pdf" in filtered, query
        assert "arrived.pdf" not in filtered, query

    change = reverse("admin:destinations_delivery_change", args=[failed.pk])
    assert operator_client.post(change, {"status": "delivered"}).status_code == 403
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED
