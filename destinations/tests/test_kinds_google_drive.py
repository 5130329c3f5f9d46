"""The Google Drive kind, through Google's client library, against recorded exchanges of
the Drive v3 API and Google's token endpoint."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, LocalFile
from destinations.kinds.google_drive import GoogleDriveKind
from destinations.kinds.transport import ProviderHttp
from destinations.tests.conftest import RECORDINGS, Sleeps, routes_to, sha256
from docuelevate.errors import InvalidInput
from documents.tests.http_replay import assert_matches_recording

SMALL = b"%PDF-1.7 an invoice delivered to Google Drive\n%%EOF\n"
LARGE = bytes(range(256)) * 2400  # 600 KiB: three chunks of 256 KiB
REFRESH_TOKEN = "google-refresh-token-0123456789"
ORIGINS = ("https://oauth2.googleapis.com", "https://www.googleapis.com")
FOLDER_ID = "1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr0St1Uv"
FILE_ID = "1ZyXwVuTsRqPoNmLkJiHgFeDcBa987654"


def drive_kind(replay, **options) -> GoogleDriveKind:
    return GoogleDriveKind(
        client_id="docuelevate-client.apps.googleusercontent.com",
        client_secret="docuelevate-client-secret",
        refresh_token=REFRESH_TOKEN,
        http=ProviderHttp(routes_to(replay, *ORIGINS)),
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


def test_a_small_file_is_created_in_one_request_in_a_folder_made_for_it(replay, tmp_path):
    recording = replay.play("google_drive_upload_small", RECORDINGS)
    with drive_kind(replay) as kind:
        uploaded = kind.upload(local_file(tmp_path, SMALL), "Archive/invoice.pdf")
    assert_played_as_recorded(replay, recording)
    token, _look, make_folder, _look_again, upload = replay.received
    assert parse_qs(token.body.decode())["refresh_token"] == [REFRESH_TOKEN]
    assert b'"mimeType": "application/vnd.google-apps.folder"' in make_folder.body
    assert b'"name": "Archive"' in make_folder.body
    # One multipart request: the file's name and folder, then its bytes.
    assert f'"parents": ["{FOLDER_ID}"]'.encode() in upload.body
    assert SMALL in upload.body
    assert (uploaded.remote_id, uploaded.remote_version) == (FILE_ID, "0B4hXq7exampleRevision01")


def test_a_large_file_goes_up_in_a_resumable_upload_as_a_new_revision_of_the_file_there(replay, tmp_path):
    recording = replay.play("google_drive_upload_resumable", RECORDINGS)
    with drive_kind(replay, chunk_size=256 * 1024) as kind:
        uploaded = kind.upload(local_file(tmp_path, LARGE), "Archive/invoice.pdf")
    assert_played_as_recorded(replay, recording)
    chunks = [request for request in replay.received if request.method == "PUT"]
    assert b"".join(chunk.body for chunk in chunks) == LARGE
    assert max(len(chunk.body) for chunk in chunks) == 256 * 1024
    assert (uploaded.remote_id, uploaded.remote_version) == (FILE_ID, "0B4hXq7exampleRevision02")


def test_a_file_with_drives_md5_of_the_document_is_recognised_without_a_download(replay, tmp_path):
    replay.play("google_drive_already_there", RECORDINGS)
    with drive_kind(replay) as kind:
        there = kind.stat("Archive/invoice.pdf")
        assert there is not None
        assert there.sha256 is None  # not worked out by Drive yet: its MD5 decides
        assert kind.same_content(there, local_file(tmp_path, SMALL))
        assert not kind.same_content(there, local_file(tmp_path, SMALL.replace(b"invoice", b"receipt")))


def test_a_refused_access_token_is_a_configuration_error(replay):
    recording = replay.play("google_drive_refused", RECORDINGS)
    with drive_kind(replay) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("Archive/invoice.pdf")
    assert "authError" in error.value.message
    assert_played_as_recorded(replay, recording)


def test_a_refused_refresh_token_is_a_configuration_error(replay):
    replay.play("google_drive_refresh_refused", RECORDINGS)
    with drive_kind(replay) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.stat("Archive/invoice.pdf")
    assert "connect the destination again" in error.value.message
    assert REFRESH_TOKEN not in error.value.message


def test_throttling_is_waited_out_and_the_same_request_asked_again(replay):
    recording = replay.play("google_drive_throttled", RECORDINGS)
    sleeps = Sleeps()
    with drive_kind(replay, sleep=sleeps) as kind:
        assert kind.stat("Archive/invoice.pdf") is None
    assert sleeps == [1.0]
    assert_played_as_recorded(replay, recording)


def test_a_full_drive_is_a_temporary_failure(replay, tmp_path):
    replay.play("google_drive_full", RECORDINGS)
    with drive_kind(replay) as kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path, SMALL), "Archive/invoice.pdf")
    assert "storageQuotaExceeded" in error.value.message


def service_account_key(**fields) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "docuelevate-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "deliveries@docuelevate-test.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        **fields,
    }


def test_a_service_account_signs_in_at_google_whatever_its_key_names(replay):
    recording = replay.play("google_drive_service_account", RECORDINGS)
    # A key pasted by a user must not make the server post anywhere but Google.
    key = service_account_key(token_uri="http://169.254.169.254/latest/not-google")
    kind = GoogleDriveKind(
        folder_id=FOLDER_ID, service_account=key, http=ProviderHttp(routes_to(replay, *ORIGINS))
    )
    with kind:
        assert kind.stat("invoice.pdf") is None
    assert_played_as_recorded(replay, recording)
    grant = parse_qs(replay.received[0].body.decode())
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert replay.received[0].headers["host"] == "oauth2.googleapis.com"


def test_a_service_account_needs_its_key_and_a_shared_folder():
    with pytest.raises(InvalidInput, match="folder id"):
        GoogleDriveKind.clean(
            {"use_oauth": False}, {"credentials_json": service_account_key()}, system_wide=True
        )
    with pytest.raises(InvalidInput, match="JSON key"):
        GoogleDriveKind.clean(
            {"use_oauth": False, "folder_id": FOLDER_ID}, {"credentials_json": "{"}, system_wide=True
        )
    settings, secrets = GoogleDriveKind.clean(
        {"use_oauth": False, "folder_id": FOLDER_ID},
        {"credentials_json": service_account_key(token_uri="http://elsewhere/")},
        system_wide=False,
    )
    assert settings == {"folder_id": FOLDER_ID, "folder": "", "use_oauth": False}
    assert "token_uri" not in secrets["credentials_json"]


def test_the_check_makes_a_test_file_in_the_folder_and_deletes_it(replay):
    recording = replay.play("google_drive_check", RECORDINGS)
    with drive_kind(replay) as kind:
        kind.check(folder="Archive")
    assert_played_as_recorded(replay, recording)
    made = replay.received[2].json()
    assert made["name"].startswith(".docuelevate-check-")
    assert made["parents"] == [FOLDER_ID]


def test_removing_deletes_the_file_found_by_its_name(replay):
    recording = replay.play("google_drive_remove", RECORDINGS)
    with drive_kind(replay) as kind:
        kind.remove("Archive/invoice.pdf")
    assert_played_as_recorded(replay, recording)
    assert replay.received[-1].path.startswith(f"/drive/v3/files/{FILE_ID}?")
