"""Fixtures for source tests: a private document storage, a watched folder, a mailbox on a
real Dovecot server, recorded exchanges of the providers' token endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The destinations' real servers, for the remote folders (sources/kinds/remote.py).
from destinations.tests.conftest import bucket, s3_server  # noqa: F401 - fixtures
from destinations.tests.servers.fixtures import (  # noqa: F401 - fixtures
    ftps_server,
    nextcloud_server,
    sftp_server,
    ssh_client_keys,
    webdav_server,
)
from documents.tests.conftest import document_storage  # noqa: F401 - a fixture
from documents.tests.http_replay import ReplayServer, running_replay_server
from sources.models import Source, SourceKind
from sources.services import source_create
from sources.tests.servers.fixtures import *  # noqa: F403 - the Dovecot server's fixtures

RECORDINGS = Path(__file__).resolve().parent / "recordings"


@pytest.fixture
def watched(tmp_path: Path, document_storage: Path, operator) -> Path:  # noqa: F811
    """A folder to drop files in, outside WORKDIR."""
    folder = tmp_path / "scans"
    folder.mkdir()
    return folder


@pytest.fixture
def make_watch_source(watched: Path):
    def make(**settings) -> Source:
        return source_create(
            kind=SourceKind.WATCH,
            owner=None,
            name=f"Scans {Source.objects.count() + 1}",
            settings={"path": str(watched), "settle_seconds": 0, **settings},
        )

    return make


@pytest.fixture
def mailbox(dovecot_server, settings, document_storage, operator):  # noqa: F811
    """An account on the Dovecot server, its CA trusted by the IMAP client."""
    settings.IMAP_CA_BUNDLE = str(dovecot_server.tls.ca_file)
    return dovecot_server.add_user("scanner")


@pytest.fixture
def make_imap_source(dovecot_server, mailbox):
    """A system-wide mailbox source on the Dovecot server (system-wide: its 127.0.0.1 host
    is the operator's to choose)."""

    def make(*, password: str | None = None, **settings) -> Source:
        return source_create(
            kind=SourceKind.IMAP,
            owner=None,
            name=f"Mailbox {Source.objects.count() + 1}",
            settings={
                "host": dovecot_server.host,
                "port": dovecot_server.port,
                "username": mailbox.username,
                **settings,
            },
            secrets={"password": password or mailbox.password},
        )

    return make


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A local server replaying a recording (``replay.play(name, RECORDINGS)``); a test
    sends a provider's origin to it through ``settings.CLOUD_API_ROUTES``."""
    with running_replay_server() as server:
        yield server
