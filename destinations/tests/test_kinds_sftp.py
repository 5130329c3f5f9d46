"""The SFTP kind against a real server: Debian's OpenSSH sshd on 127.0.0.1, throwaway keys."""

from __future__ import annotations

import socket
import tracemalloc

import pytest

from conftest import service_missing
from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, LocalFile
from destinations.kinds.sftp import SftpKind
from destinations.tests.conftest import sha256
from destinations.tests.servers.sftp import SftpServer, SshClientKeys, make_ssh_key
from docuelevate.errors import InvalidInput

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def sftp_kind(server: SftpServer, keys: SshClientKeys, **options) -> SftpKind:
    """A client for ``server`` signing in with the plain client key and knowing the
    server's host key by its fingerprint, unless ``options`` say otherwise."""
    settings = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "private_key": keys.plain.private_key.read_text(),
        "host_key": server.host_key.fingerprint,
        "known_hosts_files": (),
        "timeout": 10,
    }
    return SftpKind(**{**settings, **options})


def local_file(tmp_path, content: bytes = DOCUMENT, name: str = "document.pdf") -> LocalFile:
    path = tmp_path / name
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content))


def test_an_upload_lands_byte_for_byte_in_folders_it_makes_and_leaves_no_temporary_file(
    sftp_server, ssh_client_keys, tmp_path
):
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        uploaded = kind.upload(local_file(tmp_path), "archive/2024/Invoice/invoice.pdf")

    assert sftp_server.files() == ["archive/2024/Invoice/invoice.pdf"]
    assert (sftp_server.root / "archive/2024/Invoice/invoice.pdf").read_bytes() == DOCUMENT
    assert uploaded.remote_id == f"sftp://127.0.0.1:{sftp_server.port}/~/archive/2024/Invoice/invoice.pdf"


def test_an_upload_replaces_the_file_under_its_name(sftp_server, ssh_client_keys, tmp_path):
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        kind.upload(local_file(tmp_path, b"the earlier version"), "invoice.pdf")
        kind.upload(local_file(tmp_path), "invoice.pdf")

    assert sftp_server.files() == ["invoice.pdf"]
    assert (sftp_server.root / "invoice.pdf").read_bytes() == DOCUMENT


def test_a_folder_from_the_root_is_counted_from_the_servers_root(sftp_server, ssh_client_keys, tmp_path):
    # The session starts in the root folder; "/" is the machine's root, seen from outside.
    folder = sftp_server.root.relative_to("/").as_posix()

    with sftp_kind(sftp_server, ssh_client_keys, folder_from_root=True) as kind:
        kind.upload(local_file(tmp_path), f"{folder}/scans/invoice.pdf")

    assert sftp_server.files() == ["scans/invoice.pdf"]


def test_the_size_is_told_and_the_hash_read_back_for_a_file_that_is_there(
    sftp_server, ssh_client_keys, tmp_path
):
    content = DOCUMENT * 100  # several read requests
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        kind.upload(local_file(tmp_path, content), "scans/old.pdf")
        there = kind.stat("scans/old.pdf")
        assert kind.stat("scans/missing.pdf") is None
        assert kind.content_sha256("scans/old.pdf") == sha256(content)
        assert kind.content_sha256("scans/missing.pdf") is None

    assert there is not None
    assert (there.size, there.sha256) == (len(content), None)


def test_an_encrypted_key_signs_in_with_its_passphrase(sftp_server, ssh_client_keys, tmp_path):
    key = ssh_client_keys.encrypted
    kind = sftp_kind(
        sftp_server,
        ssh_client_keys,
        private_key=key.private_key.read_text(),
        private_key_passphrase=key.passphrase,
    )

    with kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")

    assert sftp_server.files() == ["invoice.pdf"]


def test_a_password_signs_in_and_a_wrong_one_is_a_configuration_error_naming_no_secret(
    sftp_server, ssh_client_keys, tmp_path
):
    if sftp_server.password is None:
        service_missing("password logins need a throwaway account, which only root can create")
    with sftp_kind(sftp_server, ssh_client_keys, private_key="", password=sftp_server.password) as kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")
    assert sftp_server.files() == ["invoice.pdf"]

    kind = sftp_kind(sftp_server, ssh_client_keys, private_key="", password="not-the-password-4711")
    with kind, pytest.raises(DestinationMisconfigured) as refused:
        kind.check(folder="")

    assert f"refused to sign in {sftp_server.username}" in refused.value.message
    assert "not-the-password-4711" not in refused.value.message
    assert "not-the-password-4711" not in repr(kind)


def test_a_key_the_server_does_not_know_is_a_configuration_error(sftp_server, ssh_client_keys, tmp_path):
    stranger = make_ssh_key(tmp_path / "stranger")

    with (
        sftp_kind(sftp_server, ssh_client_keys, private_key=stranger.private_key.read_text()) as kind,
        pytest.raises(DestinationMisconfigured) as refused,
    ):
        kind.stat("invoice.pdf")

    assert "refused to sign in" in refused.value.message


@pytest.mark.parametrize("given", ["fingerprint", "known_hosts line", "public key", "several"])
def test_the_host_key_may_be_given_as_a_fingerprint_or_a_public_key(
    given, sftp_server, ssh_client_keys, tmp_path
):
    other = make_ssh_key(tmp_path / "other-host")
    host_key = {
        "fingerprint": sftp_server.host_key.fingerprint,
        "known_hosts line": sftp_server.known_hosts_line,
        "public key": sftp_server.host_key.public_line,
        "several": f"{other.fingerprint}\n{sftp_server.known_hosts_line}",
    }[given]

    with sftp_kind(sftp_server, ssh_client_keys, host_key=host_key) as kind:
        kind.check(folder="")


def test_a_changed_host_key_ends_the_connection_before_signing_in_and_names_the_new_one(
    sftp_server, ssh_client_keys
):
    known = sftp_server.host_key.fingerprint
    sftp_server.replace_host_key()
    sftp_server.restart()

    with (
        sftp_kind(sftp_server, ssh_client_keys, host_key=known) as kind,
        pytest.raises(DestinationMisconfigured) as refused,
    ):
        kind.check(folder="")

    assert f"presented the host key ssh-ed25519 {sftp_server.host_key.fingerprint}" in refused.value.message
    assert "not the one configured" in refused.value.message
    assert sftp_server.files() == []


def test_without_a_host_key_the_known_hosts_files_decide(sftp_server, ssh_client_keys, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{sftp_server.known_hosts_line}\n")

    with sftp_kind(sftp_server, ssh_client_keys, host_key="", known_hosts_files=[known_hosts]) as kind:
        kind.check(folder="")

    with (
        sftp_kind(sftp_server, ssh_client_keys, host_key="", known_hosts_files=[tmp_path / "none"]) as kind,
        pytest.raises(DestinationMisconfigured) as refused,
    ):
        kind.check(folder="")
    assert f"presented the host key ssh-ed25519 {sftp_server.host_key.fingerprint}" in refused.value.message
    assert "no host key is configured" in refused.value.message


def test_with_verification_off_any_host_key_is_taken(sftp_server, ssh_client_keys, tmp_path):
    with sftp_kind(sftp_server, ssh_client_keys, host_key="", verify_host_key=False) as kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")

    assert sftp_server.files() == ["invoice.pdf"]


def test_the_check_writes_a_file_and_removes_it(sftp_server, ssh_client_keys):
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        kind.check(folder="archive/checks")

    assert sftp_server.files() == []
    assert (sftp_server.root / "archive/checks").is_dir()


def test_a_folder_the_account_may_not_write_fails_the_check_as_misconfigured(sftp_server, ssh_client_keys):
    locked = sftp_server.root / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)

    with sftp_kind(sftp_server, ssh_client_keys) as kind, pytest.raises(DestinationMisconfigured) as refused:
        kind.check(folder="locked")

    assert "may not write there" in refused.value.message


def test_removing_deletes_the_file_and_an_absent_one_is_fine(sftp_server, ssh_client_keys, tmp_path):
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        kind.upload(local_file(tmp_path), "old.pdf")
        kind.remove("old.pdf")
        kind.remove("never-there.pdf")

    assert sftp_server.files() == []


def test_a_server_that_does_not_answer_is_a_temporary_failure(sftp_server, ssh_client_keys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there

    with (
        sftp_kind(sftp_server, ssh_client_keys, port=port) as kind,
        pytest.raises(DeliveryTemporarilyFailed) as failed,
    ):
        kind.stat("invoice.pdf")

    assert "could not be reached" in failed.value.message


def test_a_server_that_went_away_is_a_temporary_failure_and_back_again_it_takes_the_file(
    sftp_server, ssh_client_keys, tmp_path
):
    sftp_server.stop()
    with sftp_kind(sftp_server, ssh_client_keys) as kind, pytest.raises(DeliveryTemporarilyFailed):
        kind.upload(local_file(tmp_path), "invoice.pdf")

    sftp_server.start()
    with sftp_kind(sftp_server, ssh_client_keys) as kind:
        kind.upload(local_file(tmp_path), "invoice.pdf")
    assert sftp_server.files() == ["invoice.pdf"]


def test_a_large_file_streams_with_bounded_memory(sftp_server, ssh_client_keys, tmp_path):
    size = 64 * 1024**2
    path = tmp_path / "large.pdf"
    with path.open("wb") as handle:  # sparse: costs no disk until the server writes it
        handle.truncate(size)
    large = LocalFile(path=path, size=size, sha256=sha256(b"\0" * size))

    tracemalloc.start()
    try:
        with sftp_kind(sftp_server, ssh_client_keys) as kind:
            kind.upload(large, "large.pdf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (sftp_server.root / "large.pdf").stat().st_size == size
    assert peak < 16 * 1024**2  # paramiko's windows and blocks, not the file


@pytest.mark.parametrize(
    ("given", "secrets", "system_wide", "message"),
    [
        ({"host": "h.example.org", "username": "u"}, {}, True, "needs a private key or a password"),
        ({"host": "h.example.org"}, {"password": "pw"}, True, "username is required"),
        ({"host": "sftp://h.example.org", "username": "u"}, {"password": "pw"}, True, "without a scheme"),
        ({"host": "h.example.org", "username": "u", "port": 0}, {"password": "pw"}, True, "port must be"),
        (
            {"host": "h.example.org", "username": "u", "verify_host_key": False},
            {"password": "pw"},
            False,
            "Host key verification stays on",
        ),
        (
            {"host": "h.example.org", "username": "u", "host_key": "SHA256:short"},
            {"password": "pw"},
            True,
            "must be a fingerprint",
        ),
        (
            {"host": "h.example.org", "username": "u", "host_key": "ssh-ed25519 AAAAnotakey"},
            {"password": "pw"},
            True,
            "not a valid public key",
        ),
        ({"host": "h.example.org", "username": "u"}, {"private_key": "not a key"}, True, "cannot be read"),
        (
            {"host": "h.example.org", "username": "u"},
            {"password": "pw", "token": "x"},
            True,
            "no setting token",
        ),
        (
            {"host": "h.example.org", "username": "u"},
            {"password": "pw", "private_key_passphrase": "pp"},
            True,
            "no private key",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(given, secrets, system_wide, message):
    with pytest.raises(InvalidInput) as refused:
        SftpKind.clean(given, secrets, system_wide=system_wide)

    assert message in refused.value.message


def test_an_encrypted_key_is_refused_without_its_passphrase_or_with_a_wrong_one(ssh_client_keys):
    key = ssh_client_keys.encrypted.private_key.read_text()
    given = {"host": "h.example.org", "username": "u"}

    with pytest.raises(InvalidInput, match="encrypted: give its passphrase"):
        SftpKind.clean(given, {"private_key": key}, system_wide=True)
    with pytest.raises(InvalidInput, match="cannot be read"):
        SftpKind.clean(given, {"private_key": key, "private_key_passphrase": "wrong"}, system_wide=True)
    _, secrets = SftpKind.clean(
        given,
        {"private_key": key, "private_key_passphrase": ssh_client_keys.encrypted.passphrase},
        system_wide=True,
    )
    assert set(secrets) == {"private_key", "private_key_passphrase"}


def test_clean_settings_keep_only_the_host_keys_and_default_to_verifying(sftp_server):
    settings, secrets = SftpKind.clean(
        {
            "host": "h.example.org",
            "username": "scanner",
            "folder": "/srv/scans",
            "host_key": f"# the office NAS\n{sftp_server.known_hosts_line} nas@office",
        },
        {"password": "secret-pw"},
        system_wide=False,
    )

    assert settings == {
        "host": "h.example.org",
        "port": 22,
        "username": "scanner",
        "folder": "/srv/scans",
        "folder_from_root": True,
        "host_key": sftp_server.host_key.public_line.rsplit(" ", 1)[0],
        "verify_host_key": True,
    }
    assert secrets == {"password": "secret-pw"}
