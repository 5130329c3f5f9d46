"""Fixtures for destination tests: a real S3 API (moto's server, ``servers/s3.py``) on
127.0.0.1 that a test can hold an upload on, buckets, destinations and processed documents
to deliver; a replay server for the cloud drives' recorded exchanges."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import conftest
from accounts.models import User
from conftest import service_missing
from destinations.models import Destination
from destinations.services import destination_create
from destinations.tests.servers.fixtures import *  # noqa: F403 - the protocol servers' fixtures
from destinations.tests.servers.s3 import S3Server
from documents import storage
from documents.models import Document
from documents.tests.conftest import document_storage, worker_env  # noqa: F401 - fixtures
from documents.tests.factories import DocumentFactory
from documents.tests.http_replay import ReplayServer, running_replay_server

S3_KEYS = {
    "access_key_id": "AKIADOCUELEVATETEST",
    "secret_access_key": "the-test-secret-key-0123456789abcdef",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 API on 127.0.0.1 for the session."""
    try:
        server = S3Server()
    except ImportError as exc:
        service_missing(f"moto's server is not installed ({exc})")
    server.start()
    # werkzeug logs every request; failures read better without them.
    request_log = logging.getLogger("werkzeug")
    level = request_log.level
    request_log.setLevel(logging.WARNING)
    yield server
    server.stop()
    request_log.setLevel(level)


@dataclass
class Bucket:
    """A fresh bucket, and a boto3 client to look into it from outside the code under test."""

    name: str
    client: Any

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def put(self, key: str, content: bytes, *, sha256: str | None = None) -> None:
        metadata = {"sha256": sha256} if sha256 else {}
        self.client.put_object(Bucket=self.name, Key=key, Body=content, Metadata=metadata)


@pytest.fixture
def bucket(s3_server: S3Server) -> Bucket:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
    )
    name = f"deliveries-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(name=name, client=client)


MakeDestination = Callable[..., Destination]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    """Users' own destinations may reach 127.0.0.1, where the tests' servers listen: as an
    operator allows an intranet server (URL_FETCH_ALLOWED_NETWORKS)."""
    settings.URL_FETCH_ALLOWED_NETWORKS = (LOOPBACK,)


@pytest.fixture
def make_s3_destination(
    db: None, s3_server: S3Server, bucket: Bucket, loopback_allowed: None
) -> MakeDestination:
    """Save an S3 destination on the test bucket (system-wide unless an owner is given)."""

    def make(
        *,
        owner: User | None = None,
        name: str | None = None,
        folder: str = "archive",
        folder_template: str = "",
        bucket_name: str | None = None,
        keys: dict[str, str] | None = None,
        **options: Any,
    ) -> Destination:
        return destination_create(
            kind="s3",
            name=name or f"bucket {uuid.uuid4().hex[:6]}",
            owner=owner,
            settings={
                "bucket": bucket_name or bucket.name,
                "folder": folder,
                "endpoint_url": s3_server.endpoint,
            },
            secrets=S3_KEYS if keys is None else keys,
            folder_template=folder_template,
            **options,
        )

    return make


@pytest.fixture
def processed(owner: User, document_storage) -> Callable[..., Document]:  # noqa: F811 - the fixture above
    """A completed document with a real processed PDF in the document storage (no pipeline run)."""

    def make(
        content: bytes = b"%PDF-1.7 delivered bytes\n%%EOF\n",
        *,
        name: str = "2024-03-12_Invoice",
        **fields: Any,
    ) -> Document:
        document = DocumentFactory.create(owner=owner, **fields)
        document.processed_file = storage.store_bytes(content, storage.processed_name(document.uuid, name))
        document.save(update_fields=["processed_file"])
        return document

    return make


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def wait_until(
    condition: Callable[[], Any], *, what: str, logs: list[Path] | None = None, timeout: float = 180
) -> Any:
    """The suite's ``wait_until``, failing with the ends of the workers' logs."""

    def log_ends() -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in logs or [])

    return conftest.wait_until(condition, timeout=timeout, what=what, details=log_ends)


def kill_worker_mid_upload(
    worker: subprocess.Popen[bytes],
    *,
    started: Callable[[], Any],
    release: Callable[[], Any],
    logs: list[Path],
    timeout: float = 180,
) -> None:
    """Once the server holds the upload (``started``), SIGKILL the worker and all it started,
    as an OOM kill would; then let the server go on (``release``), whatever happened."""
    try:
        wait_until(started, what="the upload to start", logs=logs, timeout=timeout)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        release()


# --- Cloud drives: their SDKs against recorded exchanges ----------------------------------

RECORDINGS = Path(__file__).resolve().parent / "recordings"


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A local server replaying a recording (``replay.play(name, RECORDINGS)``), for the
    cloud SDKs whose hosts a test points at it (``destinations.kinds.transport``)."""
    with running_replay_server() as server:
        yield server


def routes_to(server: ReplayServer, *origins: str) -> dict[str, str]:
    """Every one of ``origins`` (``https://api.dropboxapi.com``) sent to the replay server."""
    return {origin: server.url for origin in origins}


class Sleeps(list[float]):
    """Stands in for ``time.sleep`` in kinds: records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def address_lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) resolved from now on, the real resolver still answering: what a
    user's destination was checked against (``docuelevate.addresses``)."""
    looked_up: list[tuple[str, int]] = []
    resolve = socket.getaddrinfo

    def recording(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        looked_up.append((host, port))
        return resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return looked_up
