"""GET /api/files and /api/files/{id}, DELETE, reprocess, retry-subtask, and the logs route."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus, Tag
from documents.pipeline.steps import STEP_NAMES
from documents.tests.factories import with_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def api(client_for, owner) -> APIClient:
    return client_for(owner)


def note(ingest, text: str, filename: str, **fields) -> Document:
    """A small text document, with the metadata a finished pipeline would have given it."""
    document = ingest(text.encode(), filename)
    tags = fields.pop("tags", [])
    if fields:
        Document.objects.filter(pk=document.pk).update(**with_entries(fields, owner_id=document.owner_id))
    document.tags.set([Tag.objects.get_or_create(name=name)[0] for name in tags])
    return Document.objects.get(pk=document.pk)


def names(response) -> list[str]:
    return [item["original_filename"] for item in response.json()["files"]]


# --- The list ------------------------------------------------------------------------------


def test_the_list_shows_each_document_with_its_tags_and_processing_status(api, ingest, process, trivial):
    done = process(trivial, "done.pdf")
    waiting = note(ingest, "waiting for the worker", "waiting.txt", tags=["tax", "bank"])

    response = api.get("/api/files")

    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {
        "page": 1,
        "per_page": 50,
        "total": 2,
        "pages": 1,
        "next": None,
        "previous": None,
    }
    newest, oldest = body["files"]
    assert newest == {
        "id": waiting.pk,
        "original_filename": "waiting.txt",
        "file_size": waiting.file_size,
        "mime_type": "text/plain",
        "filehash": waiting.filehash,
        "status": "pending",
        "created_at": newest["created_at"],
        "document_title": "",
        "document_type": "",
        "tags": ["bank", "tax"],
        "source": "upload",
        "source_ref": "",
        "processing_status": {"status": "pending", "last_step": None, "has_errors": False, "total_steps": 5},
    }
    assert datetime.datetime.fromisoformat(newest["created_at"]) == waiting.created_at
    assert oldest["id"] == done.pk
    assert oldest["status"] == "completed"
    assert oldest["document_title"] == done.document_title != ""
    assert oldest["processing_status"] == {
        "status": "completed",
        "last_step": "finalize",
        "has_errors": False,
        "total_steps": len(STEP_NAMES),
    }


def test_a_failed_step_shows_as_errors_in_the_processing_status(api, ingest):
    document = note(ingest, "a note", "a.txt", status=DocumentStatus.FAILED, error="OCR engine missing")
    ProcessingStep.objects.filter(document=document, name="convert").update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name="ocr").update(status=StepStatus.FAILURE)

    item = api.get("/api/files").json()["files"][0]

    assert item["processing_status"] == {
        "status": "failed",
        "last_step": "ocr",
        "has_errors": True,
        "total_steps": 5,
    }


def test_pages_follow_each_other_without_overlap_and_say_where_the_next_one_is(api, ingest):
    for number in range(5):
        note(ingest, f"note {number}", f"note-{number}.txt")

    first = api.get("/api/files", {"per_page": 2, "sort_by": "original_filename", "sort_order": "asc"}).json()
    second = api.get(
        "/api/files", {"per_page": 2, "page": 2, "sort_by": "original_filename", "sort_order": "asc"}
    ).json()
    last = api.get(
        "/api/files", {"per_page": 2, "page": 3, "sort_by": "original_filename", "sort_order": "asc"}
    ).json()
    beyond = api.get("/api/files", {"per_page": 2, "page": 9}).json()

    seen = [item["original_filename"] for page in (first, second, last) for item in page["files"]]
    assert seen == [f"note-{number}.txt" for number in range(5)]
    assert first["pagination"] == {
        "page": 1,
        "per_page": 2,
        "total": 5,
        "pages": 3,
        "next": 2,
        "previous": None,
    }
    assert second["pagination"]["next"] == 3
    assert second["pagination"]["previous"] == 1
    assert last["pagination"]["next"] is None
    assert beyond["files"] == []
    assert beyond["pagination"]["next"] is None
    assert beyond["pagination"]["previous"] == 3


def test_the_list_filters_by_source_and_shows_where_each_document_came_from(api, ingest):
    note(ingest, "uploaded", "uploaded.txt")
    mailed = note(ingest, "mailed", "invoice.txt", source="imap", source_ref="scanner@mail.example INBOX/42")
    note(ingest, "from a folder", "scan.txt", source="watch", source_ref="/srv/scans/scan.txt")

    from_mail = api.get("/api/files", {"source": "imap"}).json()
    uploaded = api.get("/api/files", {"source": "upload"}).json()
    nowhere = api.get("/api/files", {"source": "sftp"}).json()

    assert [(item["id"], item["source"], item["source_ref"]) for item in from_mail["files"]] == [
        (mailed.pk, "imap", "scanner@mail.example INBOX/42")
    ]
    assert from_mail["pagination"]["total"] == 1
    assert [item["original_filename"] for item in uploaded["files"]] == ["uploaded.txt"]
    assert nowhere["files"] == []
    assert len(api.get("/api/files", {"source": ""}).json()["files"]) == 3


def test_with_multi_user_the_source_filter_never_shows_another_users_documents(
    client_for, ingest, owner, other_user, settings
):
    settings.MULTI_USER_ENABLED = True
    note(ingest, "my mail", "mine.txt", source="imap")
    theirs = ingest(b"their mail, from their own mailbox", "theirs.txt", user=other_user)
    Document.objects.filter(pk=theirs.pk).update(source="imap")

    mine = client_for(owner).get("/api/files", {"source": "imap"})
    their_list = client_for(other_user).get("/api/files", {"source": "imap"})

    assert names(mine) == ["mine.txt"]
    assert names(their_list) == ["theirs.txt"]


def test_a_source_filter_longer_than_any_source_is_refused(api):
    response = api.get("/api/files", {"source": "x" * 33})
    assert response.status_code == 400
    assert "source" in response.json()["detail"]


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("original_filename", ["a.txt", "b.txt", "c.txt"]),
        ("file_size", ["b.txt", "c.txt", "a.txt"]),
        ("document_title", ["c.txt", "a.txt", "b.txt"]),
        ("document_date", ["b.txt", "a.txt", "c.txt"]),
        ("status", ["a.txt", "c.txt", "b.txt"]),
        ("created_at", ["a.txt", "b.txt", "c.txt"]),
    ],
)
def test_the_list_sorts_by_each_offered_field_both_ways(api, ingest, sort_by, expected):
    note(
        ingest,
        "a" * 30,
        "a.txt",
        document_title="Beta",
        document_date=datetime.date(2024, 2, 1),
        status="completed",
    )
    note(
        ingest,
        "b" * 10,
        "b.txt",
        document_title="Gamma",
        document_date=datetime.date(2023, 1, 1),
        status="pending",
    )
    note(ingest, "c" * 20, "c.txt", document_title="Alpha", status="failed")

    ascending = api.get("/api/files", {"sort_by": sort_by, "sort_order": "asc"})
    descending = api.get("/api/files", {"sort_by": sort_by, "sort_order": "desc"})

    assert names(ascending) == expected
    if sort_by == "document_date":
        # Documents without a date come last either way.
        assert names(descending) == ["a.txt", "b.txt", "c.txt"]
    else:
        assert names(descending) == expected[::-1]


def test_the_list_filters_by_search_type_status_tags_and_creation_date(api, ingest, process, trivial, clock):
    note(ingest, "old note", "old.txt")
    clock.shift(datetime.timedelta(days=40))
    invoice = process(trivial, "scan.pdf")
    Document.objects.filter(pk=invoice.pk).update(
        **with_entries(
            {"document_title": "Invoice March", "correspondent": "ACME GmbH"}, owner_id=invoice.owner_id
        )
    )
    invoice.tags.set([Tag.objects.get_or_create(name=name)[0] for name in ["finance", "2024"]])
    note(ingest, "dear sir", "letter.txt", correspondent="Tax Office", tags=["finance"])

    def listed(**params) -> list[str]:
        response = api.get("/api/files", params)
        assert response.status_code == 200, response.json()
        return sorted(names(response))

    assert listed(search="acme") == ["scan.pdf"]
    assert listed(search="MARCH") == ["scan.pdf"]
    assert listed(search="letter") == ["letter.txt"]
    assert listed(search="office") == ["letter.txt"]
    assert listed(mime_type="application/pdf") == ["scan.pdf"]
    assert listed(status="completed") == ["scan.pdf"]
    assert listed(status="pending") == ["letter.txt", "old.txt"]
    assert listed(tags="finance") == ["letter.txt", "scan.pdf"]
    assert listed(tags="finance, 2024") == ["scan.pdf"]
    assert listed(tags="Finance,unknown") == []
    today = timezone.localdate()
    assert listed(date_from=today.isoformat()) == ["letter.txt", "scan.pdf"]
    assert listed(date_to=(today - datetime.timedelta(days=30)).isoformat()) == ["old.txt"]
    assert listed(date_from=today.isoformat(), tags="finance", search="tax") == ["letter.txt"]


@pytest.mark.parametrize(
    "params",
    [
        {"per_page": 201},
        {"per_page": 0},
        {"page": 0},
        {"page": "two"},
        {"sort_by": "owner__password"},
        {"sort_order": "sideways"},
        {"status": "lost"},
        {"date_from": "yesterday"},
        {"date_to": "2024-13-01"},
    ],
)
def test_bad_list_parameters_are_a_400_with_a_readable_detail(api, params):
    response = api.get("/api/files", params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith(next(iter(params)))


def test_per_page_up_to_200_is_accepted(api, ingest):
    note(ingest, "a note", "a.txt")

    assert api.get("/api/files", {"per_page": 200}).json()["pagination"]["per_page"] == 200


@pytest.mark.parametrize("count", [5, 50])
def test_the_list_costs_the_same_few_queries_for_any_number_of_documents(
    api, ingest, count, django_assert_max_num_queries
):
    for number in range(count):
        note(ingest, f"note number {number}", f"note-{number}.txt", tags=["a", f"tag-{number % 3}"])

    # count, page of documents, their tags, their steps.
    with django_assert_max_num_queries(4):
        response = api.get("/api/files", {"per_page": 200})

    assert len(response.json()["files"]) == count


# --- Who sees what in lists -----------------------------------------------------------------


def test_with_multi_user_each_user_lists_only_their_own_documents(
    client_for, owner, other_user, ingest, settings
):
    settings.MULTI_USER_ENABLED = True
    mine = note(ingest, "mine", "mine.txt")
    theirs = ingest(b"theirs", "theirs.txt", user=other_user)

    assert [item["id"] for item in client_for(owner).get("/api/files").json()["files"]] == [mine.pk]
    assert [item["id"] for item in client_for(other_user).get("/api/files").json()["files"]] == [theirs.pk]
    assert client_for(other_user).get("/api/files", {"search": "mine"}).json()["files"] == []


def test_operators_list_every_users_documents(client_for, operator, other_user, ingest, settings):
    settings.MULTI_USER_ENABLED = True
    note(ingest, "mine", "mine.txt")
    ingest(b"theirs", "theirs.txt", user=other_user)

    response = client_for(operator).get("/api/files")

    assert sorted(names(response)) == ["mine.txt", "theirs.txt"]
    assert response.json()["pagination"]["total"] == 2


def test_without_multi_user_the_archive_is_shared_by_its_users(client_for, other_user, ingest, settings):
    settings.MULTI_USER_ENABLED = False
    note(ingest, "mine", "mine.txt")

    assert names(client_for(other_user).get("/api/files")) == ["mine.txt"]


def test_an_anonymous_list_is_refused_with_json(client_for, ingest):
    note(ingest, "mine", "mine.txt")

    response = client_for(None).get("/api/files")

    assert response.status_code in (401, 403)
    assert "detail" in response.json()


# --- One document ---------------------------------------------------------------------------


def test_the_detail_has_the_file_its_processing_history_and_what_is_on_disk(api, process, trivial):
    document = process(trivial, "scan.pdf")
    Document.objects.filter(pk=document.pk).update(legal_hold=True)

    response = api.get(f"/api/files/{document.pk}")

    assert response.status_code == 200
    body = response.json()
    document.refresh_from_db()
    assert body["file"] == {
        "id": document.pk,
        "filehash": document.filehash,
        "original_filename": "scan.pdf",
        "local_filename": document.original_file.removeprefix("originals/"),
        "file_size": trivial.stat().st_size,
        "mime_type": "application/pdf",
        "legal_hold": True,
        "created_at": body["file"]["created_at"],
        "document_title": document.document_title,
        "document_type": document.document_type_name,
        "document_type_id": document.document_type_id,
        "tags": sorted(document.tags.values_list("name", flat=True)),
        "tag_ids": sorted(document.tags.values_list("pk", flat=True)),
        "correspondent": document.correspondent_name,
        "correspondent_id": document.correspondent_id,
        "storage_path": "",
        "storage_path_id": None,
        "document_date": document.document_date.isoformat() if document.document_date else None,
        "language": document.language,
        "confidence": document.confidence,
        "version": document.version,
        "user_fields": [],
        "source": "upload",
        "source_ref": "",
    }
    assert response["ETag"] == f'"{document.version}"'
    assert body["custom_fields"] == []
    assert body["processing_status"] == {
        "status": "completed",
        "last_step": "finalize",
        "has_errors": False,
        "total_steps": 5,
    }
    assert body["files_on_disk"] == {"original": True, "processed": True}
    assert body["status"] == "completed"
    assert body["ocr_text"] == document.ocr_text
    assert body["metadata"] == document.metadata
    assert [step["name"] for step in body["steps"]] == list(STEP_NAMES)
    assert set(body["steps"][0]) == {"name", "status", "started_at", "finished_at", "attempts", "error"}
    assert all(step["status"] in {"success", "skipped"} for step in body["steps"])
    assert body["deliveries"] == []
    assert body["logs"][0]["step_name"] == "ingest"
    assert set(body["logs"][0]) == {"id", "task_id", "step_name", "status", "message", "timestamp"}
    assert len(body["logs"]) == document.logs.count()


def test_the_detail_of_a_document_whose_files_are_gone_says_so(api, ingest, trivial, document_storage):
    document = ingest(trivial)
    (document_storage / document.original_file).unlink()

    body = api.get(f"/api/files/{document.pk}").json()

    assert body["files_on_disk"] == {"original": False, "processed": False}


def test_a_duplicate_points_to_the_stored_original_of_its_first_copy(api, ingest, trivial):
    first = ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")

    body = api.get(f"/api/files/{duplicate.pk}").json()

    assert body["status"] == "duplicate"
    assert body["file"]["local_filename"] == first.original_file.removeprefix("originals/")
    assert body["files_on_disk"]["original"] is True


@pytest.mark.parametrize("document_id", ["999999", "abc", "1.5", "-1", "99999999999999999999999"])
def test_an_unknown_or_malformed_id_is_a_json_404(api, document_id):
    response = api.get(f"/api/files/{document_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such document."}


# --- Delete ---------------------------------------------------------------------------------


def test_deleting_moves_to_the_trash_and_emptying_it_removes_the_document_and_its_files(
    api, process, trivial, document_storage, django_capture_on_commit_callbacks
):
    document = process(trivial)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/files/{document.pk}")
    assert response.status_code == 204
    assert response.content == b""
    assert Document.objects.get(pk=document.pk).trashed_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/trash").json() == {"deleted": 1}

    assert not Document.objects.filter(pk=document.pk).exists()
    assert not ProcessingLog.objects.filter(document_id=document.pk).exists()
    assert [path for path in document_storage.rglob("*") if path.is_file()] == []


def test_a_document_under_legal_hold_is_not_deleted_409(api, ingest, trivial, document_storage):
    document = ingest(trivial)
    Document.objects.filter(pk=document.pk).update(legal_hold=True)

    response = api.delete(f"/api/files/{document.pk}")

    assert response.status_code == 409
    assert "legal hold" in response.json()["detail"]
    assert Document.objects.filter(pk=document.pk).exists()
    assert (document_storage / document.original_file).exists()


# --- Reprocess and retry ---------------------------------------------------------------------


def test_reprocess_queues_the_pipeline_from_the_start_and_answers_202(
    api, process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/files/{document.pk}/reprocess")

    assert response.status_code == 202
    assert response.json() == {"task_id": sent[0]["task_id"], "document_id": document.pk, "status": "queued"}
    assert sent[0]["args"] == (document.pk, STEP_NAMES[0])
    assert sent[0]["kwargs"] == {"force_ocr": False}
    assert set(document.steps.values_list("status", flat=True)) == {StepStatus.PENDING}


def test_reprocess_with_forced_ocr_passes_it_on(
    api, process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)

    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/files/{document.pk}/reprocess?force_ocr=true")

    assert sent[0]["kwargs"] == {"force_ocr": True}


def test_reprocessing_a_duplicate_is_a_409(api, ingest, trivial, sent):
    ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")

    response = api.post(f"/api/files/{duplicate.pk}/reprocess")

    assert response.status_code == 409
    assert "duplicate" in response.json()["detail"]
    assert sent == []


def test_retrying_a_subtask_queues_that_step_and_answers_202(
    api, process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/files/{document.pk}/retry-subtask?subtask_name=ocr")

    assert response.status_code == 202
    assert response.json() == {"task_id": sent[0]["task_id"], "document_id": document.pk, "status": "queued"}
    assert sent[0]["args"] == (document.pk, "ocr")
    assert ProcessingStep.objects.get(document=document, name="convert").status != StepStatus.PENDING
    assert ProcessingStep.objects.get(document=document, name="ocr").status == StepStatus.PENDING


def test_retrying_a_step_whose_predecessor_has_not_succeeded_is_a_409(api, ingest, trivial, sent):
    document = ingest(trivial)

    response = api.post(f"/api/files/{document.pk}/retry-subtask?subtask_name=ocr")

    assert response.status_code == 409
    assert "convert" in response.json()["detail"]
    assert sent == []


@pytest.mark.parametrize(
    ("query", "message"), [("?subtask_name=polish", "Unknown step"), ("", "subtask_name:")]
)
def test_retrying_an_unknown_or_unnamed_subtask_is_a_400(api, ingest, trivial, sent, query, message):
    document = ingest(trivial)

    response = api.post(f"/api/files/{document.pk}/retry-subtask{query}")

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert sent == []


# --- Logs -----------------------------------------------------------------------------------


def test_the_log_route_gives_the_processing_history_in_time_order(api, process, trivial):
    document = process(trivial)

    response = api.get(f"/api/logs/file/{document.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["file_id"] == document.pk
    expected = list(document.logs.order_by("timestamp", "id").values_list("id", flat=True))
    assert [entry["id"] for entry in body["logs"]] == expected
    assert [entry["timestamp"] for entry in body["logs"]] == sorted(
        entry["timestamp"] for entry in body["logs"]
    )
    assert body["logs"][0]["step_name"] == "ingest"
    assert body["logs"][-1]["step_name"] == "finalize"
