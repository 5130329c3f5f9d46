"""Deliveries to the cloud drives through the delivery service, and their refresh tokens:
the SDKs pointed at recorded exchanges through ``CLOUD_API_ROUTES``."""

from __future__ import annotations

import pytest
from django.db import connection

from destinations.kinds.oauth import refresh_token_in_use, token_fingerprint
from destinations.models import Delivery, DeliveryStatus, Destination
from destinations.services import (
    deliveries_schedule,
    delivery_run,
    destination_connect,
    destination_create,
    destination_secrets_renew,
    system_destinations_sync,
)
from destinations.tests.conftest import RECORDINGS, routes_to
from docuelevate.errors import InvalidInput

DROPBOX_CONTENT = b"%PDF-1.7 an invoice delivered to Dropbox\n%%EOF\n"
ONEDRIVE_CONTENT = b"%PDF-1.7 an invoice delivered to OneDrive\n%%EOF\n"


@pytest.fixture
def cloud(settings, replay):
    settings.DROPBOX_APP_KEY = "docuelevate-app-key"
    settings.DROPBOX_APP_SECRET = "docuelevate-app-secret"
    settings.ONEDRIVE_CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
    settings.ONEDRIVE_CLIENT_SECRET = "docuelevate-client-secret"
    settings.ONEDRIVE_TENANT_ID = "common"
    settings.CLOUD_API_ROUTES = routes_to(
        replay,
        "https://api.dropboxapi.com",
        "https://content.dropboxapi.com",
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
    )
    return settings


def stored_column(destination: Destination) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM destinations_destination WHERE id = %s", [destination.pk])
        return str(cursor.fetchone()[0])


def delivered(document, destination) -> Delivery:
    deliveries_schedule(document_id=document.pk, enqueue=False)
    delivery = Delivery.objects.get(document=document, destination=destination)
    delivery_run(delivery_id=delivery.pk, retries_allowed=False)
    delivery.refresh_from_db()
    return delivery


def test_a_document_already_in_dropbox_is_delivered_without_an_upload(cloud, replay, owner, processed):
    replay.play("dropbox_already_there", RECORDINGS)
    destination = destination_create(
        kind="dropbox",
        name="My Dropbox",
        owner=owner,
        settings={"folder": "/Archive/2024/"},
        secrets={"refresh_token": "dropbox-refresh-token-0123456789"},
    )
    document = processed(DROPBOX_CONTENT, name="invoice")
    delivery = delivered(document, destination)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.remote_path == "Archive/2024/invoice.pdf"
    assert (delivery.remote_id, delivery.remote_version) == (
        "id:a4ayc_80_OEAAAAAAAAAXw",
        "016a1b2c3d4e5f600000002b3c4d5e0",
    )
    assert [request.path for request in replay.received] == ["/oauth2/token", "/2/files/get_metadata"]


def test_a_onedrive_delivery_keeps_the_refresh_token_microsoft_gave_in_exchange_sealed(
    cloud, replay, owner, processed
):
    replay.play("onedrive_delivery", RECORDINGS)
    destination = destination_create(
        kind="onedrive",
        name="My OneDrive",
        owner=owner,
        settings={"folder": "Archive"},
        secrets={"refresh_token": "M.C5xx_BAY.0.U.-given-refresh-token"},
    )
    delivery = delivered(processed(ONEDRIVE_CONTENT, name="invoice"), destination)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.remote_path == "Archive/invoice.pdf"
    destination.refresh_from_db()
    assert refresh_token_in_use(destination.secrets) == "M.C5xx_BAY.0.U.-rotated-refresh-token-1"
    assert "rotated-refresh-token" not in stored_column(destination)


def test_a_destination_not_connected_yet_fails_as_misconfigured_and_says_what_to_do(
    cloud, replay, owner, processed
):
    destination = destination_create(kind="dropbox", name="Unconnected", owner=owner, settings={}, secrets={})
    delivery = delivered(processed(DROPBOX_CONTENT), destination)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error_kind == "configuration"
    assert "connect it on the destinations page" in delivery.error
    assert replay.received == []


def test_the_environments_destination_keeps_a_renewed_token_until_its_variable_changes(cloud, db):
    cloud.ONEDRIVE_ENABLED = True
    cloud.ONEDRIVE_REFRESH_TOKEN = "token-from-the-environment"
    cloud.ONEDRIVE_FOLDER_PATH = "/Scans/"
    (row,) = [row for row in system_destinations_sync() if row.kind == "onedrive"]
    assert row.settings == {"folder": "Scans"}
    assert refresh_token_in_use(row.secrets) == "token-from-the-environment"

    destination_secrets_renew(
        destination_id=row.pk,
        secrets={
            "renewed_refresh_token": "rotated-by-microsoft",
            "renewed_from": token_fingerprint("token-from-the-environment"),
        },
    )
    system_destinations_sync()
    row.refresh_from_db()
    assert refresh_token_in_use(row.secrets) == "rotated-by-microsoft"

    cloud.ONEDRIVE_REFRESH_TOKEN = "a-new-token-in-the-environment"
    system_destinations_sync()
    row.refresh_from_db()
    assert refresh_token_in_use(row.secrets) == "a-new-token-in-the-environment"
    assert "renewed_refresh_token" not in row.secrets


def test_an_operator_connects_the_environments_destination_that_has_no_token_of_its_own(cloud, db):
    cloud.DROPBOX_ENABLED = True
    cloud.DROPBOX_REFRESH_TOKEN = ""
    (row,) = [row for row in system_destinations_sync() if row.kind == "dropbox"]
    assert refresh_token_in_use(row.secrets) == ""
    destination_connect(destination=row, refresh_token="connected-on-the-page")
    system_destinations_sync()
    row.refresh_from_db()
    assert refresh_token_in_use(row.secrets) == "connected-on-the-page"


def test_kinds_with_their_own_credentials_cannot_be_connected(make_s3_destination):
    with pytest.raises(InvalidInput):
        destination_connect(destination=make_s3_destination(), refresh_token="anything")
