"""The FTP kind against real servers: pyftpdlib, plain and with explicit TLS, on 127.0.0.1."""

from __future__ import annotations

import ftplib
import socket
import threading
import tracemalloc

import pytest

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    LocalFile,
)
from destinations.kinds.ftp import FtpKind, ftp_failure
from destinations.tests.conftest import sha256
from destinations.tests.servers.ftp import FtpServer
from docuelevate.errors import InvalidInput

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def ftp_kind(server: FtpServer, **options) -> FtpKind:
    """A client for ``server`` as a destination would be configured for it: TLS where the
    server speaks it (trusting the test CA), plain text allowed where it does not."""
    settings = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "use_tls": server.tls is not None,
        "allow_plaintext": server.tls is None,
        "ca_bundle": str(server.tls.ca_file) if server.tls is not None else None,
        "timeout": 10,
    }
    return FtpKind(**{**settings, **options})


def local_file(tmp_path, content: bytes = DOCUMENT, name: str = "document.pdf") -> LocalFile:
    path = tmp_path / name
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content))


@pytest.fixture(params=["ftp_server", "ftps_server"])
def server(request: pytest.FixtureRequest) -> FtpServer:
    return request.getfixturevalue(request.param)


def test_an_upload_lands_byte_for_byte_in_folders_it_makes_and_leaves_no_temporary_file(server, tmp_path):
    with ftp_kind(server) as kind:
        uploaded = kind.upload(local_file(tmp_path), "archive/2024/Invoice/invoice.pdf")

    assert server.files() == ["archive/2024/Invoice/invoice.pdf"]
    assert (server.root / "archive/2024/Invoice/invoice.pdf").read_bytes() == DOCUMENT
    assert uploaded.path == "archive/2024/Invoice/invoice.pdf"
    assert uploaded.remote_id == f"ftp://127.0.0.1:{server.port}/archive/2024/Invoice/invoice.pdf"


def test_ftps_encrypts_the_control_connection_and_the_data_connections(ftps_server, tmp_path):
    # This server refuses to sign in, or to take data, over a connection without TLS.
    with ftp_kind(ftps_server) as kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")
        assert kind.secured is True

    assert (ftps_server.root / "invoice.pdf").read_bytes() == DOCUMENT


def test_the_size_is_told_and_the_hash_read_back_for_a_file_that_is_there(server, tmp_path):
    (server.root / "scans").mkdir()
    (server.root / "scans/old.pdf").write_bytes(DOCUMENT)

    with ftp_kind(server) as kind:
        there = kind.stat("scans/old.pdf")
        assert kind.stat("scans/missing.pdf") is None
        assert kind.content_sha256("scans/old.pdf") == sha256(DOCUMENT)
        assert kind.content_sha256("scans/missing.pdf") is None

    assert there is not None
    assert (there.size, there.sha256) == (len(DOCUMENT), None)


@pytest.mark.parametrize("rename_replaces", [True, False], ids=["rename-replaces", "rename-refuses"])
def test_an_upload_replaces_the_file_under_its_name(rename_replaces, tmp_path):
    with FtpServer(root=tmp_path / "root", rename_replaces=rename_replaces) as server:
        (server.root / "invoice.pdf").write_bytes(b"the earlier version")
        with ftp_kind(server) as kind:
            kind.upload(local_file(tmp_path), "invoice.pdf")

        assert server.files() == ["invoice.pdf"]
        assert (server.root / "invoice.pdf").read_bytes() == DOCUMENT


def test_a_folder_from_the_root_is_counted_from_the_servers_root(ftp_server, tmp_path):
    with ftp_kind(ftp_server, folder_from_root=True) as kind:
        uploaded = kind.upload(local_file(tmp_path), "scans/invoice.pdf")

    assert ftp_server.files() == ["scans/invoice.pdf"]
    assert uploaded.remote_id.endswith(f":{ftp_server.port}//scans/invoice.pdf")


def test_an_upload_cut_off_leaves_nothing_under_its_name_and_the_next_one_leaves_nothing_behind(
    server, tmp_path
):
    large = local_file(tmp_path, DOCUMENT * 200)  # ~3 MiB
    server.uploads.drop_after(500_000)

    with ftp_kind(server) as kind, pytest.raises(DeliveryTemporarilyFailed):
        kind.upload(large, "archive/invoice.pdf")

    assert server.uploads.dropped.is_set()
    (leftover,) = server.files()
    assert leftover.startswith("archive/.invoice.pdf.")
    assert leftover.endswith(".part")
    with ftp_kind(server) as kind:
        kind.upload(large, "archive/invoice.pdf")
    assert server.files() == ["archive/invoice.pdf"]
    assert (server.root / "archive/invoice.pdf").read_bytes() == large.path.read_bytes()


def test_a_server_without_tls_is_refused_and_plain_text_must_be_chosen_in_so_many_words(ftp_server, tmp_path):
    # Allowing plain text is no fallback while TLS is on: someone in between could refuse it.
    with (
        ftp_kind(ftp_server, use_tls=True, allow_plaintext=True) as kind,
        pytest.raises(DestinationMisconfigured) as refused,
    ):
        kind.check(folder="")
    assert "does not offer TLS (AUTH TLS refused with 5" in refused.value.message
    assert "FTP_USE_TLS=false, FTP_ALLOW_PLAINTEXT=true" in refused.value.message

    with ftp_kind(ftp_server, use_tls=False, allow_plaintext=True) as kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")
        assert kind.secured is False
    assert ftp_server.files() == ["invoice.pdf"]


def test_a_certificate_that_is_not_trusted_ends_the_connection_even_where_plain_text_is_allowed(
    ftps_server, tmp_path
):
    kind = ftp_kind(ftps_server, ca_bundle=None, allow_plaintext=True)  # the system's CAs only

    with kind, pytest.raises(DestinationMisconfigured) as refused:
        kind.upload(local_file(tmp_path), "invoice.pdf")

    assert "certificate this server does not trust" in refused.value.message
    assert "FTP_CA_BUNDLE" in refused.value.message
    assert ftps_server.files() == []


def test_plain_text_to_a_server_that_requires_tls_is_refused_at_sign_in(ftps_server, tmp_path):
    kind = ftp_kind(ftps_server, use_tls=False, allow_plaintext=True)

    with kind, pytest.raises(DestinationMisconfigured) as refused:
        kind.upload(local_file(tmp_path), "invoice.pdf")

    assert "whether the server requires TLS" in refused.value.message


def test_a_wrong_password_is_a_configuration_error_that_names_no_secret(server, tmp_path):
    kind = ftp_kind(server, password="not-the-password-4711")

    with kind, pytest.raises(DestinationMisconfigured) as refused:
        kind.stat("invoice.pdf")

    assert f"refused to sign in {server.username} (530)" in refused.value.message
    assert "not-the-password-4711" not in refused.value.message
    assert "not-the-password-4711" not in repr(kind)


def test_the_check_writes_a_file_and_removes_it(server):
    with ftp_kind(server) as kind:
        kind.check(folder="archive/checks")

    assert server.files() == []
    assert (server.root / "archive/checks").is_dir()


def test_an_account_that_may_only_read_fails_the_check_as_misconfigured(tmp_path):
    with FtpServer(root=tmp_path / "root", permissions="elr") as server:
        with ftp_kind(server) as kind, pytest.raises(DestinationMisconfigured) as refused:
            kind.check(folder="")

        assert "refused to write a test file (550)" in refused.value.message
        assert server.files() == []


def test_removing_deletes_the_file_and_an_absent_one_is_fine(server):
    (server.root / "old.pdf").write_bytes(DOCUMENT)

    with ftp_kind(server) as kind:
        kind.remove("old.pdf")
        kind.remove("never-there.pdf")

    assert server.files() == []


def test_a_server_that_does_not_answer_is_a_temporary_failure():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    kind = FtpKind(host="127.0.0.1", port=port, username="deliver", password="pw", timeout=5)

    with kind, pytest.raises(DeliveryTemporarilyFailed) as failed:
        kind.stat("invoice.pdf")

    assert "could not be reached" in failed.value.message


def test_a_server_that_stops_during_an_upload_is_a_temporary_failure(server, tmp_path):
    large = local_file(tmp_path, DOCUMENT * 200)
    server.uploads.hold_after(100_000)
    threading.Thread(target=lambda: server.uploads.wait_until_held() and server.stop()).start()

    with ftp_kind(server) as kind, pytest.raises(DeliveryTemporarilyFailed):
        kind.upload(large, "invoice.pdf")

    assert "invoice.pdf" not in server.files()


@pytest.mark.parametrize(
    ("error", "reply", "failure", "words"),
    [
        (ftplib.error_temp, "421 Too many connections.", DeliveryTemporarilyFailed, "for now (421)"),
        (ftplib.error_temp, "451 Local error in processing.", DeliveryTemporarilyFailed, "for now (451)"),
        (ftplib.error_perm, "530 Not logged in.", DestinationMisconfigured, "(530)"),
        (ftplib.error_perm, "550 Permission denied.", DestinationMisconfigured, "may not write there"),
        (ftplib.error_perm, "552 Quota exceeded.", DeliveryTemporarilyFailed, "no room"),
        (ftplib.error_perm, "553 File name not allowed.", DeliveryFailed, "refused to write x.pdf (553)"),
        (ftplib.error_perm, "501 Syntax error.", DeliveryFailed, "(501)"),
        (ftplib.error_reply, "120 Service ready in a while.", DeliveryTemporarilyFailed, "unexpected answer"),
        (ConnectionResetError, "reset", DeliveryTemporarilyFailed, "dropped the connection"),
        (EOFError, "", DeliveryTemporarilyFailed, "dropped the connection"),
        (TimeoutError, "timed out", DeliveryTemporarilyFailed, "did not answer within 60 s"),
    ],
)
def test_the_reply_code_and_the_error_class_decide_the_failure(error, reply, failure, words):
    # ftplib raises its errors with the server's whole reply line, code first.
    translated = ftp_failure(error(reply), server="ftp.example.org:21", doing="write x.pdf", timeout=60)

    assert type(translated) is failure
    assert words in translated.message


def test_a_large_file_streams_with_bounded_memory(ftp_server, tmp_path):
    size = 200 * 1024**2
    path = tmp_path / "large.pdf"
    with path.open("wb") as handle:  # sparse: costs no disk until the server writes it
        handle.truncate(size)
    content_hash = sha256(b"\0" * size)
    large = LocalFile(path=path, size=size, sha256=content_hash)

    tracemalloc.start()
    try:
        with ftp_kind(ftp_server) as kind:
            kind.upload(large, "large.pdf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ftp_server.files() == ["large.pdf"]
    assert (ftp_server.root / "large.pdf").stat().st_size == size
    assert peak < 16 * 1024**2  # the client's blocks and the server's buffers, not the file


@pytest.mark.parametrize(
    ("given", "secrets", "message"),
    [
        ({"host": "", "username": "u"}, {}, "host name is missing"),
        ({"host": "ftp://files.example.org", "username": "u"}, {}, "without a scheme"),
        ({"host": "files example org", "username": "u"}, {}, "is not a host name"),
        ({"host": "files.example.org", "username": "u", "port": 70000}, {}, "port must be a number"),
        ({"host": "files.example.org"}, {}, "username is required"),
        ({"host": "files.example.org", "username": "u\r\nDELE x"}, {}, "line break"),
        ({"host": "files.example.org", "username": "u", "use_tls": False}, {}, "allow plain text"),
        ({"host": "files.example.org", "username": "u", "use_tls": "no"}, {}, "must be true or false"),
        ({"host": "files.example.org", "username": "u", "colour": "red"}, {}, "no setting colour"),
        ({"host": "files.example.org", "username": "u"}, {"password": "a\nb"}, "line break"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(given, secrets, message):
    with pytest.raises(InvalidInput) as refused:
        FtpKind.clean(given, secrets, system_wide=False)

    assert message in refused.value.message


def test_clean_settings_default_to_tls_and_a_folder_from_the_root_is_kept_as_such():
    settings, secrets = FtpKind.clean(
        {"host": "Files.Example.org", "username": "scanner", "folder": "/srv/scans"},
        {"password": "secret-pw"},
        system_wide=True,
    )

    assert settings == {
        "host": "Files.Example.org",
        "port": 21,
        "username": "scanner",
        "folder": "/srv/scans",
        "folder_from_root": True,
        "use_tls": True,
        "allow_plaintext": False,
    }
    assert secrets == {"password": "secret-pw"}
