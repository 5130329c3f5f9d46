"""Remote folders against the destinations' real servers on 127.0.0.1: FTPS (pyftpdlib),
SFTP (OpenSSH), S3 (moto), WebDAV and Nextcloud's layout (wsgidav)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db.models.signals import post_save

from destinations.services.destinations import destination_create
from docuelevate.errors import InvalidInput
from documents.models import Document, FailureKind
from documents.tests.samples import blank_pdf, text_pdf
from sources.models import Source
from sources.polling import PollStatus, source_poll
from sources.services import source_create, system_sources_sync

pytestmark = pytest.mark.django_db

FOLDER = "inbox"
AN_HOUR_AGO = time.time() - 3600


@dataclass
class Remote:
    """A folder on one of the servers: how to sign in, drop files and look at what is there."""

    kind: str
    settings: dict[str, Any]
    secrets: dict[str, Any]
    drop: Callable[..., None]  # (path below the folder, content, old=True)
    files: Callable[[], list[str]]  # every file below the folder
    server: Any

    def source(self, *, secrets: dict[str, Any] | None = None, **settings: Any) -> Source:
        return source_create(
            kind=self.kind,
            owner=None,
            name=f"{self.kind} {Source.objects.count() + 1}",
            settings={**self.settings, **settings},
            secrets=self.secrets if secrets is None else secrets,
        )


def on_disk(root: Path) -> tuple[Callable[..., None], Callable[[], list[str]]]:
    folder = root / FOLDER
    # Files are dropped as the server's account would have them: the SFTP server, run as
    # root, signs in as a throwaway account owning its root folder, which must be able to
    # move what it finds (a file of root's, in a folder of root's, it could only read).
    account = root.stat()

    def owned(path: Path) -> None:
        os.chown(path, account.st_uid, account.st_gid)

    def made(path: Path) -> None:
        if not path.exists():
            made(path.parent)
            path.mkdir()
            owned(path)

    def drop(path: str, content: bytes, *, old: bool = True) -> None:
        target = folder / path
        made(target.parent)
        target.write_bytes(content)
        owned(target)
        if old:  # written long enough ago to be settled
            os.utime(target, (AN_HOUR_AGO, AN_HOUR_AGO))

    def files() -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    made(folder)
    return drop, files


def on_server(kind: str, server: Any, *, settings: dict[str, Any], secrets: dict[str, Any]) -> Remote:
    """The folder ``inbox`` of a server that keeps its files on this machine, below ``root``."""
    drop, files = on_disk(server.root)
    settings = {**settings, "folder": FOLDER}
    return Remote(kind=kind, settings=settings, secrets=secrets, drop=drop, files=files, server=server)


@pytest.fixture
def ftp_remote(ftps_server, tls_files, settings) -> Remote:
    settings.FTP_CA_BUNDLE = str(tls_files.ca_file)
    account = {"host": ftps_server.host, "port": ftps_server.port, "username": ftps_server.username}
    return on_server("ftp", ftps_server, settings=account, secrets={"password": ftps_server.password})


@pytest.fixture
def sftp_remote(sftp_server, ssh_client_keys) -> Remote:
    account = {
        "host": sftp_server.host,
        "port": sftp_server.port,
        "username": sftp_server.username,
        "host_key": sftp_server.host_key.fingerprint,
    }
    key = ssh_client_keys.plain.private_key.read_text()
    return on_server("sftp", sftp_server, settings=account, secrets={"private_key": key})


@pytest.fixture
def webdav_remote(webdav_server) -> Remote:
    account = {"url": webdav_server.url, "username": webdav_server.username}
    return on_server("webdav", webdav_server, settings=account, secrets={"password": webdav_server.password})


@pytest.fixture
def nextcloud_remote(nextcloud_server) -> Remote:
    account = {"url": nextcloud_server.base_url, "username": nextcloud_server.username}
    return on_server(
        "nextcloud", nextcloud_server, settings=account, secrets={"password": nextcloud_server.password}
    )


@pytest.fixture
def s3_remote(s3_server, bucket) -> Remote:
    from destinations.tests.conftest import S3_KEYS

    def drop(path: str, content: bytes, *, old: bool = True) -> None:
        bucket.put(f"{FOLDER}/{path}", content)

    def files() -> list[str]:
        stored = bucket.keys()  # a listing of the bucket (a method, not a mapping's keys)
        return [key.removeprefix(f"{FOLDER}/") for key in stored if key.startswith(f"{FOLDER}/")]

    return Remote(
        kind="s3",
        # moto's objects are written now: S3 puts are whole at once, so no settle time here.
        settings={
            "bucket": bucket.name,
            "endpoint_url": s3_server.endpoint,
            "folder": FOLDER,
            "settle_seconds": 0,
        },
        secrets=dict(S3_KEYS),
        drop=drop,
        files=files,
        server=s3_server,
    )


# A fixture asked for by name at run time is one pytest cannot see at collection: the one
# that starts sshd (and runs useradd, ssh-keygen) says so itself (conftest.SLOW_FIXTURES).
SFTP = pytest.param("sftp_remote", marks=pytest.mark.subprocess)
ALL = ["ftp_remote", SFTP, "s3_remote", "webdav_remote", "nextcloud_remote"]
ON_DISK = ["ftp_remote", SFTP, "webdav_remote", "nextcloud_remote"]


@pytest.fixture(params=ALL)
def remote(request, document_storage, operator) -> Remote:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=ON_DISK)
def disk_remote(request, document_storage, operator) -> Remote:
    return request.getfixturevalue(request.param)


def test_a_file_is_taken_once_and_moved_to_processed_and_a_refused_one_to_failed(remote, operator):
    source = remote.source(subfolder_tags=True)
    remote.drop("invoice.pdf", blank_pdf())
    remote.drop("2024/letter.pdf", text_pdf("A letter"))
    remote.drop("notes.bin", b"\x00\x01 not a document")
    remote.drop(".hidden.pdf", blank_pdf())
    remote.drop("upload.pdf.part", blank_pdf())

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.DONE, outcome.error
    assert outcome.documents == 2
    documents = {d.original_filename: d for d in Document.objects.all()}
    assert sorted(documents) == ["invoice.pdf", "letter.pdf"]
    assert {d.source for d in documents.values()} == {remote.kind}
    assert list(documents["letter.pdf"].tags.values_list("name", flat=True)) == ["2024"]
    assert remote.files() == [
        ".hidden.pdf",
        "failed/notes.bin",
        "failed/notes.bin.txt",
        "processed/2024/letter.pdf",
        "processed/invoice.pdf",
        "upload.pdf.part",
    ]

    again = source_poll(source_id=source.pk)
    assert (again.status, again.documents) == (PollStatus.DONE, 0)
    assert Document.objects.count() == 2


def test_a_file_written_to_recently_is_left_until_it_settles(disk_remote):
    source = disk_remote.source(settle_seconds=600)
    disk_remote.drop("scan.pdf", blank_pdf(), old=False)

    assert source_poll(source_id=source.pk).documents == 0
    assert disk_remote.files() == ["scan.pdf"]

    disk_remote.drop("scan.pdf", blank_pdf(), old=True)  # the scanner finished long ago
    assert source_poll(source_id=source.pk).documents == 1
    assert disk_remote.files() == ["processed/scan.pdf"]


def test_delete_after_removes_the_taken_file(remote):
    source = remote.source(delete_after=True)
    remote.drop("invoice.pdf", blank_pdf())

    assert source_poll(source_id=source.pk).documents == 1
    assert remote.files() == []


def test_wrong_credentials_are_a_configuration_error_with_the_reason(remote, s3_server):
    wrong = {
        name: "wrong-" + value if name != "private_key" else value for name, value in remote.secrets.items()
    }
    if remote.kind == "sftp":
        wrong = {"password": "wrong"}
    source = remote.source(secrets=wrong)
    remote.drop("invoice.pdf", blank_pdf())
    s3_server.authentication(enforced=True)
    try:
        outcome = source_poll(source_id=source.pk)
    finally:
        s3_server.authentication(enforced=False)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.CONFIGURATION
    source.refresh_from_db()
    assert source.last_error_kind == FailureKind.CONFIGURATION
    assert "refused" in source.last_error
    assert remote.files() == ["invoice.pdf"]
    assert Document.objects.count() == 0


@pytest.fixture
def server_stops_after_first_document(request) -> Iterator[Callable[[Any], None]]:
    """Stops ``server`` as soon as the first document is saved: the server goes mid-poll."""
    armed: list[Any] = []

    def stop(sender: Any, instance: Document, created: bool, **kwargs: Any) -> None:
        if armed and armed[0].running:
            armed.pop().stop()

    post_save.connect(stop, sender=Document, weak=False)
    yield armed.append
    post_save.disconnect(stop, sender=Document)


@pytest.mark.parametrize("which", ["ftp_remote", "webdav_remote"])
def test_a_server_gone_mid_poll_fails_temporarily_and_the_next_poll_takes_the_rest_once(
    which, request, document_storage, operator, server_stops_after_first_document
):
    remote: Remote = request.getfixturevalue(which)
    source = remote.source()
    for name in ["a.pdf", "b.pdf", "c.pdf"]:
        remote.drop(name, text_pdf(name))
    server_stops_after_first_document(remote.server)

    first = source_poll(source_id=source.pk)
    assert first.status == PollStatus.FAILED
    assert first.error_kind == FailureKind.TEMPORARY
    assert Document.objects.count() == 1

    remote.server.start()
    second = source_poll(source_id=source.pk)
    assert second.status == PollStatus.DONE, second.error
    assert sorted(Document.objects.values_list("original_filename", flat=True)) == ["a.pdf", "b.pdf", "c.pdf"]
    assert remote.files() == ["processed/a.pdf", "processed/b.pdf", "processed/c.pdf"]


def test_a_50_mb_file_streams_through_whole(ftp_remote, document_storage, operator):
    # 50 MB after a PDF's bytes: read_chunks hands 256 KiB blocks to the ingest's spool, so
    # the poller holds one block at a time; the hash shows every byte arrived.
    content = blank_pdf() + os.urandom(1024 * 1024) * 50
    ftp_remote.drop("large.pdf", content)
    source = ftp_remote.source()

    assert source_poll(source_id=source.pk).documents == 1
    assert Document.objects.get().filehash == hashlib.sha256(content).hexdigest()


# --- Never where documents are delivered ------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery_folder", "ingest_folder", "refused"),
    [
        ("archive", "archive", True),  # the same folder
        ("inbox/archive", "inbox", True),  # holds it: sub-folders are walked
        ("/srv/archive", "/srv/archive/", True),  # the same, written differently
        ("archive", "archive/inbox", False),  # inside: deliveries land in archive itself
        ("archive", "inbox", False),
        ("/srv/archive", "srv/archive", False),  # counted from the login folder: elsewhere
    ],
)
def test_an_environment_folder_that_takes_in_deliveries_is_refused_and_logged(
    settings, caplog, delivery_folder, ingest_folder, refused
):
    settings.FTP_ENABLED = True
    settings.FTP_HOST, settings.FTP_USERNAME, settings.FTP_PASSWORD = (
        "ftp.office.example",
        "scanner",
        "secret",
    )
    settings.FTP_FOLDER = delivery_folder
    settings.FTP_INGEST_ENABLED, settings.FTP_INGEST_FOLDER = True, ingest_folder

    enabled = system_sources_sync()

    assert [source.kind for source in enabled] == ([] if refused else ["ftp"])
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    if refused:
        assert len(logged) == 1
        assert "the source env:ftp from the environment is not valid" in logged[0]
        assert "would take them in again" in logged[0]
    else:
        assert logged == []


def test_a_users_folder_that_takes_in_their_deliveries_is_refused(settings, owner, other_user):
    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    server = {"url": "https://127.0.0.1:8443/dav/", "username": "scanner"}
    destination_create(
        kind="webdav",
        name="Archive",
        owner=other_user,  # anyone's: the files are the same whoever set it up
        settings={**server, "folder": "archive"},
        secrets={"password": "secret"},
        folder_template="{year}",  # deliveries go into sub-folders of archive
    )

    def create(**settings: Any) -> Source:
        return source_create(
            kind="webdav",
            owner=owner,
            name=f"Scans {Source.objects.count() + 1}",
            settings=settings,
            secrets={"password": "secret"},
        )

    for folder in ["archive", "archive/2024", "/archive/2024/"]:
        with pytest.raises(InvalidInput) as refused:
            create(**server, folder=folder)
        assert "Documents are delivered to archive on this WebDAV account" in refused.value.message
    assert Source.objects.count() == 0

    create(**server, folder="scans")  # beside it
    create(url=server["url"], username="someone-else", folder="archive")  # another account
    assert Source.objects.count() == 2
