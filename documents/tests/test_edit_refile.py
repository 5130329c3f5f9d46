"""An edit of a finished document is written into its PDF and sidecar, renames its file, and
survives reprocessing: with the real pipeline, in this process."""

from __future__ import annotations

import json

import pikepdf
import pytest

from documents import storage
from documents.models import Correspondent, Document, DocumentStatus
from documents.pipeline.runner import pipeline_run_sync
from documents.services import document_reprocess
from documents.tests.conftest import stored_bytes
from documents.tests.samples import text_pdf

pytestmark = pytest.mark.django_db

LETTER = (
    "Stadtwerke Musterstadt GmbH\nHauptstrasse 1, 12345 Musterstadt\n\nRechnung Nr. RE-2024-0042\n"
    "Datum: 12.03.2024\n\nStrom Maerz 2024\nGesamtbetrag: 84,20 EUR\n"
)


def test_an_edit_is_written_into_the_pdf_and_sidecar_renames_the_file_and_survives_reprocess(
    api, process, owner, sent, django_capture_on_commit_callbacks
):
    document = process(text_pdf(LETTER), "scan-0042.pdf")
    assert document.status == DocumentStatus.COMPLETED
    old_file = document.processed_file
    mine = Correspondent.objects.create(owner=owner, name="My power company")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/files/{document.pk}",
            {"document_title": "Electricity March", "correspondent": mine.pk, "document_date": "2024-03-31"},
            format="json",
        )
    assert response.status_code == 200, response.json()
    # The edit queued embed_metadata for the workers; run what is pending here instead.
    assert [call["args"][1] for call in sent if call["task"] == "documents.tasks.pipeline_step_task"] == [
        "embed_metadata"
    ]
    document = pipeline_run_sync(document_id=document.pk)

    assert document.status == DocumentStatus.COMPLETED
    assert document.processed_file == f"processed/{document.uuid.hex}/2024-03-31_Electricity_March.pdf"
    assert not storage.exists(old_file)
    with storage.local_copy(document.processed_file) as local, pikepdf.open(local) as pdf:
        xmp = pdf.open_metadata()
        assert xmp["dc:title"] == "Electricity March"
        assert xmp["dc:creator"] == ["My power company"]
    sidecar = json.loads(stored_bytes(storage.sidecar_name(document.processed_file)))
    assert (sidecar["title"], sidecar["correspondent"], sidecar["document_date"]) == (
        "Electricity March", "My power company", "2024-03-31"
    )  # fmt: skip

    document_reprocess(document=document, enqueue=False)
    document = pipeline_run_sync(document_id=document.pk)

    kept = Document.objects.get(pk=document.pk)
    assert (kept.document_title, kept.correspondent_name, str(kept.document_date)) == (
        "Electricity March", "My power company", "2024-03-31"
    )  # fmt: skip
    assert kept.processed_file == document.processed_file
