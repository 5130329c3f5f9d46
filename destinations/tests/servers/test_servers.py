"""The test servers themselves: each takes an upload from a standard client into its root
folder, comes back on the same port after a restart, and means it about TLS and logins."""

from __future__ import annotations

import base64
import ftplib
import io
import os
import pwd
import smtplib
import ssl
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import paramiko
import pytest
import requests

from conftest import SLOW_FIXTURES, service_missing

# pytest finds fixtures by their names in the test module.
from .fixtures import *  # noqa: F403
from .ftp import FtpServer
from .s3 import S3ServerProcess
from .sftp import SftpServer, SshClientKeys, SshKey
from .smtp import SmtpServer
from .tls import TlsFiles
from .webdav import WebDavServer

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


# --- Standard clients ------------------------------------------------------------------------


def ftp_connect(server: FtpServer) -> ftplib.FTP:
    # Plain FTP on purpose: the server under test speaks it.
    client = ftplib.FTP()  # noqa: S321
    client.connect(server.host, server.port, timeout=10)
    return client


def ftps_connect(server: FtpServer, context: ssl.SSLContext) -> ftplib.FTP_TLS:
    """Connected, not yet secured (AUTH TLS) nor logged in."""
    client = ftplib.FTP_TLS(context=context)  # noqa: S321  (explicit TLS, once AUTH TLS is sent)
    client.connect(server.host, server.port, timeout=10)
    return client


def ftp_login(server: FtpServer, tls_files: TlsFiles | None = None) -> ftplib.FTP:
    if server.tls is None:
        client = ftp_connect(server)
    else:
        assert tls_files is not None
        secured = ftps_connect(server, tls_files.client_context())
        secured.auth()
        secured.prot_p()
        client = secured
    client.login(server.username, server.password)
    return client


def ftp_upload(server: FtpServer, name: str, data: bytes, tls_files: TlsFiles | None = None) -> None:
    """Upload under a temporary name, then rename: RNFR/RNTO."""
    client = ftp_login(server, tls_files)
    client.mkd("inbox")
    client.storbinary(f"STOR inbox/{name}.part", io.BytesIO(data))
    client.rename(f"inbox/{name}.part", f"inbox/{name}")
    client.quit()


def sftp_connect(server: SftpServer, *, known_key: SshKey | None = None, **login: Any) -> paramiko.SSHClient:
    """A client that knows the server's host key (or ``known_key``) and refuses any other."""
    known = known_key or server.host_key
    client = paramiko.SSHClient()
    host_key = paramiko.Ed25519Key(data=base64.b64decode(known.public_base64))
    client.get_host_keys().add(f"[{server.host}]:{server.port}", known.key_type, host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        server.port,
        username=server.username,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        **login,
    )
    return client


def sftp_upload(server: SftpServer, name: str, data: bytes, keys: SshClientKeys) -> None:
    with sftp_connect(server, key_filename=str(keys.plain.private_key)) as client, client.open_sftp() as sftp:
        sftp.mkdir("inbox")
        sftp.putfo(io.BytesIO(data), f"inbox/{name}.part")
        sftp.rename(f"inbox/{name}.part", f"inbox/{name}")


def webdav_upload(server: WebDavServer, name: str, data: bytes, tls_files: TlsFiles | None = None) -> None:
    """PUT under a temporary name, then MOVE."""
    auth = (server.username, server.password)
    # Per request: REQUESTS_CA_BUNDLE in the environment would override a Session's verify.
    verify = str(tls_files.ca_file) if server.tls and tls_files else True
    folder = f"{server.url}inbox/"
    made = requests.request("MKCOL", folder, auth=auth, verify=verify, timeout=10)
    assert made.status_code == 201
    put = requests.put(f"{folder}{name}.part", data=data, auth=auth, verify=verify, timeout=10)
    assert put.status_code == 201
    moved = requests.request(
        "MOVE",
        f"{folder}{name}.part",
        headers={"Destination": f"{folder}{name}", "Overwrite": "F"},
        auth=auth,
        verify=verify,
        timeout=10,
    )
    assert moved.status_code == 201


# Each file server with the upload its standard client makes.
FILE_SERVERS: dict[str, Callable[[Any, str, bytes, pytest.FixtureRequest], None]] = {
    "ftp_server": lambda server, name, data, request: ftp_upload(server, name, data),
    "ftps_server": lambda server, name, data, request: ftp_upload(
        server, name, data, request.getfixturevalue("tls_files")
    ),
    "sftp_server": lambda server, name, data, request: sftp_upload(
        server, name, data, request.getfixturevalue("ssh_client_keys")
    ),
    "webdav_server": lambda server, name, data, request: webdav_upload(server, name, data),
    "webdavs_server": lambda server, name, data, request: webdav_upload(
        server, name, data, request.getfixturevalue("tls_files")
    ),
    "nextcloud_server": lambda server, name, data, request: webdav_upload(server, name, data),
}
# The same, for parametrize: a fixture asked for by name at run time is one pytest cannot see
# at collection, so the one that starts sshd says so itself (conftest.SLOW_FIXTURES).
FILE_SERVER_PARAMS = [
    pytest.param(name, marks=pytest.mark.subprocess) if name in SLOW_FIXTURES else name
    for name in FILE_SERVERS
]


# --- Every file server -----------------------------------------------------------------------


@pytest.mark.parametrize("server_fixture", FILE_SERVER_PARAMS)
def test_an_upload_lands_in_the_root_folder_byte_for_byte_and_no_temporary_file_remains(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(server_fixture)

    FILE_SERVERS[server_fixture](server, "invoice.pdf", DOCUMENT, request)

    assert server.files() == ["inbox/invoice.pdf"]
    assert (server.root / "inbox" / "invoice.pdf").read_bytes() == DOCUMENT


@pytest.mark.parametrize("server_fixture", FILE_SERVER_PARAMS)
def test_a_server_comes_back_on_the_same_port_after_a_restart(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(server_fixture)
    port = server.port

    server.restart()

    assert server.port == port
    FILE_SERVERS[server_fixture](server, "after-restart.pdf", DOCUMENT, request)
    assert server.files() == ["inbox/after-restart.pdf"]


# --- FTP and FTPS ----------------------------------------------------------------------------


def test_an_ftp_server_refuses_a_wrong_password(ftp_server: FtpServer) -> None:
    client = ftp_connect(ftp_server)

    with pytest.raises(ftplib.error_perm, match="530"):
        client.login(ftp_server.username, "not-the-password")


def test_a_stopped_ftp_server_drops_the_open_connections(ftp_server: FtpServer) -> None:
    client = ftp_login(ftp_server)

    ftp_server.stop()

    with pytest.raises((EOFError, OSError)):
        client.voidcmd("NOOP")
    with pytest.raises(ConnectionRefusedError):
        ftp_connect(ftp_server)


def test_an_ftps_server_refuses_to_log_in_before_tls(ftps_server: FtpServer, tls_files: TlsFiles) -> None:
    client = ftps_connect(ftps_server, tls_files.client_context())

    with pytest.raises(ftplib.error_perm, match="SSL/TLS required"):
        client.login(ftps_server.username, ftps_server.password, secure=False)


def test_an_ftps_server_speaks_tls_on_the_control_connection_and_requires_it_for_data(
    ftps_server: FtpServer, tls_files: TlsFiles
) -> None:
    client = ftps_connect(ftps_server, tls_files.client_context())
    client.login(ftps_server.username, ftps_server.password)  # AUTH TLS first, by itself

    assert isinstance(client.sock, ssl.SSLSocket)
    with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the data channel"):
        client.storbinary("STOR in-clear.pdf", io.BytesIO(DOCUMENT))  # no PROT P: data in clear
    client.prot_p()
    client.storbinary("STOR protected.pdf", io.BytesIO(DOCUMENT))
    client.quit()
    assert ftps_server.files() == ["protected.pdf"]


def test_an_ftps_server_is_refused_by_a_client_that_does_not_trust_its_ca(ftps_server: FtpServer) -> None:
    client = ftps_connect(ftps_server, ssl.create_default_context())

    with pytest.raises(ssl.SSLCertVerificationError):
        client.auth()


def _upload_in_background(
    client: ftplib.FTP, name: str, data: bytes
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            outcome["reply"] = client.storbinary(f"STOR {name}", io.BytesIO(data))
        except (ftplib.Error, EOFError, OSError) as error:
            outcome["error"] = error

    thread = threading.Thread(target=upload)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("server_fixture", ["ftp_server", "ftps_server"])
def test_an_upload_held_mid_transfer_stays_partial_until_released(
    server_fixture: str, request: pytest.FixtureRequest, tls_files: TlsFiles
) -> None:
    server: FtpServer = request.getfixturevalue(server_fixture)
    large = DOCUMENT * 200  # ~3 MiB, more than the sockets' buffers hold
    server.uploads.hold_after(100_000)
    thread, outcome = _upload_in_background(ftp_login(server, tls_files), "large.pdf", large)

    assert server.uploads.wait_until_held(timeout=30)
    held_size = (server.root / "large.pdf").stat().st_size
    assert 100_000 <= held_size < len(large)
    assert thread.is_alive()

    server.uploads.release()
    thread.join(timeout=30)
    assert outcome == {"reply": "226 Transfer complete."}
    assert (server.root / "large.pdf").read_bytes() == large


def test_a_held_upload_ends_when_the_server_stops(ftp_server: FtpServer) -> None:
    ftp_server.uploads.hold_after(100_000)
    thread, outcome = _upload_in_background(ftp_login(ftp_server), "large.pdf", DOCUMENT * 200)
    assert ftp_server.uploads.wait_until_held(timeout=30)

    ftp_server.stop()

    thread.join(timeout=30)
    assert "error" in outcome


@pytest.mark.parametrize("server_fixture", ["ftp_server", "ftps_server"])
def test_a_dropped_upload_fails_the_client_and_leaves_a_partial_file(
    server_fixture: str, request: pytest.FixtureRequest, tls_files: TlsFiles
) -> None:
    server: FtpServer = request.getfixturevalue(server_fixture)
    large = DOCUMENT * 200
    server.uploads.drop_after(500_000)

    thread, outcome = _upload_in_background(ftp_login(server, tls_files), "large.pdf", large)
    thread.join(timeout=30)

    assert server.uploads.dropped.is_set()
    assert "error" in outcome
    assert 500_000 <= (server.root / "large.pdf").stat().st_size < len(large)
    # The drop takes one upload; the next one goes through.
    ftp_upload(server, "large.pdf", large, tls_files)
    assert (server.root / "inbox" / "large.pdf").read_bytes() == large


def test_a_rate_limited_upload_arrives_gradually_and_completely(ftp_server: FtpServer) -> None:
    data = DOCUMENT * 10  # ~160 KiB at 100 kB/s
    ftp_server.uploads.limit_rate(100_000)
    target = ftp_server.root / "slow.pdf"
    sizes_seen: set[int] = set()

    thread, outcome = _upload_in_background(ftp_login(ftp_server), "slow.pdf", data)
    while thread.is_alive():
        if target.exists():
            sizes_seen.add(target.stat().st_size)
        thread.join(timeout=0.01)

    assert outcome == {"reply": "226 Transfer complete."}
    assert target.read_bytes() == data
    assert len({size for size in sizes_seen if 0 < size < len(data)}) >= 3


# --- SFTP ------------------------------------------------------------------------------------


def test_an_sftp_client_sees_the_host_key_fingerprint_the_server_exposes(
    sftp_server: SftpServer, ssh_client_keys: SshClientKeys
) -> None:
    with sftp_connect(sftp_server, key_filename=str(ssh_client_keys.plain.private_key)) as client:
        transport = client.get_transport()
        assert transport is not None
        assert transport.get_remote_server_key().fingerprint == sftp_server.host_key.fingerprint


def test_an_sftp_client_refuses_a_server_whose_host_key_changed(
    sftp_server: SftpServer, ssh_client_keys: SshClientKeys
) -> None:
    known = sftp_server.host_key

    sftp_server.replace_host_key()
    sftp_server.restart()

    assert sftp_server.host_key.fingerprint != known.fingerprint
    with pytest.raises(paramiko.BadHostKeyException):
        sftp_connect(sftp_server, known_key=known, key_filename=str(ssh_client_keys.plain.private_key))


def test_an_encrypted_key_logs_in_with_its_passphrase_only(
    sftp_server: SftpServer, ssh_client_keys: SshClientKeys
) -> None:
    key = ssh_client_keys.encrypted

    with pytest.raises(paramiko.PasswordRequiredException):
        sftp_connect(sftp_server, key_filename=str(key.private_key))
    with sftp_connect(sftp_server, key_filename=str(key.private_key), passphrase=key.passphrase) as client:
        assert client.open_sftp().listdir() == []


def test_an_sftp_server_logs_in_with_the_password_and_refuses_another(
    sftp_server: SftpServer, ssh_client_keys: SshClientKeys
) -> None:
    if sftp_server.password is None:
        service_missing("password logins need a throwaway account, which only root can create")

    with sftp_connect(sftp_server, password=sftp_server.password) as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(DOCUMENT), "by-password.pdf")
    with pytest.raises(paramiko.AuthenticationException):
        sftp_connect(sftp_server, password="not-the-password")
    assert (sftp_server.root / "by-password.pdf").read_bytes() == DOCUMENT


def test_a_stopped_sftp_server_drops_the_open_sessions(
    sftp_server: SftpServer, ssh_client_keys: SshClientKeys
) -> None:
    client = sftp_connect(sftp_server, key_filename=str(ssh_client_keys.plain.private_key))
    sftp = client.open_sftp()

    sftp_server.stop()

    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        sftp.listdir()
    client.close()


def test_closing_the_sftp_server_removes_its_throwaway_account_and_folder(
    ssh_client_keys: SshClientKeys,
) -> None:
    server = SftpServer(client_keys=[ssh_client_keys.plain])
    with server:
        pwd.getpwnam(server.username)  # the account exists while the server runs

    assert not server.root.exists()
    if os.geteuid() == 0:  # another user is logged in as itself: no account was created
        with pytest.raises(KeyError):
            pwd.getpwnam(server.username)


# --- WebDAV and Nextcloud ----------------------------------------------------------------------


def test_a_webdav_server_refuses_a_wrong_password(webdav_server: WebDavServer) -> None:
    answer = requests.put(f"{webdav_server.url}x.pdf", data=DOCUMENT, auth=("deliver", "nope"), timeout=10)

    assert answer.status_code == 401
    assert webdav_server.files() == []


def test_a_nextcloud_server_serves_the_users_files_at_nextclouds_path(nextcloud_server: WebDavServer) -> None:
    auth = (nextcloud_server.username, nextcloud_server.password)

    answer = requests.put(
        f"{nextcloud_server.base_url}/remote.php/dav/files/deliver/scan.pdf",
        data=DOCUMENT,
        auth=auth,
        timeout=10,
    )

    assert answer.status_code == 201
    assert nextcloud_server.files() == ["scan.pdf"]


def test_a_webdavs_server_is_refused_by_a_client_that_does_not_trust_its_ca(
    webdavs_server: WebDavServer,
) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.put(
            f"{webdavs_server.url}x.pdf",
            data=DOCUMENT,
            auth=(webdavs_server.username, webdavs_server.password),
            timeout=10,
        )


# --- S3 ------------------------------------------------------------------------------------


def s3_client(server: S3ServerProcess) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSERVERS00000",
        aws_secret_access_key="test-servers-secret",
    )


@pytest.mark.subprocess  # moto's server in a process of its own
def test_an_s3_server_process_killed_and_started_again_keeps_its_port_buckets_and_objects(tmp_path) -> None:
    with S3ServerProcess(workdir=tmp_path / "moto") as server:
        port = server.port
        client = s3_client(server)
        client.create_bucket(Bucket="archive")
        client.put_object(Bucket="archive", Key="2024/invoice.pdf", Body=DOCUMENT, Metadata={"sha256": "ab"})

        server.restart()  # SIGKILL, then the same port again

        assert server.port == port
        client = s3_client(server)
        head = client.head_object(Bucket="archive", Key="2024/invoice.pdf")
        assert head["Metadata"] == {"sha256": "ab"}
        assert client.get_object(Bucket="archive", Key="2024/invoice.pdf")["Body"].read() == DOCUMENT
        client.put_object(Bucket="archive", Key="after-restart.pdf", Body=b"%PDF-1.7 again")
        listing = client.list_objects_v2(Bucket="archive")["Contents"]
        assert sorted(item["Key"] for item in listing) == ["2024/invoice.pdf", "after-restart.pdf"]


@pytest.mark.subprocess  # moto's server in a process of its own
def test_an_s3_server_process_without_kept_data_comes_back_empty(tmp_path) -> None:
    with S3ServerProcess(workdir=tmp_path / "moto", keep_data=False) as server:
        s3_client(server).create_bucket(Bucket="archive")

        server.restart()

        assert s3_client(server).list_buckets()["Buckets"] == []


# --- SMTP ------------------------------------------------------------------------------------


def _message_with_attachment() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "docuelevate@example.org"
    message["To"] = "archive@example.org"
    message["Subject"] = "invoice.pdf"
    message.set_content("Attached.")
    message.add_attachment(DOCUMENT, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message


def _attachment_of(raw: bytes) -> bytes:
    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    (attachment,) = parsed.iter_attachments()
    content: bytes = attachment.get_content()
    return content


def test_an_smtp_server_keeps_each_message_and_its_attachment_byte_for_byte(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(_message_with_attachment())

    (received,) = smtp_server.wait_for_messages(1)
    assert received.sender == "docuelevate@example.org"
    assert received.recipients == ["archive@example.org"]
    assert received.over_tls is False
    assert _attachment_of(received.data) == DOCUMENT


def test_an_smtp_server_comes_back_on_the_same_port_after_a_restart(smtp_server: SmtpServer) -> None:
    port = smtp_server.port

    smtp_server.restart()

    assert smtp_server.port == port
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(_message_with_attachment())
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_a_starttls_server_refuses_mail_before_tls(smtp_starttls_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_starttls_server.host, smtp_starttls_server.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_message_with_attachment())

    assert refused.value.smtp_code == 530
    assert smtp_starttls_server.messages == []


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_a_starttls_server_takes_mail_after_tls_and_login(
    smtp_starttls_server: SmtpServer, tls_files: TlsFiles, mechanism: str
) -> None:
    server = smtp_starttls_server
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=tls_files.client_context())
        client.ehlo()  # AUTH before EHLO gets 503, which smtplib's auth() takes for success
        client.user, client.password = server.username or "", server.password or ""
        client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        client.send_message(_message_with_attachment())

    (received,) = server.wait_for_messages(1)
    assert received.over_tls is True
    assert received.login == "mailer"
    assert _attachment_of(received.data) == DOCUMENT


def test_a_starttls_server_refuses_mail_after_tls_without_login(
    smtp_starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    server = smtp_starttls_server
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=tls_files.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(server.username or "", "not-the-password")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(_message_with_attachment())

    assert server.messages == []


def test_a_starttls_server_is_refused_by_a_client_that_does_not_trust_its_ca(
    smtp_starttls_server: SmtpServer,
) -> None:
    with (
        smtplib.SMTP(smtp_starttls_server.host, smtp_starttls_server.port, timeout=10) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())
