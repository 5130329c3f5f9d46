"""Deliveries by a real Celery worker after real processing, to real FTPS and SFTP servers:
delivered once, and still once when the worker is killed or the server dies mid-upload."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from django.utils import timezone

from destinations.models import Delivery, DeliveryStatus
from destinations.services import destination_create
from destinations.tasks import delivery_run_task
from destinations.tests.conftest import kill_worker_mid_upload, wait_until
from destinations.tests.held_relay import HoldingRelay
from documents.models import Document, DocumentStatus, FailureKind
from documents.services import document_ingest
from documents.storage import open_file, read_chunks

pytestmark = pytest.mark.usefixtures("engines")


def upload(owner, path):
    with path.open("rb") as handle:
        return document_ingest(owner=owner, chunks=read_chunks(handle), filename=path.name).document


def finished(document):
    return Delivery.objects.filter(document=document).exclude(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.IN_PROGRESS]
    )


def processed_bytes(document: Document) -> bytes:
    with open_file(document.processed_file) as handle:
        return handle.read()


@pytest.fixture
def ftps_destination(ftps_server, worker_env):
    """A system-wide destination on the FTPS server, whose CA the worker is told to trust."""
    worker_env["FTP_CA_BUNDLE"] = str(ftps_server.tls.ca_file)
    return destination_create(
        kind="ftp",
        name="FTPS",
        owner=None,
        settings={
            "host": ftps_server.host,
            "port": ftps_server.port,
            "username": ftps_server.username,
            "folder": "archive",
        },
        secrets={"password": ftps_server.password},
        folder_template="{year}/{correspondent}/{filename}",
    )


def test_a_processed_document_reaches_the_ftps_server_once_and_a_redelivery_changes_nothing(
    owner, samples, worker_env, start_worker, ftps_server, ftps_destination, tmp_path
):
    start_worker(worker_env)
    document = upload(owner, samples / "blank.pdf")
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    document.refresh_from_db()
    assert document.status == DocumentStatus.COMPLETED
    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    path = f"archive/{timezone.localdate().year}/unknown/{PurePosixPath(document.processed_file).name}"
    assert ftps_server.files() == [path]
    assert (ftps_server.root / path).read_bytes() == processed_bytes(document)

    written = (ftps_server.root / path).stat().st_mtime_ns
    again = delivery_run_task.apply_async(args=(delivery.pk,), ignore_result=False)
    assert again.get(timeout=120) == "noop"
    assert (ftps_server.root / path).stat().st_mtime_ns == written
    assert document.logs.filter(step_name="upload_to_ftp", status="success").count() == 1


def test_a_worker_killed_while_the_upload_is_held_ends_with_one_whole_file_and_no_part_file(
    owner, samples, worker_env, start_worker, ftps_server, ftps_destination, tmp_path
):
    ftps_server.uploads.hold_after(1)  # the first upload stops at its first bytes
    worker = start_worker(worker_env, name="crashy")
    document = upload(owner, samples / "blank.pdf")
    kill_worker_mid_upload(
        worker,
        started=ftps_server.uploads.held.is_set,
        release=ftps_server.uploads.release,
        logs=list(tmp_path.glob("*.log")),
    )
    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.IN_PROGRESS  # nobody could record anything
    (part_file,) = ftps_server.files()  # what the killed run left: under a temporary name
    assert part_file.endswith(".part")

    start_worker(worker_env, name="crashy")  # the same node comes back
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.attempts == 2
    document.refresh_from_db()
    assert ftps_server.files() == [delivery.remote_path]
    assert (ftps_server.root / delivery.remote_path).read_bytes() == processed_bytes(document)


def test_an_ftp_server_that_stops_mid_upload_and_comes_back_gets_the_file_once(
    owner, samples, worker_env, start_worker, ftps_server, ftps_destination, tmp_path
):
    worker_env["TASK_RETRY_DELAYS"] = "1"
    ftps_server.uploads.hold_after(1)
    start_worker(worker_env)
    document = upload(owner, samples / "blank.pdf")
    assert ftps_server.uploads.wait_until_held(timeout=180), "the upload never started"

    ftps_server.restart()  # every connection dropped, as a crash would; the same port again
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.attempts == 2
    document.refresh_from_db()
    assert ftps_server.files() == [delivery.remote_path]
    assert (ftps_server.root / delivery.remote_path).read_bytes() == processed_bytes(document)
    assert document.logs.filter(step_name="upload_to_ftp", kind="temporary").exists()


def sftp_destination(sftp_server, ssh_client_keys, *, port=None):
    """A system-wide destination on the SFTP server (reached on ``port`` when given: a
    relay in front of it), signing in with the encrypted key."""
    key = ssh_client_keys.encrypted
    return destination_create(
        kind="sftp",
        name="SFTP",
        owner=None,
        settings={
            "host": sftp_server.host,
            "port": port or sftp_server.port,
            "username": sftp_server.username,
            "folder": "archive",
            # The key is checked, whatever port the line names.
            "host_key": sftp_server.known_hosts_line,
        },
        secrets={"private_key": key.private_key.read_text(), "private_key_passphrase": key.passphrase},
        folder_template="{year}/{filename}",
    )


@pytest.fixture
def sftp_relay(sftp_server):
    """The SFTP server reached through a relay that can freeze an upload's connection."""
    with HoldingRelay(upstream_port=sftp_server.port) as relay:
        yield relay


def hold_the_first_sftp_upload(sftp_relay, sftp_server):
    """Freeze the connection that is writing the first temporary (``.part``) file: the
    upload has begun (the file is open on the server) and none of its content is through.
    SSH is encrypted, so the relay goes by the file the server made (see held_relay)."""
    return sftp_relay.hold_when(lambda: any(name.endswith(".part") for name in sftp_server.files()))


def test_a_processed_document_reaches_the_sftp_server_through_a_worker(
    owner, samples, worker_env, start_worker, sftp_server, ssh_client_keys, tmp_path
):
    key = ssh_client_keys.encrypted
    sftp_destination(sftp_server, ssh_client_keys)
    start_worker(worker_env)
    document = upload(owner, samples / "blank.pdf")
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    document.refresh_from_db()
    path = f"archive/{timezone.localdate().year}/{PurePosixPath(document.processed_file).name}"
    assert sftp_server.files() == [path]
    assert (sftp_server.root / path).read_bytes() == processed_bytes(document)
    assert document.logs.filter(step_name="upload_to_sftp", status="success").count() == 1
    for log in tmp_path.glob("*.log"):
        assert key.passphrase not in log.read_text(errors="replace")


def test_a_worker_killed_mid_upload_to_sftp_ends_with_one_whole_file_and_no_part_file(
    owner, samples, worker_env, start_worker, sftp_server, sftp_relay, ssh_client_keys, tmp_path
):
    sftp_destination(sftp_server, ssh_client_keys, port=sftp_relay.port)
    held = hold_the_first_sftp_upload(sftp_relay, sftp_server)
    worker = start_worker(worker_env, name="crashy")
    document = upload(owner, samples / "blank.pdf")
    kill_worker_mid_upload(
        worker, started=held.started.is_set, release=held.released.set, logs=list(tmp_path.glob("*.log"))
    )
    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.IN_PROGRESS  # nobody could record anything
    (part_file,) = sftp_server.files()  # what the killed run left: under a temporary name
    assert part_file.endswith(".part")

    start_worker(worker_env, name="crashy")  # the same node comes back
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.attempts == 2
    document.refresh_from_db()
    assert delivery.remote_path.endswith(PurePosixPath(document.processed_file).name)
    assert sftp_server.files() == [delivery.remote_path]  # the part file was written over and renamed
    assert (sftp_server.root / delivery.remote_path).read_bytes() == processed_bytes(document)
    assert document.logs.filter(step_name="upload_to_sftp", kind=FailureKind.WORKER_LOST).exists()


def test_an_sftp_server_restarted_mid_upload_gets_the_file_once(
    owner, samples, worker_env, start_worker, sftp_server, sftp_relay, ssh_client_keys, tmp_path
):
    worker_env["TASK_RETRY_DELAYS"] = "1"
    sftp_destination(sftp_server, ssh_client_keys, port=sftp_relay.port)
    held = hold_the_first_sftp_upload(sftp_relay, sftp_server)
    start_worker(worker_env)
    document = upload(owner, samples / "blank.pdf")
    try:
        wait_until(held.started.is_set, what="the upload to start", logs=list(tmp_path.glob("*.log")))
        # sshd and every session killed, as a crash would; the same port again. The worker
        # learns of it only when the hold ends, so its retry finds the server back.
        sftp_server.restart()
    finally:
        held.released.set()
    wait_until(lambda: finished(document).exists(), what="the delivery", logs=list(tmp_path.glob("*.log")))

    delivery = Delivery.objects.get(document=document)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    assert delivery.attempts == 2
    document.refresh_from_db()
    assert sftp_server.files() == [delivery.remote_path]
    assert (sftp_server.root / delivery.remote_path).read_bytes() == processed_bytes(document)
    assert document.logs.filter(step_name="upload_to_sftp", kind=FailureKind.TEMPORARY).exists()
