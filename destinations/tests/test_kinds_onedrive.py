"""The OneDrive kind: MSAL and Microsoft Graph against recorded exchanges of Microsoft's
sign-in and Graph APIs."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import pytest

from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, LocalFile
from destinations.kinds.oauth import token_fingerprint
from destinations.kinds.onedrive import OneDriveKind, quickxorhash
from destinations.kinds.transport import ProviderSession
from destinations.tests.conftest import RECORDINGS, Sleeps, routes_to, sha256
from documents.tests.http_replay import assert_matches_recording

SMALL = b"%PDF-1.7 an invoice delivered to OneDrive\n%%EOF\n"
LARGE = bytes(range(256)) * 2800  # 700 KiB: chunks of 320 KiB, 320 KiB and 60 KiB
GIVEN_TOKEN = "M.C5xx_BAY.0.U.-given-refresh-token"
ORIGINS = (
    "https://login.microsoftonline.com",
    "https://graph.microsoft.com",
    "https://contoso-my.sharepoint.com",
)


def onedrive_kind(replay, **options) -> OneDriveKind:
    return OneDriveKind(
        client_id="6731de76-14a6-49ae-97bc-6eba6914391e",
        client_secret="docuelevate-client-secret",
        tenant="common",
        refresh_token=GIVEN_TOKEN,
        session=ProviderSession(routes_to(replay, *ORIGINS)),
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


def test_a_small_file_goes_up_in_one_request_and_the_rotated_refresh_token_is_handed_on(replay, tmp_path):
    recording = replay.play("onedrive_upload_small", RECORDINGS)
    renewed: list[Mapping[str, Any]] = []
    with onedrive_kind(replay) as kind:
        kind.on_secrets_renewed = renewed.append
        uploaded = kind.upload(local_file(tmp_path, SMALL), "Archive/invoice.pdf")
    assert_played_as_recorded(replay, recording)
    token_request = parse_qs(replay.received[1].body.decode())
    assert token_request["grant_type"] == ["refresh_token"]
    assert token_request["refresh_token"] == [GIVEN_TOKEN]
    assert "Files.ReadWrite" in token_request["scope"][0].split()
    put = replay.received[3]
    assert put.body == SMALL
    assert put.headers["authorization"] == "Bearer EwBIA8l6BAAU-recorded-access-token-1"
    assert uploaded.remote_id == "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K"
    assert uploaded.remote_version == '"c:{3ABFE42C-0E39-4D89-A2B3-7C5F4E2A1D90},2"'
    # Microsoft replaced the refresh token: the new one supersedes the given one.
    assert renewed == [
        {
            "renewed_refresh_token": "M.C5xx_BAY.0.U.-rotated-refresh-token-1",
            "renewed_from": token_fingerprint(GIVEN_TOKEN),
        }
    ]


def test_a_large_file_goes_up_in_an_upload_session_without_the_token(replay, tmp_path):
    recording = replay.play("onedrive_upload_session", RECORDINGS)
    with onedrive_kind(replay, chunk_size=320 * 1024, simple_upload_limit=320 * 1024) as kind:
        uploaded = kind.upload(local_file(tmp_path, LARGE), "Archive/big.pdf")
    assert_played_as_recorded(replay, recording)
    made = replay.received[3]
    assert made.json() == {"name": "Archive", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}
    assert replay.received[4].json() == {"item": {"@microsoft.graph.conflictBehavior": "replace"}}
    chunks = [
        request for request in replay.received if request.headers.get("host") == "contoso-my.sharepoint.com"
    ]
    assert b"".join(chunk.body for chunk in chunks) == LARGE
    # The upload URL carries its own authorization; the access token is not sent there.
    assert all("authorization" not in chunk.headers for chunk in chunks)
    assert uploaded.remote_id == "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K"


def test_a_file_with_the_documents_quickxorhash_is_recognised_without_a_download(replay, tmp_path):
    replay.play("onedrive_already_there", RECORDINGS)
    with onedrive_kind(replay) as kind:
        there = kind.stat("Archive/invoice.pdf")
        assert there is not None
        assert there.sha256 is None  # a work account's drive gives no SHA-256
        assert kind.same_content(there, local_file(tmp_path, SMALL))
        assert not kind.same_content(there, local_file(tmp_path, SMALL.replace(b"invoice", b"receipt")))


def test_a_refused_access_token_is_a_configuration_error_after_one_fresh_try(replay):
    recording = replay.play("onedrive_refused", RECORDINGS)
    with onedrive_kind(replay) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("Archive/invoice.pdf")
    assert "InvalidAuthenticationToken" in error.value.message
    assert_played_as_recorded(replay, recording)
    # The second sign-in used the refresh token Microsoft had just given in place of the first.
    assert parse_qs(replay.received[3].body.decode())["refresh_token"] == [
        "M.C5xx_BAY.0.U.-rotated-refresh-token-1"
    ]


def test_a_refused_refresh_token_is_a_configuration_error(replay):
    replay.play("onedrive_refresh_refused", RECORDINGS)
    with onedrive_kind(replay) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("Archive/invoice.pdf")
    assert "invalid_grant" in error.value.message
    assert GIVEN_TOKEN not in error.value.message


def test_throttling_is_waited_out_as_graph_asks(replay):
    recording = replay.play("onedrive_throttled", RECORDINGS)
    sleeps = Sleeps()
    with onedrive_kind(replay, sleep=sleeps) as kind:
        assert kind.stat("Archive/invoice.pdf") is None
    assert sleeps == [1.0]
    assert_played_as_recorded(replay, recording)


def test_a_full_onedrive_is_a_temporary_failure(replay, tmp_path):
    replay.play("onedrive_full", RECORDINGS)
    with onedrive_kind(replay) as kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path, SMALL), "Archive/invoice.pdf")
    assert "quotaLimitReached" in error.value.message


def test_the_check_puts_a_test_file_and_deletes_it(replay):
    recording = replay.play("onedrive_check", RECORDINGS)
    with onedrive_kind(replay) as kind:
        kind.check(folder="Archive")
    assert_played_as_recorded(replay, recording)
    assert replay.received[3].path.split(":/content")[0] == replay.received[4].path


# Published quickXorHash test vectors: input and hash, both base64.
QUICKXOR_VECTORS = [
    ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
    ("2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="),
    (
        "jyibxJSzO6ZiZ0O1qe3tG/bvIAYssvukh9suIT5wEy1JBINVgPiqdsTW0cOpP0aUfP7mgqLfADkzI/m/GgCuVhr8oFLrOCoTx1/p"
        "sBOWwhltCbhUx51Icm9aH8tY4Z3ccU+6BKpYQkLCy0B/A9Zc",
        "hZfLIilSITC6N3e3tQ/iSgEzkto=",
    ),
]


@pytest.mark.parametrize(("content", "expected"), QUICKXOR_VECTORS)
def test_quickxorhash_matches_microsofts(tmp_path, content, expected):
    path = tmp_path / "f"
    path.write_bytes(base64.b64decode(content))
    assert quickxorhash(path) == expected


def test_quickxorhash_of_a_file_longer_than_a_block_matches_the_byte_by_byte_rule(tmp_path):
    content = bytes((index * 7 + 3) % 251 for index in range(700_001))
    path = tmp_path / "f"
    path.write_bytes(content)
    register = 0
    for position, byte in enumerate(content):  # the rule itself, one byte at a time
        shift = (11 * position) % 160
        register ^= ((byte << shift) | (byte >> (160 - shift))) & ((1 << 160) - 1)
    digest = bytearray(register.to_bytes(20, "little"))
    for index, byte in enumerate(len(content).to_bytes(8, "little")):
        digest[12 + index] ^= byte
    assert quickxorhash(path) == base64.b64encode(bytes(digest)).decode()
