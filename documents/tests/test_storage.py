"""The document storage, on the local WORKDIR and on a real S3 API (moto's server).

What the storage holds is always checked from outside ``documents.storage``: by walking
the WORKDIR, or by listing the bucket with boto3.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from conftest import service_missing
from docuelevate.errors import PayloadTooLarge
from documents import storage
from documents.models import DocumentStatus

T = TypeVar("T")

S3_PREFIX = "acme/documents"
S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class StoredFiles(Protocol):
    """What one document storage physically holds."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...


class LocalFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        files = (path for path in self.root.rglob("*") if path.is_file())
        return sorted(path.relative_to(self.root).as_posix() for path in files)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


class BucketFiles:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def all_keys(self) -> list[str]:
        """Every key in the bucket, whatever its prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))

    def names(self) -> list[str]:
        return sorted(key.removeprefix(f"{self.prefix}/") for key in self.all_keys())

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")["Body"].read()


# --- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API on 127.0.0.1 (moto's server on a port the system picks), for the session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing(f"moto's server is not installed ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits without a timeout for a server thread that may have died on startup.
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(timeout=20)
    if starting.is_alive():
        service_missing("moto's S3 server did not start within 20 seconds")
    host, port = server.get_host_and_port()
    # The server logs every request; failures of these tests are clearer without that.
    request_log = logging.getLogger("werkzeug")
    level = request_log.level
    request_log.setLevel(logging.WARNING)
    yield f"http://{host}:{port}"
    server.stop()
    request_log.setLevel(level)


@pytest.fixture
def s3_bucket(document_storage: Path, settings, moto_endpoint: str) -> Iterator[BucketFiles]:
    """The ``documents`` storage on a fresh bucket of the moto server, under a prefix."""
    import boto3
    from botocore.exceptions import BotoCoreError

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **S3_CREDENTIALS)
    bucket = f"docuelevate-test-{uuid.uuid4().hex[:12]}"
    try:
        client.create_bucket(Bucket=bucket)
    except BotoCoreError as exc:
        service_missing(f"moto's S3 server at {moto_endpoint} does not answer ({exc})")
    # After document_storage, which configured the local storage this replaces.
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": S3_PREFIX,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                "access_key": S3_CREDENTIALS["aws_access_key_id"],
                "secret_key": S3_CREDENTIALS["aws_secret_access_key"],
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": False,
            },
        },
    }
    # Django caches storage backends; the setting_changed signal must have reset them.
    assert type(storage.document_storage()).__name__ == "S3Storage"
    files = BucketFiles(client, bucket, S3_PREFIX)
    yield files
    for key in files.all_keys():
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)


@pytest.fixture(params=["local", "s3"])
def stored(request: pytest.FixtureRequest, document_storage: Path) -> StoredFiles:
    """Each storage-behaviour test runs on the local WORKDIR and on S3."""
    if request.param == "s3":
        return request.getfixturevalue("s3_bucket")
    assert type(storage.document_storage()).__name__ == "FileSystemStorage"
    return LocalFiles(document_storage)


@pytest.fixture
def scratch(document_storage: Path, settings) -> Path:
    """The private scratch space of this test (the WORKDIR's ``tmp``, as in production)."""
    return Path(settings.SCRATCH_DIR)


def scratch_entries(scratch: Path) -> list[Path]:
    return sorted(scratch.iterdir()) if scratch.exists() else []


def crash_inside(manager: AbstractContextManager[T], seen: list[T]) -> None:
    """Take what ``manager`` yields, then fail the way a step's tool can."""
    with manager as value:
        seen.append(value)
        raise RuntimeError("the caller's work failed")


def local_file(folder: Path, content: bytes, name: str = "source.bin") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


# --- spooled_upload ------------------------------------------------------------------------


def test_spooled_upload_hashes_while_streaming_and_records_size_and_head(stored, scratch):
    data = os.urandom(storage.HEAD_SIZE * 3 + 17)
    # Uneven chunks, one of them straddling the end of the head, from a one-pass generator.
    cuts = [0, 10, storage.HEAD_SIZE - 5, storage.HEAD_SIZE + 1000, len(data)]
    chunks = (data[start:end] for start, end in itertools.pairwise(cuts))
    with storage.spooled_upload(chunks, max_size=len(data)) as upload:
        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        assert upload.size == len(data)
        assert upload.head == data[: storage.HEAD_SIZE]
        assert upload.path.parent == scratch
        assert upload.path.read_bytes() == data
    assert not upload.path.exists()
    assert scratch_entries(scratch) == []
    assert stored.names() == []  # spooling is local scratch work, the storage is not touched


def test_spooled_upload_of_a_small_file_keeps_all_of_it_as_head(scratch):
    with storage.spooled_upload([b"%PDF-1.7", b"\n"], max_size=100) as upload:
        assert (upload.head, upload.size) == (b"%PDF-1.7\n", 9)
    assert scratch_entries(scratch) == []


def test_the_scratch_file_of_a_spooled_upload_is_removed_when_the_caller_fails(scratch):
    uploads: list[storage.SpooledUpload] = []
    with pytest.raises(RuntimeError, match="the caller's work failed"):
        crash_inside(storage.spooled_upload([b"data"], max_size=10), uploads)
    assert not uploads[0].path.exists()
    assert scratch_entries(scratch) == []


def test_an_upload_of_exactly_max_size_is_accepted(scratch):
    with storage.spooled_upload([b"x" * 600, b"y" * 400], max_size=1000) as upload:
        assert upload.size == 1000


def test_an_upload_over_max_size_raises_payload_too_large_and_leaves_no_partial_file(stored, scratch):
    pulled = 0

    def endless() -> Iterator[bytes]:  # a copy that did not stop at the limit would never end
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1000

    with (
        pytest.raises(PayloadTooLarge, match="larger than the limit of 2500 bytes"),
        storage.spooled_upload(endless(), max_size=2500),
    ):
        pytest.fail("the body must not run for a refused upload")
    assert pulled == 3  # the copy stopped at the first chunk past the limit
    assert scratch_entries(scratch) == []
    assert stored.names() == []


# --- store_file, store_bytes, exists, delete, open_file, size_of ---------------------------


def test_store_file_stores_under_exactly_the_given_name_and_replaces_what_was_there(stored, tmp_path):
    name = storage.original_name()
    for content in (b"first version", b"second, longer version", b"third"):
        assert storage.store_file(local_file(tmp_path, content), name) == name
        assert stored.names() == [name]  # re-running never makes name_1-style copies
        assert stored.read(name) == content


def test_store_file_keeps_names_with_folders_and_extensions_as_given(stored, tmp_path):
    names = ["processed/2024-03-01_Invoice ACME.pdf", "tmp/" + uuid.uuid4().hex + "/ocr.pdf"]
    for name in names:
        assert storage.store_file(local_file(tmp_path, name.encode()), name) == name
        assert storage.store_file(local_file(tmp_path, name.encode()), name) == name
    assert stored.names() == sorted(names)
    assert [stored.read(name) for name in names] == [name.encode() for name in names]


def test_store_bytes_stores_and_replaces_small_content_and_leaves_no_scratch(stored, scratch):
    name = "processed/2024-03-01_Invoice.json"
    assert storage.store_bytes(b'{"version": 1}', name) == name
    assert storage.store_bytes(b'{"version": 2}', name) == name
    assert stored.names() == [name]
    assert json.loads(stored.read(name)) == {"version": 2}
    assert scratch_entries(scratch) == []


def test_exists_and_delete_follow_what_is_stored(stored):
    name = "processed/report.pdf"
    assert not storage.exists(name)
    assert not storage.exists("")  # a document without that file yet
    storage.store_bytes(b"%PDF-1.7", name)
    assert storage.exists(name)
    storage.delete(name)
    assert not storage.exists(name)
    assert stored.names() == []
    storage.delete(name)  # deleting what is gone, or nothing, is not an error
    storage.delete("")


def test_delete_folder_removes_every_file_under_a_tmp_uuid_prefix_and_nothing_else(stored):
    document, other = uuid.uuid4(), uuid.uuid4()
    for label in ("converted.pdf", "ocr.pdf", "embedded.pdf"):
        storage.store_bytes(label.encode(), storage.artifact_name(document, label))
    kept = [storage.artifact_name(other, "ocr.pdf"), "originals/" + document.hex, "processed/kept.pdf"]
    for name in kept:
        storage.store_bytes(b"kept", name)

    storage.delete_folder(storage.artifact_name(document, "").rstrip("/"))

    assert stored.names() == sorted(kept)
    assert not storage.exists(storage.artifact_name(document, "ocr.pdf"))
    if isinstance(stored, LocalFiles):
        assert not (stored.root / "tmp" / document.hex).exists()  # no empty folder left either


def test_delete_folder_of_a_prefix_that_was_never_used_does_nothing(stored):
    storage.store_bytes(b"kept", "originals/kept")
    storage.delete_folder(storage.artifact_name(uuid.uuid4(), "").rstrip("/"))
    assert stored.names() == ["originals/kept"]


def test_open_file_reads_and_size_of_measures_the_stored_content(stored, tmp_path):
    content = os.urandom(3 * storage.CHUNK_SIZE // 2)
    name = storage.store_file(local_file(tmp_path, content), storage.original_name())
    with storage.open_file(name) as handle:
        assert handle.read() == content
    assert storage.size_of(name) == len(content)


def test_open_file_of_a_missing_name_raises_file_not_found(stored):
    with pytest.raises(FileNotFoundError):
        storage.open_file("originals/" + uuid.uuid4().hex)


# --- local_copy ----------------------------------------------------------------------------


def test_local_copy_yields_a_local_path_with_the_stored_content(stored, scratch, tmp_path):
    content = os.urandom(2 * storage.CHUNK_SIZE + 3)
    name = storage.store_file(local_file(tmp_path, content), "processed/2024-01-01_Letter.pdf")
    with storage.local_copy(name) as path:
        assert path.is_file()
        assert path.read_bytes() == content
        if isinstance(stored, LocalFiles):
            assert path == stored.root / name  # the stored file itself, no copy
        else:
            assert path.parent.parent == scratch  # a download into a private scratch folder
            assert path.name == "2024-01-01_Letter.pdf"
    assert path.exists() == isinstance(stored, LocalFiles)  # the download is gone afterwards
    assert scratch_entries(scratch) == []
    assert stored.names() == [name]
    assert stored.read(name) == content


def test_the_download_of_local_copy_is_removed_when_the_caller_fails(stored, scratch):
    name = "originals/" + uuid.uuid4().hex
    storage.store_bytes(b"content", name)
    copies: list[Path] = []
    with pytest.raises(RuntimeError, match="the caller's work failed"):
        crash_inside(storage.local_copy(name), copies)
    assert copies[0].exists() == isinstance(stored, LocalFiles)  # never the stored file itself
    assert scratch_entries(scratch) == []
    assert stored.names() == [name]


# --- The whole pipeline on S3 --------------------------------------------------------------


@pytest.mark.django_db
def test_a_document_processed_on_s3_lives_in_the_bucket_and_leaves_nothing_on_local_disk(
    s3_bucket, document_storage, process, samples, settings, scratch
):
    document = process(samples / "blank.pdf")

    assert document.status == DocumentStatus.COMPLETED, document.error
    assert document.original_file.startswith("originals/")
    assert document.processed_file.startswith("processed/")
    assert document.processed_file.endswith(".pdf")
    sidecar = document.processed_file.removesuffix(".pdf") + ".json"
    thumbnail = storage.thumbnail_name(document.uuid)
    assert s3_bucket.names() == sorted([document.original_file, document.processed_file, sidecar, thumbnail])
    assert all(key.startswith(f"{S3_PREFIX}/") for key in s3_bucket.all_keys())  # nothing outside the prefix
    assert not [name for name in s3_bucket.names() if name.startswith("tmp/")]
    assert s3_bucket.read(document.original_file) == (samples / "blank.pdf").read_bytes()
    assert s3_bucket.read(document.processed_file).startswith(b"%PDF-")
    assert json.loads(s3_bucket.read(sidecar))["uuid"] == str(document.uuid)
    assert s3_bucket.read(thumbnail).startswith(b"\x89PNG")
    # The local WORKDIR only ever held scratch space, and that is empty again.
    assert scratch.parent == document_storage
    assert [path for path in document_storage.rglob("*") if path != scratch] == []
    assert scratch_entries(scratch) == []
