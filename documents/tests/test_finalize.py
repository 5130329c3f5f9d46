"""Where the finalize step files a document: a name of its own that no other document can get.

Two owners' documents with the same extracted title, finalised by two workers at the same
moment, once ended up in one stored file: each owner downloaded whichever PDF was written
last, and deleting one deleted the other's. These tests run the real steps in two threads
held at a barrier right before the processed PDF is written.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path, PurePosixPath

import pikepdf
import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from documents import storage
from documents.models import Document, DocumentStatus
from documents.pipeline.runner import pipeline_run_sync, pipeline_step_run
from documents.pipeline.steps import STEP_NAMES
from documents.services import document_delete, document_reprocess, document_retry_step
from documents.tests.conftest import stored_bytes
from documents.tests.test_api_download import body_of, disposition

BEFORE_FINALIZE = STEP_NAMES[: STEP_NAMES.index("finalize")]
MARKER = "/DocuElevateTestOwner"


def marked_copy(source: Path, target: Path, marker: str) -> Path:
    """``source`` with a document-info entry of its own: the same text, so the same extracted
    title, but other bytes (and no duplicate), and a mark that survives processing."""
    with pikepdf.open(source) as pdf:
        pdf.docinfo[MARKER] = marker
        pdf.save(target)
    return target


def marker_of(pdf_bytes: bytes) -> str:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        return str(pdf.docinfo.get(MARKER, ""))


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def up_to_finalize(document: Document) -> Document:
    """Run every step before finalize, so that only finalize is left to race."""
    for step_name in BEFORE_FINALIZE:
        run = pipeline_step_run(document_id=document.pk, step_name=step_name)
        assert run.outcome in {"success", "skipped"}, (step_name, run.message)
    return fresh(document)


def finalize_together(documents: list[Document], monkeypatch: pytest.MonkeyPatch) -> dict[int, str]:
    """Finalize every document at once, one thread (one database connection) each.

    Every thread waits at a barrier just before its processed PDF is stored: after whatever
    the step checked about the name and before the file is there, which is where two workers
    finishing at the same moment meet. Returns each document's step outcome.
    """
    barrier = threading.Barrier(len(documents), timeout=60)
    store_file = storage.store_file

    def store_file_together(local_path: Path, name: str) -> str:
        if name.startswith("processed/") and name.endswith(".pdf"):
            barrier.wait()
        return store_file(local_path, name)

    monkeypatch.setattr(storage, "store_file", store_file_together)
    outcomes: dict[int, str] = {}
    crashes: list[BaseException] = []

    def finalize(document_id: int) -> None:
        try:
            outcomes[document_id] = pipeline_step_run(document_id=document_id, step_name="finalize").outcome
        except BaseException as exc:  # handed to the test's thread, which fails with it
            crashes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(document.pk,)) for document in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not crashes, crashes
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def processed_names(folder: Path) -> list[str]:
    processed = folder / "processed"
    return sorted(path.relative_to(folder).as_posix() for path in processed.rglob("*") if path.is_file())


@pytest.mark.django_db(transaction=True)
def test_two_owners_documents_with_the_same_title_finalised_at_once_keep_a_file_each(
    engines, ingest, trivial, owner, other_user, tmp_path, document_storage, monkeypatch
):
    mine = up_to_finalize(ingest(marked_copy(trivial, tmp_path / "a.pdf", "owner"), "Invoice.pdf"))
    theirs = up_to_finalize(
        ingest(marked_copy(trivial, tmp_path / "b.pdf", "other_user"), "Invoice.pdf", user=other_user)
    )
    assert mine.document_title == theirs.document_title  # the same pretty name is wanted by both

    outcomes = finalize_together([mine, theirs], monkeypatch)

    assert outcomes == {mine.pk: "success", theirs.pk: "success"}
    mine, theirs = fresh(mine), fresh(theirs)
    assert mine.processed_file != theirs.processed_file
    names = {}
    for document, user in ((mine, owner), (theirs, other_user)):
        response = client_for(user).get(f"/api/files/{document.pk}/download")
        assert response.status_code == 200
        assert marker_of(body_of(response)) == user.username  # each owner gets their own PDF
        names[user.username] = disposition(response)[1]
        sidecar = json.loads(stored_bytes(document.processed_file.removesuffix(".pdf") + ".json"))
        assert sidecar["document_id"] == document.pk
    # Both see the same name: nothing in it (no "_2") tells either that the other exists.
    assert names["owner"] == names["other_user"] == PurePosixPath(mine.processed_file).name

    response = client_for(owner).delete(f"/api/files/{mine.pk}")
    assert response.status_code == 204
    # Deleted for good once the trash is emptied.
    assert client_for(owner).delete("/api/trash").json() == {"deleted": 1}

    response = client_for(other_user).get(f"/api/files/{theirs.pk}/download")
    assert response.status_code == 200
    assert marker_of(body_of(response)) == "other_user"
    assert processed_names(document_storage) == sorted(
        [
            theirs.processed_file,
            theirs.processed_file.removesuffix(".pdf") + ".json",
            storage.thumbnail_name(theirs.uuid),
        ]
    )


@pytest.mark.django_db
def test_a_document_is_filed_in_a_folder_of_its_own_under_its_readable_name(api, process, trivial):
    document = process(trivial, "Invoice.pdf")

    assert document.processed_file == f"processed/{document.uuid.hex}/{document.document_title}.pdf"
    response = api.get(f"/api/files/{document.pk}/preview")
    assert disposition(response) == ("inline", f"{document.document_title}.pdf")


@pytest.mark.django_db
def test_a_new_name_on_a_second_run_replaces_the_documents_own_file_and_leaves_others_alone(
    process, trivial, ingest, other_user, document_storage
):
    document = process(trivial, "Invoice.pdf")
    other = pipeline_run_sync(document_id=ingest(trivial, "Invoice.pdf", user=other_user).pk)
    others_files = [other.processed_file, storage.sidecar_name(other.processed_file)]
    Document.objects.filter(pk=document.pk).update(metadata={**document.metadata, "filename": "Renamed"})

    document_retry_step(document=document, step_name="finalize", enqueue=False)
    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.COMPLETED
    folder = f"processed/{document.uuid.hex}"
    assert document.processed_file == f"{folder}/Renamed.pdf"
    assert processed_names(document_storage) == sorted(
        [
            f"{folder}/Renamed.json",
            f"{folder}/Renamed.pdf",
            f"{folder}/thumbnail.png",  # the same picture's name whatever the PDF's
            *others_files,
            storage.thumbnail_name(other.uuid),
        ]
    )
    assert [stored_bytes(name)[:5] for name in others_files] == [b"%PDF-", b'{\n  "']


def file_under_a_flat_name(document: Document, flat_name: str) -> Document:
    """``document`` as older versions filed it: ``processed/<name>.pdf``, no folder of its own."""
    storage.store_bytes(stored_bytes(document.processed_file), flat_name)
    storage.store_bytes(
        stored_bytes(storage.sidecar_name(document.processed_file)), storage.sidecar_name(flat_name)
    )
    storage.delete_folder(storage.processed_folder(document.uuid))
    Document.objects.filter(pk=document.pk).update(processed_file=flat_name, working_file=flat_name)
    return fresh(document)


@pytest.mark.django_db
def test_a_document_filed_under_a_flat_name_before_folders_still_downloads_under_that_name(
    api, process, trivial
):
    document = file_under_a_flat_name(process(trivial), "processed/2024-03-12_Invoice.pdf")

    response = api.get(f"/api/files/{document.pk}/download")

    assert response.status_code == 200
    assert disposition(response) == ("attachment", "2024-03-12_Invoice.pdf")
    assert body_of(response) == stored_bytes("processed/2024-03-12_Invoice.pdf")


@pytest.mark.django_db
def test_a_flat_file_two_documents_were_given_is_kept_until_the_last_of_them_leaves_it(
    process, trivial, ingest, other_user, document_storage, django_capture_on_commit_callbacks
):
    flat = "processed/Invoice.pdf"
    mine = file_under_a_flat_name(process(trivial, "Invoice.pdf"), flat)
    theirs = pipeline_run_sync(document_id=ingest(trivial, "Invoice.pdf", user=other_user).pk)
    # What the race left behind: the other document's row names the same flat file.
    storage.delete_folder(storage.processed_folder(theirs.uuid))
    Document.objects.filter(pk=theirs.pk).update(processed_file=flat, working_file=flat)

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=mine)

    assert processed_names(document_storage) == ["processed/Invoice.json", flat]  # theirs still names it

    document_reprocess(document=fresh(theirs), enqueue=False)
    theirs = pipeline_run_sync(document_id=theirs.pk)

    assert theirs.status == DocumentStatus.COMPLETED
    assert theirs.processed_file.startswith(f"processed/{theirs.uuid.hex}/")
    assert processed_names(document_storage) == sorted(
        [
            theirs.processed_file,
            storage.sidecar_name(theirs.processed_file),
            storage.thumbnail_name(theirs.uuid),
        ]
    )  # moved into its own folder; the flat file, no one's any more, is gone


@pytest.mark.django_db
def test_deleting_a_document_removes_its_processed_folder_and_nothing_of_another_document(
    process, trivial, ingest, other_user, document_storage, django_capture_on_commit_callbacks
):
    document = process(trivial, "Invoice.pdf")
    other = pipeline_run_sync(document_id=ingest(trivial, "Invoice.pdf", user=other_user).pk)

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)

    assert not (document_storage / "processed" / document.uuid.hex).exists()
    assert processed_names(document_storage) == sorted(
        [other.processed_file, storage.sidecar_name(other.processed_file), storage.thumbnail_name(other.uuid)]
    )
