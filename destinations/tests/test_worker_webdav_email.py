"""Deliveries to WebDAV, Nextcloud and e-mail by a real Celery worker after real
processing, with the server down when the delivery first comes, or the worker killed
mid-upload."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import PurePosixPath

import pytest

from destinations.models import Delivery, DeliveryStatus
from destinations.paths import template_values
from destinations.services import destination_create
from destinations.tasks import delivery_run_task
from destinations.tests.conftest import kill_worker_mid_upload, wait_until
from destinations.tests.scripted_webdav import ScriptedWebDavServer
from documents.models import DocumentStatus, FailureKind
from documents.services import document_ingest
from documents.storage import open_file, read_chunks

pytestmark = pytest.mark.usefixtures("engines")


def upload(owner, path):
    with path.open("rb") as handle:
        return document_ingest(owner=owner, chunks=read_chunks(handle), filename=path.name).document


def finished(document, kind: str) -> bool:
    return (
        Delivery.objects.filter(document=document, destination__kind=kind)
        .exclude(status__in=[DeliveryStatus.PENDING, DeliveryStatus.IN_PROGRESS])
        .exists()
    )


def waiting_for_retry(document, kind: str) -> bool:
    return Delivery.objects.filter(
        document=document,
        destination__kind=kind,
        status=DeliveryStatus.PENDING,
        error_kind=FailureKind.TEMPORARY,
    ).exists()


def processed_bytes(document) -> bytes:
    with open_file(document.processed_file) as handle:
        return handle.read()


def test_webdav_and_nextcloud_get_one_whole_file_each_though_the_webdav_server_was_down(
    owner, samples, worker_env, start_worker, tmp_path
):
    with (
        ScriptedWebDavServer(root=tmp_path / "dav-root") as dav,
        ScriptedWebDavServer(root=tmp_path / "nextcloud-root", nextcloud=True) as nextcloud,
    ):
        for kind, server, url in (("webdav", dav, dav.url), ("nextcloud", nextcloud, nextcloud.base_url)):
            destination_create(
                kind=kind,
                name=kind,
                owner=None,
                settings={"url": url, "folder": "archive", "username": server.username},
                secrets={"password": server.password},
                folder_template="{year}/{correspondent}/{filename}",
            )
        dav.stop()
        start_worker({**worker_env, "TASK_RETRY_DELAYS": "3"})
        document = upload(owner, samples / "blank.pdf")
        logs = list(tmp_path.glob("*.log"))
        wait_until(lambda: waiting_for_retry(document, "webdav"), what="the WebDAV retry", logs=logs)
        dav.start()  # back on the same port
        wait_until(lambda: finished(document, "webdav"), what="the WebDAV delivery", logs=logs)
        wait_until(lambda: finished(document, "nextcloud"), what="the Nextcloud delivery", logs=logs)

        document.refresh_from_db()
        assert document.status == DocumentStatus.COMPLETED
        content = processed_bytes(document)
        name = PurePosixPath(document.processed_file).name
        path = f"archive/{template_values(document)['year']}/unknown/{name}"
        for server in (dav, nextcloud):
            assert server.files() == [path]  # one whole file, no temporary one beside it
            assert (server.root / path).read_bytes() == content
        assert {request.path.split("/archive/")[0] for request in nextcloud.requests_of("PUT")} == {
            "/remote.php/dav/files/deliver"
        }
        delivery = Delivery.objects.get(document=document, destination__kind="webdav")
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
        assert document.logs.filter(step_name="upload_to_webdav", status="success").count() == 1

        puts = len(dav.requests_of("PUT"))
        again = delivery_run_task.apply_async(args=(delivery.pk,), ignore_result=False)
        assert again.get(timeout=120) == "noop"
        assert len(dav.requests_of("PUT")) == puts


def test_a_worker_killed_mid_upload_to_webdav_ends_with_one_whole_file_and_no_temporary_one(
    owner, samples, worker_env, start_worker, tmp_path
):
    # Nextcloud is this kind with another URL layout: the same upload, the same recovery.
    with ScriptedWebDavServer(root=tmp_path / "dav-root") as dav:
        destination_create(
            kind="webdav",
            name="webdav",
            owner=None,
            settings={"url": dav.url, "folder": "archive", "username": dav.username},
            secrets={"password": dav.password},
            folder_template="{year}/{correspondent}/{filename}",
        )
        # The first PUT (of the temporary file) stores its first bytes, then waits for the
        # test for as long as the test may wait for the upload to begin.
        held = dav.hold_upload(after_bytes=100, seconds=180)
        worker = start_worker(worker_env, name="crashy")
        document = upload(owner, samples / "blank.pdf")
        kill_worker_mid_upload(
            worker, started=held.started.is_set, release=held.released.set, logs=list(tmp_path.glob("*.log"))
        )
        delivery = Delivery.objects.get(document=document)
        assert delivery.status == DeliveryStatus.IN_PROGRESS  # nobody could record anything
        (left,) = dav.files()  # what the killed run left: half a file, under a temporary name
        assert PurePosixPath(left).name.startswith(".docuelevate-")

        start_worker(worker_env, name="crashy")  # the same node comes back
        wait_until(
            lambda: finished(document, "webdav"), what="the delivery", logs=list(tmp_path.glob("*.log"))
        )

        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2), delivery.error
        document.refresh_from_db()
        name = PurePosixPath(document.processed_file).name
        path = f"archive/{template_values(document)['year']}/unknown/{name}"
        assert delivery.remote_path == path
        assert dav.files() == [path]
        assert (dav.root / path).read_bytes() == processed_bytes(document)
        assert document.logs.filter(step_name="upload_to_webdav", kind=FailureKind.WORKER_LOST).exists()


def test_a_mail_goes_out_once_over_starttls_signed_in_though_the_server_was_down(
    owner, samples, worker_env, start_worker, smtp_starttls_server, tls_files, tmp_path
):
    mail = smtp_starttls_server
    destination_create(
        kind="email",
        name="mail",
        owner=None,
        settings={
            "host": mail.host,
            "port": mail.port,
            "security": "starttls",
            "username": mail.username,
            "sender": "DocuElevate <docuelevate@example.org>",
            "recipient": "archive@example.org",
        },
        secrets={"password": mail.password},
    )
    mail.stop()
    # The workers trust the test CA as an operator's SSL_CERT_FILE would make them.
    start_worker({**worker_env, "TASK_RETRY_DELAYS": "3", "SSL_CERT_FILE": str(tls_files.ca_file)})
    document = upload(owner, samples / "blank.pdf")
    logs = list(tmp_path.glob("*.log"))
    wait_until(lambda: waiting_for_retry(document, "email"), what="the mail's retry", logs=logs)
    mail.start()
    wait_until(lambda: finished(document, "email"), what="the mail", logs=logs)

    delivery = Delivery.objects.get(document=document)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2), delivery.error
    (received,) = mail.wait_for_messages(2, timeout=3)
    assert (received.over_tls, received.login, received.recipients) == (
        True,
        "mailer",
        ["archive@example.org"],
    )
    document.refresh_from_db()
    message = BytesParser(policy=default_policy).parsebytes(received.data)
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == processed_bytes(document)
    assert message["Message-ID"] == delivery.remote_id
    for path in tmp_path.glob("*.log"):
        assert mail.password not in path.read_text(errors="replace")
