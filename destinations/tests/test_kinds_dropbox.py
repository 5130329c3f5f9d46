"""The Dropbox kind, through Dropbox's SDK, against recorded exchanges of Dropbox's API."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import pytest

from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, LocalFile, RemoteFile
from destinations.kinds.dropbox import DropboxKind, dropbox_content_hash
from destinations.kinds.transport import ProviderSession
from destinations.tests.conftest import RECORDINGS, Sleeps, routes_to, sha256
from documents.tests.http_replay import assert_matches_recording

SMALL = b"%PDF-1.7 an invoice delivered to Dropbox\n%%EOF\n"
LARGE = b"%PDF-1.7 chunked upload\n"
REFRESH_TOKEN = "dropbox-refresh-token-0123456789"
HOSTS = ("https://api.dropboxapi.com", "https://content.dropboxapi.com")


def dropbox_kind(replay, **options) -> DropboxKind:
    return DropboxKind(
        app_key="docuelevate-app-key",
        app_secret="docuelevate-app-secret",
        refresh_token=REFRESH_TOKEN,
        session=ProviderSession(routes_to(replay, *HOSTS)),
        **options,
    )


def local_file(tmp_path, content: bytes) -> LocalFile:
    path = tmp_path / "file.pdf"
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content))


def assert_played_as_recorded(replay, recording) -> None:
    assert len(replay.received) == len(recording["exchanges"])
    for received, exchange in zip(replay.received, recording["exchanges"], strict=True):
        assert_matches_recording(received, exchange["request"])


def test_a_small_file_goes_up_in_one_request_after_the_token_is_refreshed(replay, tmp_path):
    recording = replay.play("dropbox_upload_small", RECORDINGS)
    with dropbox_kind(replay) as kind:
        uploaded = kind.upload(local_file(tmp_path, SMALL), "Archive/2024/invoice.pdf")
    assert_played_as_recorded(replay, recording)
    token_request = parse_qs(replay.received[0].body.decode())
    assert token_request["grant_type"] == ["refresh_token"]
    assert token_request["refresh_token"] == [REFRESH_TOKEN]
    assert replay.received[1].body == SMALL
    assert uploaded.path == "Archive/2024/invoice.pdf"
    assert (uploaded.remote_id, uploaded.remote_version) == (
        "id:a4ayc_80_OEAAAAAAAAAXw",
        "016a1b2c3d4e5f600000002b3c4d5e0",
    )


def test_a_large_file_goes_up_in_an_upload_session_committed_by_its_last_chunk(replay, tmp_path):
    recording = replay.play("dropbox_upload_session", RECORDINGS)
    with dropbox_kind(replay, chunk_size=8) as kind:
        uploaded = kind.upload(local_file(tmp_path, LARGE), "Archive/big.pdf")
    assert_played_as_recorded(replay, recording)
    # Start, append, finish: each chunk once, in order, and only the finish names the file.
    assert b"".join(request.body for request in replay.received[1:]) == LARGE
    assert [
        json.loads(request.headers["dropbox-api-arg"]).get("commit") for request in replay.received[1:3]
    ] == [
        None,
        None,
    ]
    assert uploaded.remote_id == "id:a4ayc_80_OEAAAAAAAAAXw"


def test_a_file_with_the_same_content_hash_is_recognised_without_a_download(replay, tmp_path):
    replay.play("dropbox_already_there", RECORDINGS)
    with dropbox_kind(replay) as kind:
        there = kind.stat("Archive/2024/invoice.pdf")
        assert there is not None
        assert kind.same_content(there, local_file(tmp_path, SMALL))
        assert not kind.same_content(there, local_file(tmp_path, SMALL + b" "))
    assert there.sha256 is None  # Dropbox keeps no SHA-256; its own hash decides
    assert there.version == "016a1b2c3d4e5f600000002b3c4d5e0"


def test_nothing_at_a_path_is_none_and_removing_it_is_fine(replay):
    replay.play("dropbox_nothing_there", RECORDINGS)
    with dropbox_kind(replay) as kind:
        assert kind.stat("Archive/none.pdf") is None
        kind.remove("Archive/none.pdf")
    assert len(replay.received) == 3


def test_a_refused_access_token_is_a_configuration_error(replay):
    replay.play("dropbox_refused", RECORDINGS)
    with dropbox_kind(replay) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("Archive/2024/invoice.pdf")
    assert "connect the destination again" in error.value.message
    assert REFRESH_TOKEN not in error.value.message


def test_a_refused_refresh_token_is_a_configuration_error(replay):
    replay.play("dropbox_refresh_refused", RECORDINGS)
    with dropbox_kind(replay) as kind, pytest.raises(DestinationMisconfigured):
        kind.stat("Archive/2024/invoice.pdf")


def test_throttling_is_waited_out_as_dropbox_asks_and_the_upload_goes_on(replay, tmp_path):
    recording = replay.play("dropbox_throttled", RECORDINGS)
    sleeps = Sleeps()
    with dropbox_kind(replay, sleep=sleeps) as kind:
        kind.upload(local_file(tmp_path, SMALL), "Archive/2024/invoice.pdf")
    assert sleeps == [1.0]
    assert_played_as_recorded(replay, recording)


def test_a_full_dropbox_is_a_temporary_failure(replay, tmp_path):
    replay.play("dropbox_full", RECORDINGS)
    with dropbox_kind(replay) as kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path, SMALL), "Archive/2024/invoice.pdf")
    assert "insufficient_space" in error.value.message


def test_an_unreachable_dropbox_is_a_temporary_failure(tmp_path):
    session = ProviderSession({origin: "http://127.0.0.1:9" for origin in HOSTS}, timeout=5)
    kind = DropboxKind(app_key="k", app_secret="s", refresh_token=REFRESH_TOKEN, session=session)
    with kind, pytest.raises(DeliveryTemporarilyFailed):
        kind.stat("x.pdf")


def test_the_check_writes_a_test_file_and_removes_it(replay):
    replay.play("dropbox_check", RECORDINGS)
    with dropbox_kind(replay) as kind:
        kind.check(folder="Archive")
    written, removed = replay.received[1], replay.received[2]
    probe = json.loads(written.headers["dropbox-api-arg"])["path"]
    assert probe.startswith("/Archive/.docuelevate-check-")
    assert json.loads(removed.body)["path"] == probe


def test_a_destination_that_is_not_connected_yet_says_so_without_asking_dropbox(replay):
    kind = DropboxKind(
        app_key="k", app_secret="s", refresh_token="", session=ProviderSession(routes_to(replay, *HOSTS))
    )
    with kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("x.pdf")
    assert "not connected" in error.value.message
    assert replay.received == []


def test_the_content_hash_is_dropboxs_over_4_mib_blocks(tmp_path):
    # Dropbox's documented example: the hash of the hashes of each 4 MiB block.
    content = os.urandom(4 * 1024**2 + 10)
    path = tmp_path / "f"
    path.write_bytes(content)
    import hashlib

    blocks = [content[: 4 * 1024**2], content[4 * 1024**2 :]]
    expected = hashlib.sha256(b"".join(hashlib.sha256(block).digest() for block in blocks)).hexdigest()
    assert dropbox_content_hash(path) == expected
    there = RemoteFile(path="f", size=len(content), sha256=None, content_hash=expected)
    kind = DropboxKind(app_key="k", app_secret="s", refresh_token="t")
    assert kind.same_content(there, LocalFile(path=path, size=len(content), sha256=sha256(content)))
