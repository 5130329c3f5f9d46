"""Deliveries in this process to real FTPS and SFTP servers: byte for byte at the templated
path, exactly once, no temporary file left, and failures kept to their destination."""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.services import (
    DeliveryOutcome,
    deliveries_schedule,
    delivery_run,
    destination_create,
    system_destinations_sync,
)
from destinations.tests.servers.base import FileServer
from documents.models import FailureKind, ProcessingLog

CONTENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
PATH = "archive/2024/ACME/2024-03-12_Invoice.pdf"


@dataclass
class Remote:
    """A real server and what a destination on it is saved with."""

    kind: str
    server: FileServer
    settings: dict[str, Any]
    secrets: dict[str, Any] = field(repr=False)

    def destination(self, **options: Any) -> Destination:
        secrets = options.pop("secrets", self.secrets)
        return destination_create(
            kind=self.kind,
            name=f"{self.kind} {uuid.uuid4().hex[:6]}",
            owner=None,
            settings={**self.settings, "folder": "archive", **options.pop("settings", {})},
            secrets=secrets,
            folder_template=options.pop("folder_template", "{year}/{correspondent}/{filename}"),
            **options,
        )

    def put(self, path: str, content: bytes) -> None:
        target = self.server.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        # Made by the test's user: the server's account (SFTP's own, run as root) may replace it.
        for made in [target, *target.parents]:
            if made == self.server.root:
                break
            made.chmod(0o777 if made.is_dir() else 0o666)


@pytest.fixture
def ftps_remote(ftps_server, settings) -> Remote:
    settings.FTP_CA_BUNDLE = str(ftps_server.tls.ca_file)  # the test CA, besides the system's
    return Remote(
        kind="ftp",
        server=ftps_server,
        settings={"host": ftps_server.host, "port": ftps_server.port, "username": ftps_server.username},
        secrets={"password": ftps_server.password},
    )


@pytest.fixture
def sftp_remote(sftp_server, ssh_client_keys) -> Remote:
    return Remote(
        kind="sftp",
        server=sftp_server,
        settings={
            "host": sftp_server.host,
            "port": sftp_server.port,
            "username": sftp_server.username,
            "host_key": sftp_server.host_key.fingerprint,
        },
        secrets={"private_key": ssh_client_keys.plain.private_key.read_text()},
    )


# Asked for by name at run time, which collection cannot see: the sshd case says so itself.
@pytest.fixture(params=["ftps", pytest.param("sftp", marks=pytest.mark.subprocess)])
def remote(request: pytest.FixtureRequest) -> Remote:
    return request.getfixturevalue(f"{request.param}_remote")


@pytest.fixture
def enqueued(monkeypatch):
    """The deliveries handed to the queue (captured, not sent)."""
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


@pytest.fixture
def invoice(processed) -> Callable[..., Any]:
    def make(content: bytes = CONTENT, **fields: Any) -> Any:
        return processed(content, correspondent="ACME", document_date=datetime.date(2024, 3, 12), **fields)

    return make


def deliver(document) -> list[Any]:
    """Schedule and run every delivery of ``document`` here, as a worker would."""
    return [
        delivery_run(delivery_id=delivery_id) for delivery_id in deliveries_schedule(document_id=document.pk)
    ]


def test_a_processed_document_lands_byte_for_byte_at_its_templated_path_once(remote, invoice, enqueued, db):
    destination = remote.destination()
    document = invoice()

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.DELIVERED, run.message
    assert remote.server.files() == [PATH]
    assert (remote.server.root / PATH).read_bytes() == CONTENT
    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.attempts, delivery.remote_path) == (DeliveryStatus.DELIVERED, 1, PATH)
    assert delivery.remote_id.startswith(f"{remote.kind}://127.0.0.1:{remote.server.port}/")
    assert Destination.objects.get(pk=destination.pk).health_status == HealthStatus.OK
    log = ProcessingLog.objects.filter(document=document, step_name=f"upload_to_{remote.kind}")
    assert list(log.values_list("status", flat=True)) == ["pending", "in_progress", "success"]

    written = (remote.server.root / PATH).stat().st_mtime_ns
    assert delivery_run(delivery_id=delivery.pk).outcome == DeliveryOutcome.NOOP  # the message came twice
    assert (remote.server.root / PATH).stat().st_mtime_ns == written
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1


def test_the_same_content_already_there_counts_as_delivered_without_a_second_copy(
    remote, invoice, enqueued, db
):
    remote.destination()
    document = invoice()
    # An earlier run renamed its upload into place, then its worker died before recording it.
    remote.put(PATH, CONTENT)

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.DELIVERED
    assert "nothing to upload" in run.message
    assert remote.server.files() == [PATH]


def test_someone_elses_file_of_the_same_size_is_not_taken_for_the_document(remote, invoice, enqueued, db):
    remote.destination()
    document = invoice()
    other = bytes(reversed(CONTENT))
    remote.put(PATH, other)

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.DELIVERED
    renamed = PATH.replace(".pdf", " (2).pdf")
    assert remote.server.files() == [renamed, PATH]
    assert (remote.server.root / PATH).read_bytes() == other
    assert (remote.server.root / renamed).read_bytes() == CONTENT


def test_new_content_replaces_the_file_and_a_new_name_removes_the_old_one(
    remote, invoice, processed, enqueued, db
):
    remote.destination(folder_template="{title}")
    document = invoice(document_title="Invoice")
    deliver(document)
    assert remote.server.files() == ["archive/Invoice/2024-03-12_Invoice.pdf"]

    # Reprocessed: new bytes under the same name, then a new title and so a new folder.
    document.processed_file = processed(b"%PDF-1.7 version two").processed_file
    document.save()
    (run,) = deliver(document)
    assert run.outcome == DeliveryOutcome.DELIVERED, run.message
    assert remote.server.files() == ["archive/Invoice/2024-03-12_Invoice.pdf"]
    assert (
        remote.server.root / "archive/Invoice/2024-03-12_Invoice.pdf"
    ).read_bytes() == b"%PDF-1.7 version two"

    document.document_title = "Invoice RE-4711"
    document.save()
    (run,) = deliver(document)
    assert remote.server.files() == ["archive/Invoice RE-4711/2024-03-12_Invoice.pdf"]
    assert "Removed the earlier copy archive/Invoice/2024-03-12_Invoice.pdf" in run.message


def test_a_server_stopped_mid_upload_and_started_again_ends_with_one_whole_file(
    ftps_remote, invoice, enqueued, settings, db
):
    settings.TASK_RETRY_DELAYS = [1]
    server = ftps_remote.server
    ftps_remote.destination()
    document = invoice(CONTENT * 50)  # ~800 KiB, more than the sockets' buffers hold
    server.uploads.hold_after(100_000)
    threading.Thread(target=lambda: server.uploads.wait_until_held() and server.stop(), daemon=True).start()

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.RETRY, run.message
    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.error_kind) == (DeliveryStatus.PENDING, FailureKind.TEMPORARY)
    assert PATH not in server.files()  # at most a part file, never a half one under the name

    server.start()
    assert delivery_run(delivery_id=delivery.pk).outcome == DeliveryOutcome.DELIVERED
    assert server.files() == [PATH]
    assert (server.root / PATH).read_bytes() == CONTENT * 50


def test_a_wrong_password_fails_at_once_as_misconfigured_and_no_secret_is_logged(
    ftps_remote, invoice, enqueued, caplog, db
):
    caplog.set_level(logging.DEBUG)
    destination = ftps_remote.destination(secrets={"password": "not-the-password-4711"})
    document = invoice()

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.FAILED
    delivery = Delivery.objects.get(document=document)
    assert delivery.error_kind == FailureKind.CONFIGURATION
    assert delivery.attempts == 1  # not retried: retrying cannot help
    assert "refused to sign in deliver (530); check the user name and the password" in delivery.error
    destination.refresh_from_db()
    assert destination.health_status == HealthStatus.FAILING
    logged = [caplog.text, delivery.error, destination.health_error]
    logged += list(ProcessingLog.objects.filter(document=document).values_list("message", flat=True))
    assert not any("not-the-password-4711" in text for text in logged)
    assert ftps_remote.server.files() == []


def test_a_changed_host_key_fails_the_delivery_as_misconfigured_with_the_key_shown(
    sftp_remote, invoice, enqueued, caplog, db
):
    caplog.set_level(logging.DEBUG)
    sftp_remote.destination()
    server = sftp_remote.server
    server.replace_host_key()  # reinstalled, or someone in between
    server.restart()
    document = invoice()

    (run,) = deliver(document)

    assert run.outcome == DeliveryOutcome.FAILED
    delivery = Delivery.objects.get(document=document)
    assert delivery.error_kind == FailureKind.CONFIGURATION
    assert f"presented the host key ssh-ed25519 {server.host_key.fingerprint}" in delivery.error
    assert "Nothing was sent" in delivery.error
    assert "BEGIN OPENSSH PRIVATE KEY" not in caplog.text
    assert server.files() == []


def test_the_environments_destinations_follow_their_variables(
    settings, ftps_server, sftp_server, ssh_client_keys, invoice, enqueued, db
):
    settings.FTP_CA_BUNDLE = str(ftps_server.tls.ca_file)
    settings.FTP_ENABLED = True
    settings.FTP_HOST, settings.FTP_PORT = ftps_server.host, ftps_server.port
    settings.FTP_USERNAME, settings.FTP_PASSWORD = ftps_server.username, ftps_server.password
    settings.FTP_FOLDER = "scans"
    settings.SFTP_ENABLED = True
    settings.SFTP_HOST, settings.SFTP_PORT = sftp_server.host, sftp_server.port
    settings.SFTP_USERNAME = sftp_server.username
    settings.SFTP_PRIVATE_KEY = ssh_client_keys.encrypted.private_key.read_text()
    settings.SFTP_PRIVATE_KEY_PASSPHRASE = ssh_client_keys.encrypted.passphrase
    settings.SFTP_HOST_KEY = sftp_server.known_hosts_line
    settings.SFTP_FOLDER = "/" + (sftp_server.root / "scans").relative_to("/").as_posix()

    rows = {row.kind: row for row in system_destinations_sync()}

    assert rows["ftp"].settings["use_tls"] is True
    assert rows["ftp"].secrets.reveal() == {"password": ftps_server.password}
    assert rows["sftp"].settings["folder_from_root"] is True
    assert rows["sftp"].settings["verify_host_key"] is True
    assert set(rows["sftp"].secrets.reveal()) == {"private_key", "private_key_passphrase"}
    runs = deliver(invoice())
    assert [run.outcome for run in runs] == [DeliveryOutcome.DELIVERED] * 2, [run.message for run in runs]
    assert ftps_server.files() == ["scans/2024-03-12_Invoice.pdf"]
    assert sftp_server.files() == ["scans/2024-03-12_Invoice.pdf"]
