"""Cloud drives as remote folders, through the destinations' SDK clients, against recorded
exchanges of the providers' APIs replayed on 127.0.0.1 (``settings.CLOUD_API_ROUTES``)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from docuelevate.errors import InvalidInput
from documents.models import Document, FailureKind
from documents.tests.http_replay import ReplayServer, assert_matches_recording
from sources.models import Source, SourceItem
from sources.polling import PollStatus, source_poll
from sources.services import source_create, system_sources_sync
from sources.tests.conftest import RECORDINGS

pytestmark = pytest.mark.django_db

DROPBOX_HOSTS = ("https://api.dropboxapi.com", "https://content.dropboxapi.com")
DROPBOX_TOKEN = "dropbox-refresh-token-0123456789"


def assert_played_as_recorded(replay: ReplayServer, recording: dict) -> None:
    assert len(replay.received) == len(recording["exchanges"])
    for received, exchange in zip(replay.received, recording["exchanges"], strict=True):
        assert_matches_recording(received, exchange["request"])


@pytest.fixture
def dropbox(settings, replay, document_storage, operator) -> ReplayServer:
    settings.DROPBOX_APP_KEY = "docuelevate-app-key"
    settings.DROPBOX_APP_SECRET = "docuelevate-app-secret"
    settings.CLOUD_API_ROUTES = {origin: replay.url for origin in DROPBOX_HOSTS}
    return replay


def dropbox_source(**settings) -> Source:
    return source_create(
        kind="dropbox",
        owner=None,
        name=f"Dropbox {Source.objects.count() + 1}",
        settings={"folder": "/Inbox", **settings},
        secrets={"refresh_token": DROPBOX_TOKEN},
    )


def test_a_dropbox_file_is_taken_once_and_moved_to_processed(dropbox):
    recording = dropbox.play("dropbox_folder_taken", RECORDINGS)
    source = dropbox_source()

    first = source_poll(source_id=source.pk)
    assert first.status == PollStatus.DONE, first.error
    assert first.documents == 1
    document = Document.objects.get()
    assert (document.original_filename, document.source) == ("invoice.pdf", "dropbox")
    assert document.source_ref == "id:a4ayc_80_OEAAAAAAAAAYa"  # Dropbox's id: survives the move
    # The ledger knows the file by its content hash: new content under the name is a new file.
    item = SourceItem.objects.get(source=source)
    assert item.key.endswith("|7f9ad356f08d730805c875365730f31b8212b603ed36263bef87254d40b49d19")

    second = source_poll(source_id=source.pk)
    assert (second.status, second.documents) == (PollStatus.DONE, 0)
    assert Document.objects.count() == 1
    # Hidden and .part files are never downloaded; the move is the last thing the first poll did.
    assert_played_as_recorded(dropbox, recording)
    move = dropbox.received[6].json()
    assert (move["from_path"], move["to_path"]) == ("/Inbox/invoice.pdf", "/Inbox/processed/invoice.pdf")


def test_delete_after_deletes_the_taken_dropbox_file(dropbox):
    recording = dropbox.play("dropbox_folder_delete_after", RECORDINGS)
    source = dropbox_source(delete_after=True)

    outcome = source_poll(source_id=source.pk)

    assert (outcome.status, outcome.documents) == (PollStatus.DONE, 1), outcome.error
    assert_played_as_recorded(dropbox, recording)
    assert dropbox.received[-1].json() == {"path": "/Inbox/invoice.pdf"}


def test_a_refused_dropbox_token_is_a_configuration_error_with_the_reason(dropbox):
    dropbox.play("dropbox_folder_token_refused", RECORDINGS)
    source = dropbox_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.CONFIGURATION
    source.refresh_from_db()
    assert source.last_error_kind == FailureKind.CONFIGURATION
    assert "Dropbox refused the sign-in" in source.last_error
    assert DROPBOX_TOKEN not in source.last_error
    assert Document.objects.count() == 0


def test_a_dropbox_server_error_is_temporary(dropbox):
    dropbox.play("dropbox_folder_unavailable", RECORDINGS)
    source = dropbox_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.TEMPORARY
    assert "HTTP 500" in (outcome.error or "")
    assert Document.objects.count() == 0


def test_the_environment_dropbox_folder_signs_in_with_the_destinations_token(settings):
    settings.DROPBOX_APP_KEY, settings.DROPBOX_APP_SECRET = "key", "secret"
    settings.DROPBOX_REFRESH_TOKEN = DROPBOX_TOKEN
    settings.DROPBOX_FOLDER = "/Archive"
    settings.DROPBOX_INGEST_ENABLED, settings.DROPBOX_INGEST_FOLDER = True, "/Scans/Inbox"
    settings.DROPBOX_INGEST_DELETE_AFTER_PROCESS = True

    [source] = [source for source in system_sources_sync() if source.kind == "dropbox"]

    assert source.owner_id is None
    assert (source.settings["folder"], source.settings["delete_after"]) == ("Scans/Inbox", True)
    assert source.secrets["refresh_token"] == DROPBOX_TOKEN


def test_a_dropbox_folder_the_environment_delivers_to_is_refused(settings, caplog):
    settings.DROPBOX_APP_KEY, settings.DROPBOX_APP_SECRET = "key", "secret"
    settings.DROPBOX_ENABLED, settings.DROPBOX_REFRESH_TOKEN = True, DROPBOX_TOKEN
    settings.DROPBOX_FOLDER = "/Archive"
    settings.DROPBOX_INGEST_ENABLED, settings.DROPBOX_INGEST_FOLDER = True, "archive/"

    assert [source for source in system_sources_sync() if source.kind == "dropbox"] == []
    assert any("would take them in again" in record.getMessage() for record in caplog.records)


# --- OneDrive ---------------------------------------------------------------------------------

ONEDRIVE_HOSTS = ("https://login.microsoftonline.com", "https://graph.microsoft.com")
ONEDRIVE_TOKEN = "M.C5xx_BAY.0.U.-given-folder-token"


@pytest.fixture
def onedrive(settings, replay, document_storage, operator) -> ReplayServer:
    settings.ONEDRIVE_CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
    settings.ONEDRIVE_CLIENT_SECRET = "docuelevate-client-secret"
    settings.ONEDRIVE_TENANT_ID = "common"
    settings.CLOUD_API_ROUTES = {origin: replay.url for origin in ONEDRIVE_HOSTS}
    return replay


def onedrive_source(**settings) -> Source:
    return source_create(
        kind="onedrive",
        owner=None,
        name=f"OneDrive {Source.objects.count() + 1}",
        settings={"folder": "Inbox", **settings},
        secrets={"refresh_token": ONEDRIVE_TOKEN},
    )


def test_a_onedrive_file_is_taken_once_and_moved_to_processed(onedrive):
    recording = onedrive.play("onedrive_folder_taken", RECORDINGS)
    source = onedrive_source()

    first = source_poll(source_id=source.pk)
    assert first.status == PollStatus.DONE, first.error
    assert first.documents == 1
    document = Document.objects.get()
    assert (document.original_filename, document.source) == ("invoice.pdf", "onedrive")
    assert document.source_ref == "01BYE5RZ5MYLM2SMX75ZBIPQZIHT6OAYPB"
    # Known to the ledger by its cTag, which changes with the content only.
    item = SourceItem.objects.get(source=source)
    assert item.key.endswith('|"c:{B7A5D7C3-1F2E-4D3C-9A8B-7C6D5E4F3A2B},2"')

    second = source_poll(source_id=source.pk)
    assert (second.status, second.documents) == (PollStatus.DONE, 0)
    assert Document.objects.count() == 1
    assert_played_as_recorded(onedrive, recording)
    # The refresh token Microsoft handed out at the first sign-in signed in the second, and
    # the one from the second is kept for the next.
    second_sign_in = onedrive.received[11].body.decode()
    assert "refresh_token=M.C5xx_BAY.0.U.-rotated-folder-token-1" in second_sign_in
    source.refresh_from_db()
    assert source.secrets["renewed_refresh_token"] == "M.C5xx_BAY.0.U.-rotated-folder-token-2"


def test_delete_after_deletes_the_taken_onedrive_file(onedrive):
    recording = onedrive.play("onedrive_folder_delete_after", RECORDINGS)
    source = onedrive_source(delete_after=True)

    outcome = source_poll(source_id=source.pk)

    assert (outcome.status, outcome.documents) == (PollStatus.DONE, 1), outcome.error
    assert_played_as_recorded(onedrive, recording)
    assert onedrive.received[-1].method == "DELETE"


def test_an_expired_onedrive_token_is_a_configuration_error_with_the_reason(onedrive):
    onedrive.play("onedrive_folder_token_refused", RECORDINGS)
    source = onedrive_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.CONFIGURATION
    source.refresh_from_db()
    assert "Microsoft refused the sign-in (invalid_grant)" in source.last_error
    assert ONEDRIVE_TOKEN not in source.last_error


def test_a_onedrive_server_error_is_temporary(onedrive):
    onedrive.play("onedrive_folder_unavailable", RECORDINGS)
    source = onedrive_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.TEMPORARY
    assert "serviceNotAvailable" in (outcome.error or "")


def test_the_environment_onedrive_folder_is_onedrive_ingest_folder_path(settings):
    settings.ONEDRIVE_CLIENT_ID, settings.ONEDRIVE_CLIENT_SECRET = "client", "secret"
    settings.ONEDRIVE_REFRESH_TOKEN = ONEDRIVE_TOKEN
    settings.ONEDRIVE_INGEST_ENABLED, settings.ONEDRIVE_INGEST_FOLDER_PATH = True, "Scans/Inbox"

    [source] = [source for source in system_sources_sync() if source.kind == "onedrive"]

    assert source.settings["folder"] == "Scans/Inbox"
    assert source.secrets["refresh_token"] == ONEDRIVE_TOKEN


# --- Google Drive -----------------------------------------------------------------------------

GOOGLE_HOSTS = ("https://oauth2.googleapis.com", "https://www.googleapis.com")
GOOGLE_TOKEN = "google-refresh-token-0123456789"
GOOGLE_FOLDER_ID = "1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr0St1Uv"


@pytest.fixture
def google_drive(settings, replay, document_storage, operator) -> ReplayServer:
    settings.GOOGLE_DRIVE_CLIENT_ID = "docuelevate-client.apps.googleusercontent.com"
    settings.GOOGLE_DRIVE_CLIENT_SECRET = "docuelevate-client-secret"
    settings.CLOUD_API_ROUTES = {origin: replay.url for origin in GOOGLE_HOSTS}
    return replay


def google_drive_source(**settings) -> Source:
    return source_create(
        kind="google_drive",
        owner=None,
        name=f"Google Drive {Source.objects.count() + 1}",
        settings={"folder_id": GOOGLE_FOLDER_ID, "use_oauth": True, **settings},
        secrets={"refresh_token": GOOGLE_TOKEN},
    )


def test_a_google_drive_file_is_taken_once_and_moved_to_processed(google_drive):
    recording = google_drive.play("google_drive_folder_taken", RECORDINGS)
    source = google_drive_source()

    first = source_poll(source_id=source.pk)
    assert first.status == PollStatus.DONE, first.error
    assert first.documents == 1  # not the Google Docs document beside it
    document = Document.objects.get()
    assert (document.original_filename, document.source) == ("invoice.pdf", "google_drive")
    assert document.source_ref == "1ZyXwVuTsRqPoNmLkJiHgFeDcBa987654"
    # Every byte arrived, and the ledger knows the file by Drive's md5Checksum of its content.
    content = base64.b64decode(recording["exchanges"][3]["response"]["body_base64"])
    assert document.filehash == hashlib.sha256(content).hexdigest()
    assert SourceItem.objects.get(source=source).key.endswith(
        f"|{hashlib.md5(content, usedforsecurity=False).hexdigest()}"
    )

    second = source_poll(source_id=source.pk)
    assert (second.status, second.documents) == (PollStatus.DONE, 0)
    assert Document.objects.count() == 1
    assert_played_as_recorded(google_drive, recording)


def test_delete_after_deletes_the_taken_google_drive_file(google_drive):
    recording = google_drive.play("google_drive_folder_delete_after", RECORDINGS)
    source = google_drive_source(delete_after=True)

    outcome = source_poll(source_id=source.pk)

    assert (outcome.status, outcome.documents) == (PollStatus.DONE, 1), outcome.error
    assert_played_as_recorded(google_drive, recording)
    assert google_drive.received[-1].method == "DELETE"


def test_a_refused_google_token_is_a_configuration_error_with_the_reason(google_drive):
    google_drive.play("google_drive_folder_token_refused", RECORDINGS)
    source = google_drive_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.CONFIGURATION
    source.refresh_from_db()
    assert "Google refused the sign-in" in source.last_error
    assert GOOGLE_TOKEN not in source.last_error


def test_a_google_drive_server_error_is_temporary(google_drive):
    google_drive.play("google_drive_folder_unavailable", RECORDINGS)
    source = google_drive_source()

    outcome = source_poll(source_id=source.pk)

    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == FailureKind.TEMPORARY
    assert "backendError" in (outcome.error or "")


def test_a_google_drive_folder_needs_its_id_and_is_never_the_delivery_folder(settings, caplog):
    with pytest.raises(InvalidInput):
        google_drive_source(folder_id="")
    settings.GOOGLE_DRIVE_CLIENT_ID, settings.GOOGLE_DRIVE_CLIENT_SECRET = "client", "secret"
    settings.GOOGLE_DRIVE_USE_OAUTH, settings.GOOGLE_DRIVE_REFRESH_TOKEN = True, GOOGLE_TOKEN
    settings.GOOGLE_DRIVE_ENABLED, settings.GOOGLE_DRIVE_FOLDER_ID = True, GOOGLE_FOLDER_ID
    settings.GOOGLE_DRIVE_INGEST_ENABLED, settings.GOOGLE_DRIVE_INGEST_FOLDER_ID = True, GOOGLE_FOLDER_ID

    assert [source for source in system_sources_sync() if source.kind == "google_drive"] == []
    assert any("would take them in again" in record.getMessage() for record in caplog.records)

    settings.GOOGLE_DRIVE_INGEST_FOLDER_ID = "1ScAnSiNbOxFoLdEr000000000000000c"
    [source] = [source for source in system_sources_sync() if source.kind == "google_drive"]
    assert source.settings["folder_id"] == "1ScAnSiNbOxFoLdEr000000000000000c"
    assert source.secrets["refresh_token"] == GOOGLE_TOKEN
