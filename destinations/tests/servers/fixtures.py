"""pytest fixtures for the real protocol servers: each started on 127.0.0.1 on a free port
for one test and stopped after it. A test needing another setup (another user, FTPS that
also allows plain text, SMTP with TLS from the first byte) uses the class itself in a
``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import service_missing

from .ftp import FtpServer
from .sftp import SftpServer, SshClientKeys, make_client_keys, sshd_missing
from .smtp import SmtpServer
from .tls import TlsFiles, make_tls_files
from .webdav import WebDavServer

# What ``from destinations.tests.servers.fixtures import *`` brings into a test module or a
# conftest, where pytest finds fixtures by name.
__all__ = [
    "ftp_server",
    "ftps_server",
    "nextcloud_server",
    "sftp_server",
    "smtp_server",
    "smtp_starttls_server",
    "ssh_client_keys",
    "tls_files",
    "webdav_server",
    "webdavs_server",
]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and the servers' certificate for 127.0.0.1 and localhost."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    with FtpServer(root=tmp_path / "ftp-root") as server:
        yield server


@pytest.fixture
def ftps_server(tmp_path: Path, tls_files: TlsFiles) -> Iterator[FtpServer]:
    """Explicit FTPS: AUTH TLS before logging in, and protected data connections."""
    with FtpServer(root=tmp_path / "ftps-root", tls=tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def ssh_client_keys(tmp_path_factory: pytest.TempPathFactory) -> SshClientKeys:
    if reason := sshd_missing():
        service_missing(reason)
    return make_client_keys(tmp_path_factory.mktemp("ssh-client-keys"))


@pytest.fixture
def sftp_server(ssh_client_keys: SshClientKeys) -> Iterator[SftpServer]:
    """sshd accepting both client keys and, run as root, a password (else ``password`` is
    None)."""
    with SftpServer(client_keys=[ssh_client_keys.plain, ssh_client_keys.encrypted]) as server:
        yield server


@pytest.fixture
def webdav_server(tmp_path: Path) -> Iterator[WebDavServer]:
    with WebDavServer(root=tmp_path / "webdav-root") as server:
        yield server


@pytest.fixture
def webdavs_server(tmp_path: Path, tls_files: TlsFiles) -> Iterator[WebDavServer]:
    """WebDAV over HTTPS, with a certificate only ``tls_files.ca_file`` vouches for."""
    with WebDavServer(root=tmp_path / "webdavs-root", tls=tls_files) as server:
        yield server


@pytest.fixture
def nextcloud_server(tmp_path: Path) -> Iterator[WebDavServer]:
    """WebDAV where Nextcloud serves a user's files: ``/remote.php/dav/files/<user>/``."""
    with WebDavServer(root=tmp_path / "nextcloud-root", nextcloud=True) as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain relay: no TLS, no login."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_starttls_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """STARTTLS required before anything else, then AUTH (LOGIN or PLAIN) before sending."""
    with SmtpServer(tls=tls_files, starttls=True, username="mailer") as server:
        yield server
