"""POST /api/ui-upload and /api/files/upload: sample documents through the real ingest."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.services import token_create
from documents.models import Document, DocumentStatus
from documents.pipeline.steps import STEP_NAMES

pytestmark = pytest.mark.django_db


ROUTES = ["/api/ui-upload", "/api/files/upload"]


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def originals(workdir: Path) -> list[Path]:
    folder = workdir / "originals"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("route", ROUTES)
def test_an_uploaded_file_is_stored_recorded_for_its_uploader_and_queued_after_commit(
    route, api, owner, samples, document_storage, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(route, {"file": upload(samples / "blank.pdf")}, format="multipart")

    assert response.status_code == 200
    body = response.json()
    document = Document.objects.get()
    assert body == {
        "task_id": body["task_id"],
        "document_id": document.pk,
        "status": "queued",
        "original_filename": "blank.pdf",
        "stored_filename": PurePosixPath(document.original_file).name,
    }
    assert document.owner == owner
    assert document.source == "upload"
    assert (document_storage / document.original_file).read_bytes() == (samples / "blank.pdf").read_bytes()
    assert [(call["args"], call["task_id"]) for call in sent] == [
        ((document.pk, STEP_NAMES[0]), body["task_id"])
    ]


def test_uploading_the_same_content_again_answers_duplicate_and_queues_nothing(
    api, samples, document_storage, sent, django_capture_on_commit_callbacks
):
    first = api.post("/api/ui-upload", {"file": upload(samples / "blank.pdf")}, format="multipart").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/files/upload", {"file": upload(samples / "blank.pdf", "again.pdf")}, format="multipart"
        )

    assert response.status_code == 200
    body = response.json()
    duplicate = Document.objects.get(pk=body["document_id"])
    assert duplicate.status == DocumentStatus.DUPLICATE
    assert body == {
        "status": "duplicate",
        "document_id": duplicate.pk,
        "original_filename": "again.pdf",
        "stored_filename": first["stored_filename"],
        "duplicate_of": {
            "duplicate_type": "exact",
            "original_file_id": first["document_id"],
            "original_filename": "blank.pdf",
            "message": body["duplicate_of"]["message"],
        },
    }
    assert str(first["document_id"]) in body["duplicate_of"]["message"]
    assert sent == []
    assert len(originals(document_storage)) == 1


def test_several_files_are_answered_one_by_one_and_a_refused_one_does_not_stop_the_others(
    api, samples, document_storage, sent, django_capture_on_commit_callbacks
):
    files = [
        upload(samples / "blank.pdf"),
        SimpleUploadedFile("archive.bin", b"\x00\x01\x02\x03 not a document " * 50),
        upload(samples / "scan.png"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/ui-upload", {"file": files}, format="multipart")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == ["queued", "error", "queued"]
    assert [result["original_filename"] for result in results] == ["blank.pdf", "archive.bin", "scan.png"]
    assert "not supported" in results[1]["detail"]
    assert set(results[1]) == {"status", "original_filename", "detail"}
    documents = Document.objects.order_by("pk")
    assert [document.original_filename for document in documents] == ["blank.pdf", "scan.png"]
    assert sorted(call["args"][0] for call in sent) == [document.pk for document in documents]
    assert len(originals(document_storage)) == 2


def test_among_several_files_one_over_the_size_limit_is_refused_alone(
    api, samples, document_storage, settings
):
    settings.MAX_UPLOAD_SIZE = 10_000
    files = [upload(samples / "scan.png"), upload(samples / "blank.pdf")]

    results = api.post("/api/ui-upload", {"file": files}, format="multipart").json()["results"]

    assert [result["status"] for result in results] == ["error", "queued"]
    assert "10000 bytes" in results[0]["detail"]
    assert Document.objects.get().original_filename == "blank.pdf"


def test_one_file_of_an_unsupported_type_is_refused_with_415_and_nothing_is_kept(api, document_storage):
    response = api.post(
        "/api/ui-upload", {"file": SimpleUploadedFile("x.bin", b"\x00\x01\x02\x03" * 100)}, format="multipart"
    )

    assert response.status_code == 415
    assert "not supported" in response.json()["detail"]
    assert not Document.objects.exists()
    assert originals(document_storage) == []


def test_one_file_over_the_size_limit_is_refused_with_413_and_nothing_is_kept(
    api, samples, document_storage, settings
):
    settings.MAX_UPLOAD_SIZE = 100

    response = api.post("/api/files/upload", {"file": upload(samples / "blank.pdf")}, format="multipart")

    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than the limit of 100 bytes."}
    assert not Document.objects.exists()
    assert originals(document_storage) == []
    assert list((document_storage / "tmp").iterdir()) == []


@pytest.mark.parametrize("data", [{}, {"other": "value"}], ids=["empty", "wrong-field"])
def test_a_request_without_a_file_part_is_a_400_naming_the_field(api, document_storage, data):
    response = api.post("/api/ui-upload", data, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("file:")


def test_a_non_ascii_file_name_is_kept_as_the_document_name(api, samples, document_storage):
    name = "Grüße \N{EN DASH} Rechnung.pdf"

    body = api.post(
        "/api/ui-upload", {"file": upload(samples / "blank.pdf", name)}, format="multipart"
    ).json()

    assert body["original_filename"] == name
    assert Document.objects.get().original_filename == name
    assert body["stored_filename"].isascii()


def test_a_path_in_the_uploaded_name_never_reaches_the_storage(api, samples, document_storage):
    body = api.post(
        "/api/ui-upload", {"file": upload(samples / "blank.pdf", "../../etc/passwd.pdf")}, format="multipart"
    ).json()

    assert body["original_filename"] == "passwd.pdf"
    assert [path.parent for path in originals(document_storage)] == [document_storage / "originals"]


@pytest.mark.parametrize("route", ROUTES)
def test_an_anonymous_upload_is_refused_with_json_and_nothing_is_stored(route, samples, document_storage):
    response = APIClient().post(route, {"file": upload(samples / "blank.pdf")}, format="multipart")

    assert response.status_code in (401, 403)
    assert "detail" in response.json()
    assert not Document.objects.exists()


def test_the_upload_route_only_accepts_post_and_says_so_in_json(api):
    response = api.get("/api/ui-upload")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_a_file_sent_with_an_api_token_records_api_as_its_source(owner, samples, document_storage, sent):
    _, raw_token = token_create(user=owner, name="scanner script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert (
        client.post(ROUTES[0], {"file": upload(samples / "blank.pdf")}, format="multipart").status_code == 200
    )

    assert Document.objects.get().source == "api"
