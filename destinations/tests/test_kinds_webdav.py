"""The WebDAV and Nextcloud kinds against a real WebDAV server (wsgidav on 127.0.0.1)."""

from __future__ import annotations

import ipaddress
import os

import pytest

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    LocalFile,
)
from destinations.kinds.nextcloud import NextcloudKind
from destinations.kinds.webdav import WebDavKind
from destinations.tests.conftest import sha256
from destinations.tests.scripted_webdav import ScriptedWebDavServer
from destinations.tests.servers.base import free_port
from destinations.tests.servers.tls import make_tls_files
from docuelevate.addresses import HostRefused
from docuelevate.errors import InvalidInput

CONTENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def local_file(tmp_path, content: bytes = CONTENT, name: str = "file.pdf") -> LocalFile:
    path = tmp_path / name
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content))


def webdav_kind(server, **options) -> WebDavKind:
    return WebDavKind(url=server.url, username=server.username, password=server.password, **options)


@pytest.fixture
def scripted_server(tmp_path):
    with ScriptedWebDavServer(root=tmp_path / "scripted-root") as server:
        yield server


def test_an_upload_lands_whole_under_its_name_with_no_temporary_file_left(webdav_server, tmp_path):
    with webdav_kind(webdav_server) as kind:
        uploaded = kind.upload(local_file(tmp_path), "archive/2024/Invoice/invoice (1).pdf")
        there = kind.stat("archive/2024/Invoice/invoice (1).pdf")

    assert webdav_server.files() == ["archive/2024/Invoice/invoice (1).pdf"]
    assert (webdav_server.root / "archive/2024/Invoice/invoice (1).pdf").read_bytes() == CONTENT
    assert uploaded.remote_id == f"{webdav_server.url}archive/2024/Invoice/invoice%20%281%29.pdf"
    assert uploaded.remote_version
    assert there is not None
    # The hash is kept beside the file, so the next look before writing is exact.
    assert (there.size, there.sha256, there.version) == (
        len(CONTENT),
        sha256(CONTENT),
        uploaded.remote_version,
    )


def test_an_upload_replaces_the_file_under_its_name(webdav_server, tmp_path):
    with webdav_kind(webdav_server) as kind:
        kind.upload(local_file(tmp_path, b"%PDF-1.7 first"), "doc.pdf")
        kind.upload(local_file(tmp_path, b"%PDF-1.7 second, longer"), "doc.pdf")
        there = kind.stat("doc.pdf")

    assert webdav_server.files() == ["doc.pdf"]
    assert (webdav_server.root / "doc.pdf").read_bytes() == b"%PDF-1.7 second, longer"
    assert there is not None
    assert there.sha256 == sha256(b"%PDF-1.7 second, longer")


def test_nothing_at_a_path_is_none_and_a_folder_there_refuses_the_name(webdav_server):
    (webdav_server.root / "taken.pdf").mkdir()
    with webdav_kind(webdav_server) as kind:
        assert kind.stat("nothing/here.pdf") is None
        with pytest.raises(DeliveryFailed) as error:
            kind.stat("taken.pdf")
    assert type(error.value) is DeliveryFailed
    assert "taken.pdf is a folder" in error.value.message


def test_a_file_put_there_by_someone_else_has_a_size_but_no_hash(webdav_server):
    (webdav_server.root / "theirs.pdf").write_bytes(b"their bytes")
    with webdav_kind(webdav_server) as kind:
        there = kind.stat("theirs.pdf")
    assert there is not None
    assert (there.size, there.sha256) == (len(b"their bytes"), None)


def test_removing_deletes_the_file_and_an_absent_one_is_fine(webdav_server):
    (webdav_server.root / "old.pdf").write_bytes(b"old")
    with webdav_kind(webdav_server) as kind:
        kind.remove("old.pdf")
        kind.remove("never-there.pdf")
    assert webdav_server.files() == []


def test_the_connection_check_makes_the_folder_and_leaves_no_file(webdav_server):
    with webdav_kind(webdav_server) as kind:
        kind.check(folder="scans/inbox")
    assert (webdav_server.root / "scans/inbox").is_dir()
    assert webdav_server.files() == []


def test_a_refused_password_is_a_configuration_error_that_names_no_secret(webdav_server, tmp_path):
    kind = WebDavKind(url=webdav_server.url, username=webdav_server.username, password="wrong-secret-value")
    with kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "refused the user name or password (401)" in error.value.message
    assert "wrong-secret-value" not in error.value.message
    assert "wrong-secret-value" not in repr(kind)
    assert webdav_server.files() == []


def test_a_server_that_does_not_answer_is_a_temporary_failure(tmp_path):
    kind = WebDavKind(url=f"http://127.0.0.1:{free_port()}/dav/", username="u", password="p")
    with kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "could not be reached" in error.value.message


def test_https_with_the_servers_ca_delivers(webdavs_server, tls_files, tmp_path):
    with webdav_kind(webdavs_server, verify=str(tls_files.ca_file)) as kind:
        kind.upload(local_file(tmp_path), "secure.pdf")
    assert (webdavs_server.root / "secure.pdf").read_bytes() == CONTENT


@pytest.mark.parametrize("trust", ["the system's authorities", "another CA"])
def test_https_refuses_a_certificate_no_trusted_authority_signed(webdavs_server, tmp_path, trust):
    verify = True if trust == "the system's authorities" else str(make_tls_files(tmp_path / "other").ca_file)
    with webdav_kind(webdavs_server, verify=verify) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), "secure.pdf")
    assert "certificate is not trusted" in error.value.message
    assert webdavs_server.files() == []


@pytest.mark.parametrize(
    ("status", "failure", "words"),
    [
        (507, DeliveryTemporarilyFailed, "no space left"),
        (503, DeliveryTemporarilyFailed, "for now (503)"),
        (423, DeliveryTemporarilyFailed, "for now (423)"),
        (403, DestinationMisconfigured, "may not write in that folder"),
        (405, DestinationMisconfigured, "does not lead to a WebDAV folder"),
        (413, DeliveryFailed, "too large (413)"),
    ],
)
def test_the_servers_answer_to_an_upload_decides_the_kind_of_failure(
    scripted_server, tmp_path, status, failure, words
):
    scripted_server.answer("PUT", status)
    with webdav_kind(scripted_server) as kind, pytest.raises(DeliveryFailed) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert type(error.value) is failure
    assert words in error.value.message
    assert scripted_server.files() == []


def test_a_redirect_is_not_followed(scripted_server, tmp_path):
    scripted_server.answer("PROPFIND", 301)
    with webdav_kind(scripted_server) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("doc.pdf")
    assert "redirected the request (301)" in error.value.message
    assert len(scripted_server.seen) == 1


def test_a_large_file_arrives_byte_for_byte(webdav_server, tmp_path):
    content = os.urandom(8 * 1024 * 1024)
    with webdav_kind(webdav_server) as kind:
        kind.upload(local_file(tmp_path, content), "big.pdf")
    assert (webdav_server.root / "big.pdf").read_bytes() == content


# --- Nextcloud ----------------------------------------------------------------------------------


def nextcloud_kind(server, url: str | None = None) -> NextcloudKind:
    return NextcloudKind(url=url or server.base_url, username=server.username, password=server.password)


@pytest.mark.parametrize("given", ["the server's address", "the full WebDAV address"])
def test_nextcloud_delivers_into_the_users_files_from_either_address(nextcloud_server, tmp_path, given):
    url = nextcloud_server.base_url if given == "the server's address" else nextcloud_server.url.rstrip("/")
    with nextcloud_kind(nextcloud_server, url) as kind:
        uploaded = kind.upload(local_file(tmp_path), "Documents/scan.pdf")
    assert nextcloud_server.files() == ["Documents/scan.pdf"]
    assert (nextcloud_server.root / "Documents/scan.pdf").read_bytes() == CONTENT
    assert (
        uploaded.remote_id == f"{nextcloud_server.base_url}/remote.php/dav/files/deliver/Documents/scan.pdf"
    )


@pytest.mark.parametrize(
    ("url", "share"),
    [
        ("https://cloud.example.com", "https://cloud.example.com/remote.php/dav/files/ada%40example.com/"),
        (
            "https://example.com/nextcloud/",
            "https://example.com/nextcloud/remote.php/dav/files/ada%40example.com/",
        ),
        (
            "https://cloud.example.com/remote.php/dav/files/ada",
            "https://cloud.example.com/remote.php/dav/files/ada/",
        ),
        ("https://cloud.example.com/remote.php/webdav", "https://cloud.example.com/remote.php/webdav/"),
    ],
)
def test_a_nextcloud_address_becomes_the_users_webdav_folder(url, share):
    assert NextcloudKind.share_url(url, "ada@example.com") == share


def test_nextcloud_is_sent_the_checksum_and_its_checksums_count_as_the_hash(tmp_path):
    scripted_server = ScriptedWebDavServer(root=tmp_path / "nextcloud-root", nextcloud=True)
    with scripted_server, nextcloud_kind(scripted_server) as kind:
        kind.upload(local_file(tmp_path), "scan.pdf")
        (put,) = scripted_server.requests_of("PUT")
        assert put.headers["Oc-Checksum"] == f"SHA256:{sha256(CONTENT)}"

        # Nextcloud's own answer, for a file whose dead properties are gone.
        scripted_server.answer(
            "PROPFIND",
            207,
            b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            b"<d:response><d:href>/scan.pdf</d:href><d:propstat><d:prop>"
            b'<d:getcontentlength>1</d:getcontentlength><d:getetag>"e1"</d:getetag><d:resourcetype/>'
            b"<oc:checksums><oc:checksum>SHA1:da39a3ee5e6b4b0d3255bfef95601890afd80709 SHA256:"
            + sha256(b"x").upper().encode()
            + b" MD5:9dd4e461268c8034f5c8564e155c67a6</oc:checksum></oc:checksums>"
            b"</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>",
        )
        there = kind.stat("scan.pdf")
    assert there is not None
    assert (there.sha256, there.version) == (sha256(b"x"), "e1")


# --- Settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "given", "secrets", "message"),
    [
        (WebDavKind, {"url": ""}, {}, "must be an http:// or https:// address"),
        (WebDavKind, {"url": "ftp://dav.example.com"}, {}, "must be an http:// or https:// address"),
        (WebDavKind, {"url": "https://u:p@dav.example.com"}, {}, "must not carry a user name"),
        (WebDavKind, {"url": "https://dav.example.com/?x=1"}, {}, "must not carry a user name"),
        (WebDavKind, {"url": "https://dav.example.com", "colour": "red"}, {}, "no setting colour"),
        (WebDavKind, {"url": "https://dav.example.com"}, {"password": "pw"}, "needs the user name"),
        (WebDavKind, {"url": "https://dav.example.com", "verify_ssl": "maybe"}, {}, "true or false"),
        (NextcloudKind, {"url": "https://cloud.example.com", "username": "ada"}, {}, "needs a user name and"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(kind, given, secrets, message):
    with pytest.raises(InvalidInput) as error:
        kind.clean(given, secrets, system_wide=True)
    assert message in error.value.message


def test_a_users_own_destination_may_not_point_at_a_private_address(settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = []
    given = {"url": "https://127.0.0.1:8443/dav", "username": "ada"}
    with pytest.raises(InvalidInput) as error:
        WebDavKind.clean(given, {"password": "pw"}, system_wide=False)
    assert "private, loopback or reserved address" in error.value.message

    # Operators' destinations may, and so may users' where the operator allows the network.
    WebDavKind.clean(given, {"password": "pw"}, system_wide=True)
    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    cleaned, secrets = WebDavKind.clean(given, {"password": "pw"}, system_wide=False)
    assert cleaned == {
        "url": "https://127.0.0.1:8443/dav",
        "folder": "",
        "username": "ada",
        "verify_ssl": True,
    }
    assert secrets == {"password": "pw"}


@pytest.mark.parametrize(
    ("url", "port"),
    [("https://127.0.0.1/dav", 443), ("http://127.0.0.1/dav", 80), ("https://127.0.0.1:8443/dav", 8443)],
)
def test_a_users_own_destination_is_looked_up_on_the_port_it_will_be_reached_at(
    settings, address_lookups, url, port
):
    settings.URL_FETCH_ALLOWED_NETWORKS = []

    with pytest.raises(HostRefused):
        WebDavKind.clean({"url": url}, {}, system_wide=False)

    # The same check the connection makes: the scheme's port when the URL names none.
    assert address_lookups == [("127.0.0.1", port)]


def test_a_users_own_destination_sends_its_password_only_over_https():
    given = {"url": "http://dav.example.com/files", "username": "ada"}
    with pytest.raises(InvalidInput) as error:
        WebDavKind.clean(given, {"password": "pw"}, system_wide=False)
    assert "only sent over an encrypted connection" in error.value.message
    # An operator's may (a server on the local network), and so may one without a password.
    WebDavKind.clean(given, {"password": "pw"}, system_wide=True)
    WebDavKind.clean({"url": "http://dav.example.com/files"}, {}, system_wide=False)
