"""Storage paths and FILENAME_FORMAT: the name a processed file is given in the storage.

A filename template names the file inside the document's own folder; every value comes from
the document (from whoever sent it) and must stay one harmless name there. The download keeps
the readable name whatever the template.
"""

from __future__ import annotations

import datetime
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.access import Viewer
from destinations.paths import segment
from documents import storage
from documents.models import Correspondent, Document, ProcessingStep, StepStatus, StoragePath
from documents.organise.editing import document_refile, document_update
from documents.organise.mapping import entry_for_name
from documents.organise.storage_paths import document_filed_stem
from documents.pipeline.runner import pipeline_resume_abandoned, pipeline_step_run
from documents.pipeline.steps import STEP_NAMES
from documents.tests.conftest import stored_bytes
from documents.tests.factories import DocumentFactory
from documents.tests.test_api_download import body_of, disposition
from documents.tests.test_finalize import marked_copy

HOSTILE_TITLES = [
    "../../../etc/passwd",
    "..",
    "a/../../b\\..\\c",
    "bell\x07 escape\x1b[31m nul\x00 newline\nend",
    "\u202eevil\u200b.pdf",
    "Ü" * 400,  # 800 bytes of UTF-8
    "x" * 2000,
]


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def folder_files(document: Document) -> list[str]:
    return storage.processed_files(document.uuid)


@pytest.mark.django_db
@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_values_stay_harmless_names_inside_the_documents_own_folder(
    owner, document_storage, title, settings
):
    settings.FILENAME_FORMAT = "{correspondent}/{document_type}/{title}-{title}-{original_name}"
    # Built, not saved: PostgreSQL keeps no NUL and no title past 255 characters, but a name
    # is made from whatever a document says, and must be harmless whatever that is.
    document = DocumentFactory.build(
        owner=owner,
        document_title=title,
        correspondent="../" + "Müller " * 60,
        original_filename=title + ".pdf",
    )

    name = storage.processed_name(document.uuid, document_filed_stem(document))

    folder = storage.processed_folder(document.uuid) + "/"
    assert name.startswith(folder)
    assert name.endswith(".pdf")
    assert len(name) <= storage.MAX_STORED_NAME == Document._meta.get_field("processed_file").max_length
    for part in name.removeprefix(folder).split("/"):
        assert part not in {"", ".", ".."}
        assert len(storage.sidecar_name(part).encode()) <= 255  # any file system takes it
        assert not any(unicodedata.category(character).startswith("C") for character in part)
        assert "\\" not in part
    # Written there, the file really is inside the folder, and nowhere else.
    storage.store_bytes(b"%PDF-1.4", name)
    stored = Path(document_storage) / name
    assert stored.is_file()
    assert stored.resolve().is_relative_to((Path(document_storage) / folder).resolve())


@pytest.mark.django_db
def test_without_a_template_the_name_is_the_one_it_always_was(owner, settings):
    settings.FILENAME_FORMAT = ""
    document = DocumentFactory.create(
        owner=owner, document_title="Invoice 4711", document_date=datetime.date(2024, 3, 12)
    )
    assert storage.processed_name(document.uuid, document_filed_stem(document)) == (
        f"processed/{document.uuid.hex}/2024-03-12_Invoice_4711.pdf"
    )


# --- Filed by the pipeline -------------------------------------------------------------------


def edit_and_refile(document: Document, **changes: Any) -> Document:
    """Edit ``document`` as its owner does, then run what the edit queued (embed, finalize)."""
    document_update(viewer=Viewer(user=document.owner), document_id=document.pk, changes=changes)
    for step_name in ("embed_metadata", "finalize"):
        run = pipeline_step_run(document_id=document.pk, step_name=step_name)
        assert run.outcome == "success", (step_name, run.message)
    return fresh(document)


@pytest.fixture
def invoice_changes(owner) -> dict[str, Any]:
    acme = entry_for_name(Correspondent, owner_id=owner.pk, name="ACME GmbH", create=True)
    assert acme is not None
    return {
        "document_title": "Invoice 4711",
        "document_date": datetime.date(2024, 3, 12),
        "correspondent": acme.pk,
    }


@pytest.mark.django_db
def test_filename_format_names_the_file_and_an_edit_moves_it_leaving_one_file(
    process, trivial, settings, invoice_changes, api
):
    settings.FILENAME_FORMAT = "{created_year}/{correspondent}/{title}"
    document = edit_and_refile(process(trivial), **invoice_changes)

    folder = f"processed/{document.uuid.hex}"
    assert document.processed_file == f"{folder}/2024/ACME GmbH/Invoice 4711.pdf"
    assert folder_files(document) == sorted(
        [document.processed_file, f"{folder}/2024/ACME GmbH/Invoice 4711.json", f"{folder}/thumbnail.png"]
    )

    moved = edit_and_refile(document, document_date=datetime.date(2025, 1, 2), document_title="Reminder")

    assert moved.processed_file == f"{folder}/2025/ACME GmbH/Reminder.pdf"
    assert folder_files(moved) == sorted(
        [moved.processed_file, f"{folder}/2025/ACME GmbH/Reminder.json", f"{folder}/thumbnail.png"]
    )
    # The folders the old name made are gone with it.
    assert not (Path(settings.WORKDIR) / folder / "2024").exists()
    response = api.get(f"/api/files/{moved.pk}/download")
    assert response.status_code == 200
    assert body_of(response) == stored_bytes(moved.processed_file)
    # The download keeps the readable name, not the template's last part.
    assert disposition(response) == ("attachment", "2025-01-02_Reminder.pdf")


@pytest.mark.django_db
def test_a_storage_path_beats_filename_format(process, trivial, settings, owner, invoice_changes):
    settings.FILENAME_FORMAT = "{created_year}/{title}"
    archive = StoragePath.objects.create(
        owner=owner, name="Tax", template="tax/{correspondent}/{created_day}"
    )

    document = edit_and_refile(process(trivial), storage_path=archive.pk, **invoice_changes)

    assert document.processed_file == f"processed/{document.uuid.hex}/tax/ACME GmbH/12.pdf"
    assert storage.exists(storage.sidecar_name(document.processed_file))


@pytest.mark.django_db
def test_changing_a_storage_paths_template_refiles_every_document_using_it(
    process, trivial, owner, api, monkeypatch, sent, django_capture_on_commit_callbacks, tmp_path
):
    from documents import tasks

    # The refile task runs here, as a worker would run it; the steps it queues are captured.
    monkeypatch.setattr(tasks.documents_refile_task, "delay", tasks.documents_refile_task)
    archive = StoragePath.objects.create(owner=owner, name="Archive", template="{title}")
    using = [process(marked_copy(trivial, tmp_path / f"{n}.pdf", str(n))) for n in range(2)]
    other = process(trivial, "other.pdf")
    Document.objects.filter(pk__in=[d.pk for d in using]).update(storage_path=archive)
    for document in using:
        assert document_refile(document_id=document.pk, from_step="finalize", message="filed")
        assert pipeline_step_run(document_id=document.pk, step_name="finalize").outcome == "success"
    before = {document.pk: fresh(document).processed_file for document in [*using, other]}
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/storage-paths/{archive.pk}", {"template": "filed/{added_year}/{title}"}, format="json"
        )

    assert response.status_code == 200, response.content
    queued = sorted(call["args"][0] for call in sent if call["task"] == "documents.tasks.pipeline_step_task")
    assert queued == sorted(document.pk for document in using)  # the other document is left alone
    for document in using:
        assert pipeline_step_run(document_id=document.pk, step_name="finalize").outcome == "success"
        moved = fresh(document)
        year = timezone.localdate(moved.created_at).year
        assert moved.processed_file == (
            f"processed/{moved.uuid.hex}/filed/{year}/{segment(moved.document_title)}.pdf"
        )
        assert moved.processed_file != before[document.pk]
        assert folder_files(moved) == sorted(
            [
                moved.processed_file,
                storage.sidecar_name(moved.processed_file),
                storage.thumbnail_name(moved.uuid),
            ]
        )
    assert fresh(other).processed_file == before[other.pk]


@pytest.mark.django_db
def test_a_move_whose_worker_died_too_often_is_undone_to_the_name_the_database_gives(
    owner, document_storage, settings
):
    settings.TASK_RETRY_MAX_RETRIES = 1
    document = DocumentFactory.create(owner=owner, document_title="Invoice")
    folder = storage.processed_folder(document.uuid)
    named = f"{folder}/Invoice.pdf"
    for name in (named, storage.sidecar_name(named), storage.thumbnail_name(document.uuid)):
        storage.store_bytes(b"kept", name)
    # What a move killed halfway left: the new name, written, and a partial one.
    for name in (f"{folder}/filed/2024/Invoice.pdf", f"{folder}/filed/2024/{storage.PARTIAL_PREFIX}x"):
        storage.store_bytes(b"left", name)
    Document.objects.filter(pk=document.pk).update(processed_file=named, working_file=named)
    ProcessingStep.objects.create(
        document=document, name="finalize", position=STEP_NAMES.index("finalize"),
        status=StepStatus.IN_PROGRESS, claimed_by="celery@mover 7", attempts=2,
    )  # fmt: skip

    assert pipeline_resume_abandoned(worker_name="celery@mover") == []

    assert folder_files(document) == sorted(
        [named, storage.sidecar_name(named), storage.thumbnail_name(document.uuid)]
    )
    assert not (Path(document_storage) / folder / "filed").exists()
    assert stored_bytes(named) == b"kept"


@pytest.mark.django_db
def test_renaming_or_merging_a_correspondent_files_its_finished_documents_again(
    owner, api, monkeypatch, sent, django_capture_on_commit_callbacks
):
    from documents import tasks

    monkeypatch.setattr(tasks.documents_refile_task, "delay", tasks.documents_refile_task)
    filed = DocumentFactory.create(owner=owner, correspondent="ACME", processed_file="processed/a/b.pdf")
    still_processing = DocumentFactory.create(owner=owner, correspondent="ACME", status="processing")
    elsewhere = DocumentFactory.create(owner=owner, correspondent="Other", processed_file="processed/c/d.pdf")
    acme, other = filed.correspondent, elsewhere.correspondent
    assert acme is not None
    assert other is not None

    def refiled() -> list[tuple[int, str]]:
        steps = [tuple(call["args"]) for call in sent if call["task"] == "documents.tasks.pipeline_step_task"]
        sent.clear()
        return sorted(steps)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/correspondents/{acme.pk}", {"name": "ACME AG"}, format="json")
    assert response.status_code == 200, response.content
    # The stored name and the PDF's author follow: from embed_metadata. The document still
    # being processed gets the new name when it reaches finalize.
    assert refiled() == [(filed.pk, "embed_metadata")]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/correspondents/{other.pk}/merge", {"sources": [acme.pk]}, format="json")
    assert response.status_code == 200, response.content
    assert refiled() == [(filed.pk, "embed_metadata")]
    assert Document.objects.get(pk=still_processing.pk).correspondent_id == other.pk
