"""Deliveries to WebDAV and Nextcloud in this process, against a real WebDAV server:
exactly once, never a half or temporary file, replaced on reprocess, failures by kind."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import threading
import uuid

import pytest

from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.services import (
    DeliveryOutcome,
    deliveries_schedule,
    delivery_run,
    destination_create,
    system_destinations_sync,
)
from destinations.tests.conftest import sha256
from destinations.tests.scripted_webdav import ScriptedWebDavServer
from docuelevate.errors import InvalidInput
from documents.models import DocumentStatus, FailureKind, ProcessingLog

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"
NAME = "2024-03-12_Invoice.pdf"


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


@pytest.fixture
def dav(tmp_path):
    """A WebDAV server that also counts what it was asked."""
    with ScriptedWebDavServer(root=tmp_path / "dav-root") as server:
        yield server


def webdav_destination(server, *, kind="webdav", owner=None, password=None, **options) -> Destination:
    url = server.base_url if kind == "nextcloud" else server.url
    return destination_create(
        kind=kind,
        name=f"{kind} {uuid.uuid4().hex[:6]}",
        owner=owner,
        settings={"url": url, "folder": options.pop("folder", "archive"), "username": server.username},
        secrets={"password": password or server.password},
        **options,
    )


def deliver_all(document):
    return [
        delivery_run(delivery_id=delivery_id) for delivery_id in deliveries_schedule(document_id=document.pk)
    ]


def test_a_processed_document_lands_byte_for_byte_under_its_templated_path(processed, dav, enqueued):
    webdav_destination(dav, folder_template="{year}/{correspondent}/{filename}")
    document = processed(CONTENT, correspondent="ACME/../etc", document_date=datetime.date(2024, 3, 12))

    (run,) = deliver_all(document)

    assert run.outcome == DeliveryOutcome.DELIVERED, run.message
    path = f"archive/2024/ACME_.._etc/{NAME}"
    assert dav.files() == [path]  # and no temporary file beside it
    assert (dav.root / path).read_bytes() == CONTENT
    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.remote_path, delivery.content_sha256) == (
        DeliveryStatus.DELIVERED,
        path,
        sha256(CONTENT),
    )
    assert delivery.remote_id == f"{dav.url}archive/2024/ACME_.._etc/{NAME}"
    steps = list(ProcessingLog.objects.filter(document=document).values_list("step_name", "status"))
    assert steps == [
        ("upload_to_webdav", "pending"),
        ("upload_to_webdav", "in_progress"),
        ("upload_to_webdav", "success"),
    ]


def test_a_delivery_run_twice_or_asked_for_again_with_the_same_content_uploads_once(processed, dav, enqueued):
    webdav_destination(dav)
    document = processed(CONTENT)
    (delivery_id,) = deliveries_schedule(document_id=document.pk)
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.NOOP  # the message came twice

    (again,) = deliver_all(document)  # processed again, the same bytes

    assert again.outcome == DeliveryOutcome.DELIVERED
    assert "nothing to upload" in again.message
    assert len(dav.requests_of("PUT")) == 1
    assert dav.files() == [f"archive/{NAME}"]


def test_reprocessing_replaces_the_file_and_a_new_name_removes_the_old_one(processed, dav, enqueued):
    webdav_destination(dav, folder_template="{title}")
    document = processed(CONTENT, document_title="Invoice")
    deliver_all(document)
    assert dav.files() == [f"archive/Invoice/{NAME}"]

    document.processed_file = processed(b"%PDF-1.7 version two").processed_file
    document.save()
    deliver_all(document)
    assert dav.files() == [f"archive/Invoice/{NAME}"]
    assert (dav.root / f"archive/Invoice/{NAME}").read_bytes() == b"%PDF-1.7 version two"

    document.document_title = "Invoice RE-4711"
    document.save()
    (run,) = deliver_all(document)
    assert dav.files() == [f"archive/Invoice RE-4711/{NAME}"]
    assert f"Removed the earlier copy archive/Invoice/{NAME}" in run.message


def test_a_server_that_lost_its_properties_is_judged_by_size_etag_and_the_record(processed, dav, enqueued):
    webdav_destination(dav, folder_template="{title}")
    document = processed(CONTENT, document_title="Invoice")
    deliver_all(document)
    dav.restart()  # the test server keeps dead properties in memory: the hash is gone now

    (same,) = deliver_all(document)
    assert "nothing to upload" in same.message
    assert len(dav.requests_of("PUT")) == 1

    document.document_title = "Renamed"
    document.save()
    (renamed,) = deliver_all(document)
    # The old copy is unchanged since (same ETag), so it goes.
    assert dav.files() == [f"archive/Renamed/{NAME}"]
    assert "Removed the earlier copy" in renamed.message


def test_a_server_that_dies_mid_upload_is_retried_and_ends_with_one_whole_file(processed, dav, enqueued):
    content = b"%PDF-1.7\n" + bytes(range(256)) * 4096
    webdav_destination(dav)
    document = processed(content)
    (delivery_id,) = deliveries_schedule(document_id=document.pk)
    held = dav.hold_upload(after_bytes=64 * 1024)

    def server_dies() -> None:
        if held.started.wait(30):
            dav.stop()  # with the upload half done: the connection is dropped

    dying = threading.Thread(target=server_dies)
    dying.start()
    outcome = delivery_run(delivery_id=delivery_id).outcome
    dying.join(60)

    assert held.started.is_set()
    assert outcome == DeliveryOutcome.RETRY
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind) == (DeliveryStatus.PENDING, FailureKind.TEMPORARY)
    leftover = dav.files()
    assert len(leftover) == 1
    assert leftover[0].startswith("archive/.docuelevate-")  # half a file, under a temporary name

    dav.start()  # it comes back on the same port
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert dav.files() == [f"archive/{NAME}"]  # the leftover was written over and moved
    assert (dav.root / f"archive/{NAME}").read_bytes() == content


def test_a_refused_password_fails_at_once_as_configuration_and_no_secret_is_logged(
    processed, dav, enqueued, caplog
):
    destination = webdav_destination(dav, password="wrong-secret-value")
    document = processed(CONTENT)
    with caplog.at_level(logging.DEBUG):
        (run,) = deliver_all(document)

    assert run.outcome == DeliveryOutcome.FAILED
    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.error_kind, delivery.attempts) == (
        DeliveryStatus.FAILED,
        FailureKind.CONFIGURATION,
        1,
    )
    assert "refused the user name or password (401)" in delivery.error
    destination.refresh_from_db()
    assert destination.health_status == HealthStatus.FAILING
    document.refresh_from_db()
    assert document.status == DocumentStatus.COMPLETED
    assert dav.files() == []
    logged = [record.getMessage() for record in caplog.records]
    logged += list(ProcessingLog.objects.values_list("message", flat=True))
    assert not [line for line in [*logged, delivery.error] if "wrong-secret-value" in line]


def test_https_is_verified_against_the_workers_certificate_authorities(
    processed, tmp_path, tls_files, enqueued, monkeypatch
):
    with ScriptedWebDavServer(root=tmp_path / "davs-root", tls=tls_files) as davs:
        webdav_destination(davs)
        document = processed(CONTENT)
        (refused,) = deliver_all(document)
        assert refused.outcome == DeliveryOutcome.FAILED
        assert "certificate is not trusted" in refused.message

        # What an operator with a private CA does: give the workers a bundle that has it.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_file))
        (delivered,) = deliver_all(document)
        assert delivered.outcome == DeliveryOutcome.DELIVERED, delivered.message
        assert (davs.root / f"archive/{NAME}").read_bytes() == CONTENT


def test_nextcloud_delivers_into_the_users_files(processed, tmp_path, enqueued):
    with ScriptedWebDavServer(root=tmp_path / "nextcloud-root", nextcloud=True) as nextcloud:
        webdav_destination(nextcloud, kind="nextcloud", folder="Documents/Scans")
        document = processed(CONTENT)
        (run,) = deliver_all(document)

        assert run.outcome == DeliveryOutcome.DELIVERED, run.message
        assert nextcloud.files() == [f"Documents/Scans/{NAME}"]
        assert (nextcloud.root / f"Documents/Scans/{NAME}").read_bytes() == CONTENT
        assert {request.path for request in nextcloud.requests_of("MOVE")} == {
            f"/remote.php/dav/files/deliver/Documents/Scans/{request.path.rsplit('/', 1)[-1]}"
            for request in nextcloud.requests_of("MOVE")
        }
        assert Delivery.objects.get(document=document).remote_id.startswith(
            f"{nextcloud.base_url}/remote.php/dav/files/deliver/Documents/Scans/"
        )
        assert ProcessingLog.objects.filter(step_name="upload_to_nextcloud", status="success").exists()


def test_the_environment_defines_webdav_and_nextcloud_destinations(db, settings):
    settings.WEBDAV_ENABLED = True
    settings.WEBDAV_URL = "https://dav.example.com/files/"
    settings.WEBDAV_USERNAME = "archiver"
    settings.WEBDAV_PASSWORD = "dav-secret"
    settings.WEBDAV_FOLDER = "/Documents/Uploads"
    settings.WEBDAV_VERIFY_SSL = False
    settings.NEXTCLOUD_ENABLED = True
    settings.NEXTCLOUD_UPLOAD_URL = "https://cloud.example.com"
    settings.NEXTCLOUD_USERNAME = "ada"
    settings.NEXTCLOUD_PASSWORD = "app-password"
    settings.NEXTCLOUD_FOLDER = "Scans"

    system_destinations_sync()

    webdav = Destination.objects.get(system_key="env:webdav")
    assert (webdav.name, webdav.owner, webdav.enabled) == ("WebDAV (environment)", None, True)
    assert webdav.settings == {
        "url": "https://dav.example.com/files",
        "folder": "Documents/Uploads",
        "username": "archiver",
        "verify_ssl": False,
    }
    assert webdav.secrets.reveal() == {"password": "dav-secret"}
    nextcloud = Destination.objects.get(system_key="env:nextcloud")
    assert nextcloud.settings["url"] == "https://cloud.example.com"
    assert nextcloud.settings["folder"] == "Scans"

    settings.WEBDAV_ENABLED = False
    system_destinations_sync()
    assert not Destination.objects.get(system_key="env:webdav").enabled


def test_a_user_cannot_save_a_webdav_destination_on_the_servers_own_network(owner, webdavs_server, settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = []
    with pytest.raises(InvalidInput) as error:
        webdav_destination(webdavs_server, owner=owner)
    assert "private, loopback or reserved address" in error.value.message

    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    assert webdav_destination(webdavs_server, owner=owner).owner == owner
