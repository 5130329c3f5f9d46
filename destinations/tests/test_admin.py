"""Destinations and deliveries in the operators' admin: secrets by name only, changes checked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from destinations.models import Delivery, DeliveryStatus, Destination
from destinations.services import destination_create, system_destinations_sync
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


# --- System-wide destinations made and changed in the admin ----------------------------------


def admin_form(**fields):
    return {
        "kind": "s3",
        "name": "Company archive",
        "enabled": "on",
        "folder_template": "{year}",
        "collision_policy": "rename",
        "setting_bucket": "company",
        "setting_folder": "scans",
        "setting_endpoint_url": "http://10.0.0.5:9000",  # operators may use their own network
        "secret_access_key_id": S3_KEYS["access_key_id"],
        "secret_secret_access_key": S3_KEYS["secret_access_key"],
        **fields,
    }


def test_an_operator_makes_a_system_wide_destination_with_its_secrets_in_the_admin(operator_client):
    add = reverse("admin:destinations_destination_add")
    page = operator_client.get(add).content.decode()
    assert 'type="password" name="secret_secret_access_key"' in page
    assert 'name="setting_bucket"' in page
    answer = operator_client.post(add, admin_form())
    assert answer.status_code == 302, answer.content.decode()[-3000:]
    destination = Destination.objects.get()
    assert (destination.owner, destination.kind, destination.name) == (None, "s3", "Company archive")
    assert destination.settings["endpoint_url"] == "http://10.0.0.5:9000"
    assert destination.secrets.reveal() == S3_KEYS


def test_settings_the_kind_refuses_are_shown_in_the_admin_and_nothing_is_saved(operator_client):
    answer = operator_client.post(
        reverse("admin:destinations_destination_add"), admin_form(setting_acl="everyone")
    )
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "The ACL must be empty or one of" in html
    assert S3_KEYS["secret_access_key"] not in html
    assert not Destination.objects.exists()


def test_the_admin_never_shows_a_stored_secret_and_an_empty_field_keeps_it(operator_client):
    destination = destination_create(
        kind="s3", name="Company archive", owner=None, settings={"bucket": "company"}, secrets=S3_KEYS
    )
    url = reverse("admin:destinations_destination_change", args=[destination.pk])
    page = operator_client.get(url).content.decode()
    assert S3_KEYS["secret_access_key"] not in page
    assert S3_KEYS["access_key_id"] not in page
    assert "Stored; leave empty to keep it." in page
    form = admin_form(secret_access_key_id="", secret_secret_access_key="", setting_bucket="renamed-bucket")
    form.pop("kind")
    assert operator_client.post(url, form).status_code == 302
    destination.refresh_from_db()
    assert destination.settings["bucket"] == "renamed-bucket"
    assert destination.secrets.reveal() == S3_KEYS
    form["secret_secret_access_key"] = "a-rotated-secret-value"
    assert operator_client.post(url, form).status_code == 302
    destination.refresh_from_db()
    assert destination.secrets["secret_access_key"] == "a-rotated-secret-value"


def test_a_users_own_destination_keeps_its_settings_and_secrets_away_from_the_admin(
    operator_client, destination
):
    page = operator_client.get(reverse("admin:destinations_destination_change", args=[destination.pk]))
    html = page.content.decode()
    assert 'name="setting_bucket"' not in html
    assert 'name="secret_secret_access_key"' not in html


def test_the_environments_destination_cannot_be_reconfigured_or_deleted_in_the_admin(
    operator_client, settings
):
    settings.S3_ENABLED = True
    settings.S3_BUCKET_NAME = "company"
    (destination,) = system_destinations_sync()
    page = operator_client.get(reverse("admin:destinations_destination_change", args=[destination.pk]))
    html = page.content.decode()
    assert 'name="setting_bucket"' not in html
    assert 'name="enabled"' not in html
    delete = operator_client.get(reverse("admin:destinations_destination_delete", args=[destination.pk]))
    assert delete.status_code == 403
