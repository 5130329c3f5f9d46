"""A document processed for real in this process (as ``ingest --sync`` does) reaches a
WebDAV share, a Nextcloud and a mailbox, each with the very bytes of the processed PDF."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import PurePosixPath

import pytest

from destinations.models import Delivery, DeliveryStatus
from destinations.paths import template_values
from destinations.services import destination_create
from destinations.tests.servers.webdav import WebDavServer
from documents.models import DocumentStatus
from documents.storage import open_file
from documents.tests.conftest import ingest, process  # noqa: F401 - fixtures


def processed_bytes(document) -> bytes:
    with open_file(document.processed_file) as handle:
        return handle.read()


@pytest.mark.usefixtures("document_storage")
def test_a_processed_document_reaches_webdav_nextcloud_and_a_mailbox(
    process,  # noqa: F811 - the fixture imported above
    samples,
    webdav_server,
    nextcloud_server,
    smtp_starttls_server,
    tls_files,
    monkeypatch,
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_file))
    for kind, server in (("webdav", webdav_server), ("nextcloud", nextcloud_server)):
        assert isinstance(server, WebDavServer)
        destination_create(
            kind=kind,
            name=kind,
            owner=None,
            settings={
                "url": server.base_url if kind == "nextcloud" else server.url,
                "folder": "Scans",
                "username": server.username,
            },
            secrets={"password": server.password},
            folder_template="{year}/{filename}",
        )
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
            "sender": "docuelevate@example.org",
            "recipient": "archive@example.org",
        },
        secrets={"password": mail.password},
    )

    document = process(samples / "blank.pdf")

    assert document.status == DocumentStatus.COMPLETED
    deliveries = Delivery.objects.filter(document=document).select_related("destination")
    assert {(d.destination.kind, d.status) for d in deliveries} == {
        ("webdav", DeliveryStatus.DELIVERED),
        ("nextcloud", DeliveryStatus.DELIVERED),
        ("email", DeliveryStatus.DELIVERED),
    }
    content = processed_bytes(document)
    name = PurePosixPath(document.processed_file).name
    year = template_values(document)["year"]
    for server in (webdav_server, nextcloud_server):
        assert server.files() == [f"Scans/{year}/{name}"]
        assert (server.root / "Scans" / year / name).read_bytes() == content
    (received,) = mail.wait_for_messages(1)
    (attachment,) = BytesParser(policy=default_policy).parsebytes(received.data).iter_attachments()
    assert attachment.get_content() == content
    assert attachment.get_filename() == name
