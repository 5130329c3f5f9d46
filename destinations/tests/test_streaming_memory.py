"""A large document is delivered to S3, FTP, SFTP and WebDAV with the worker's memory flat.

Each test runs the delivery as a worker does (``delivery_run``) in a Python process of
its own (``memory_probe``), which reports its resident memory just before the large
delivery and its peak during it: the growth must stay under the kind's own buffers
(GROWTH_LIMITS, a sixteenth of the document or a quarter for S3's parts in flight), whatever
the size of the file, and the server must then hold the whole file, byte for byte.

The document is a sparse file (holes cost no disk here), with a marked block every
MARKER_SPACING bytes: the servers receive and store every byte of it, and a
transfer that dropped or repeated a stretch would not hash the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import PROJECT_DIR
from destinations.kinds import s3 as s3_kind
from destinations.models import Delivery
from destinations.services import deliveries_schedule, destination_create
from destinations.tests.conftest import S3_KEYS
from documents import storage
from documents.models import Document
from documents.tests.factories import DocumentFactory

# The tests start a Python process each; the servers (sshd among them) come by fixture.
pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(900)]

MIB = 1024**2
# Sixteen times the bound of the streaming kinds, four times S3's: a delivery that held the
# document, or any sizeable share of it, fails. It was 1 GiB under a 64 MiB bound for every
# kind; the growth measured then (2 MiB, S3 24 MiB) does not depend on the size, and sending,
# storing and hashing a GiB four times took minutes of the suite's time.
DOCUMENT_SIZE = 256 * MIB
# Flat means bounded by the transfer's own buffers, never by the file's size: S3's are its
# multipart parts in flight (MAX_CONCURRENCY of MULTIPART_CHUNK_SIZE), the others' a few
# socket and file buffers (they grew by 2 MiB delivering 1 GiB).
GROWTH_LIMITS = {"s3": s3_kind.MAX_CONCURRENCY * s3_kind.MULTIPART_CHUNK_SIZE}
STREAMING_GROWTH_LIMIT = DOCUMENT_SIZE // 16
MARKER_SPACING = 64 * MIB
MARKER_SIZE = 4096
# Ample for the document over loopback even on a busy machine; the test fails rather than hangs.
PROBE_TIMEOUT = 600


@dataclass(frozen=True)
class LargeDocument:
    document: Document
    size: int
    sha256: str


def sparse_document_write(path: Path, *, size: int) -> str:
    """Write a ``size``-byte file at ``path``: holes, with a numbered block at its start and
    every MARKER_SPACING bytes. Returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset in range(0, size - MARKER_SIZE + 1, MARKER_SPACING):
            handle.seek(offset)
            handle.write(f"%PDF-1.7 block at {offset}\n".encode().ljust(MARKER_SIZE, b"."))
        handle.seek(size - 6)
        handle.write(b"%%EOF\n")
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@pytest.fixture
def large_document(owner, document_storage) -> Iterator[LargeDocument]:
    """A completed document whose processed file is DOCUMENT_SIZE bytes, removed after the test."""
    document = DocumentFactory.create(owner=owner)
    name = storage.processed_name(document.uuid, "large-scan")
    # Written where the test's own local storage keeps it (document_storage is that
    # folder): a copy through the storage API would fill every hole with real zeros.
    path = document_storage / name
    sha256 = sparse_document_write(path, size=DOCUMENT_SIZE)
    document.processed_file = name
    document.save(update_fields=["processed_file"])
    try:
        yield LargeDocument(document=document, size=DOCUMENT_SIZE, sha256=sha256)
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Remote:
    """A real server, what a destination on it is saved with, and how the test reads back
    what was delivered there (size and SHA-256)."""

    kind: str
    settings: dict[str, Any]
    secrets: dict[str, Any]
    landed: Callable[[str], tuple[int, str]]

    def destination(self) -> Any:
        return destination_create(
            kind=self.kind,
            name=f"{self.kind} {uuid.uuid4().hex[:6]}",
            owner=None,
            settings={**self.settings, "folder": "archive"},
            secrets=self.secrets,
        )


def on_disk(root: Path) -> Callable[[str], tuple[int, str]]:
    """Read-back for a server that stores uploads as files below ``root``."""

    def landed(path: str) -> tuple[int, str]:
        target = root / path
        return target.stat().st_size, file_sha256(target)

    return landed


def emptied(root: Path) -> None:
    """Remove whatever the test left below a server's ``root``, the large document among it, at once:
    pytest keeps the last runs' temporary folders."""
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@pytest.fixture
def s3_remote(s3_server, bucket) -> Iterator[Remote]:
    def landed(key: str) -> tuple[int, str]:
        answer = bucket.client.get_object(Bucket=bucket.name, Key=key)
        digest = hashlib.sha256()
        for chunk in answer["Body"].iter_chunks(8 * MIB):
            digest.update(chunk)
        return answer["ContentLength"], digest.hexdigest()

    try:
        yield Remote(
            kind="s3",
            settings={"bucket": bucket.name, "endpoint_url": s3_server.endpoint},
            secrets=S3_KEYS,
            landed=landed,
        )
    finally:
        # moto keeps objects for the whole session (in memory and temporary files).
        left = bucket.keys()
        for key in left:
            bucket.client.delete_object(Bucket=bucket.name, Key=key)


@pytest.fixture
def ftp_remote(ftp_server) -> Iterator[Remote]:
    yield Remote(
        kind="ftp",
        settings={
            "host": ftp_server.host,
            "port": ftp_server.port,
            "username": ftp_server.username,
            # pyftpdlib here speaks plain FTP; TLS would measure OpenSSL's buffers too, which
            # the FTPS tests elsewhere cover for correctness.
            "use_tls": False,
            "allow_plaintext": True,
        },
        secrets={"password": ftp_server.password},
        landed=on_disk(ftp_server.root),
    )
    emptied(ftp_server.root)


@pytest.fixture
def sftp_remote(sftp_server, ssh_client_keys) -> Iterator[Remote]:
    yield Remote(
        kind="sftp",
        settings={
            "host": sftp_server.host,
            "port": sftp_server.port,
            "username": sftp_server.username,
            "host_key": sftp_server.host_key.fingerprint,
        },
        secrets={"private_key": ssh_client_keys.plain.private_key.read_text()},
        landed=on_disk(sftp_server.root),
    )
    emptied(sftp_server.root)


@pytest.fixture
def webdav_remote(webdav_server) -> Iterator[Remote]:
    yield Remote(
        kind="webdav",
        settings={"url": webdav_server.url, "username": webdav_server.username},
        secrets={"password": webdav_server.password},
        landed=on_disk(webdav_server.root),
    )
    emptied(webdav_server.root)


# Asked for by name at run time; the module's `subprocess` mark makes every case slow.
@pytest.fixture(params=["s3", "ftp", "sftp", "webdav"])
def remote(request: pytest.FixtureRequest) -> Remote:
    remote: Remote = request.getfixturevalue(f"{request.param}_remote")
    return remote


@pytest.fixture
def probe_env(document_storage, worker_env) -> dict[str, str]:
    """The environment of a process on this test's database and storage (asked for after
    ``document_storage``, whose folder ``worker_env`` hands on)."""
    return worker_env


def memory_probe(env: dict[str, str], *, warm_up_id: int, measured_id: int) -> dict[str, Any]:
    """Run both deliveries in a process of their own (see ``memory_probe``); its report."""
    finished = subprocess.run(
        [sys.executable, "-m", "destinations.tests.memory_probe", str(warm_up_id), str(measured_id)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    report: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return report


def test_a_large_document_is_delivered_whole_while_the_workers_memory_stays_flat(
    remote, large_document, processed, probe_env, record_property
):
    remote.destination()
    warm_up = processed(b"%PDF-1.7 the first delivery of the process\n%%EOF\n", name="warm-up")
    (warm_up_id,) = deliveries_schedule(document_id=warm_up.pk, enqueue=False)
    (measured_id,) = deliveries_schedule(document_id=large_document.document.pk, enqueue=False)

    report = memory_probe(probe_env, warm_up_id=warm_up_id, measured_id=measured_id)

    assert report["warm_up"] == "delivered"
    assert report["outcome"] == "delivered", report["message"]
    growth = report["peak_rss"] - report["rss_before"]
    # Shown with -rP, and kept in a JUnit report: the figures docs/destinations.md gives.
    record_property("memory_growth_bytes", growth)
    print(f"{remote.kind}: RSS {report['rss_before'] / MIB:.1f} MiB before, grew {growth / MIB:.1f} MiB")
    limit = GROWTH_LIMITS.get(remote.kind, STREAMING_GROWTH_LIMIT)
    # A bound near the document's size could not tell holding it from streaming it.
    assert large_document.size >= 4 * limit
    assert growth < limit
    path = Delivery.objects.get(pk=measured_id).remote_path
    assert remote.landed(path) == (large_document.size, large_document.sha256)
