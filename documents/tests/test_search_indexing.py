"""Processing makes a document findable, deleting it makes it unfindable, and an index that
is down never fails a document."""

from __future__ import annotations

import pytest

from accounts.access import Viewer
from documents.models import DocumentStatus
from documents.pipeline.runner import pipeline_run_sync
from documents.services import document_delete, document_reprocess
from search.selectors import search
from search.services import reconcile

pytestmark = pytest.mark.django_db


def test_a_processed_document_is_found_by_a_word_of_its_ocr_text(process, samples, owner):
    document = process(samples / "scan.pdf")
    assert document.status == DocumentStatus.COMPLETED
    found = search(viewer=Viewer(owner), query="ChronoScribe ")
    assert [result.document.pk for result in found.results] == [document.pk]


def test_the_last_step_of_a_worker_run_queues_the_indexing(
    engines, sent, trivial, ingest, owner, django_capture_on_commit_callbacks
):
    from documents.tasks import pipeline_step_task

    document = ingest(trivial)
    with django_capture_on_commit_callbacks(execute=True):
        for step in ("convert", "ocr", "extract_metadata", "embed_metadata", "finalize"):
            pipeline_step_task.apply(args=(document.pk, step))
    indexing = [message for message in sent if message["task"] == "search.tasks.search_index_document_task"]
    assert [message["args"] for message in indexing] == [(document.pk,)]


def test_deleting_a_document_queues_its_removal_from_the_index(
    sent, process, trivial, django_capture_on_commit_callbacks
):
    document = process(trivial)
    document_id = document.pk
    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)
    removal = [message for message in sent if message["task"] == "search.tasks.search_remove_document_task"]
    assert [message["args"] for message in removal] == [(document_id,)]


def test_an_unreachable_index_leaves_the_document_completed_and_reconcile_finds_it(
    process, trivial, settings
):
    settings.MEILISEARCH_URL = "http://127.0.0.1:9"  # nothing listens there
    document = process(trivial)
    assert document.status == DocumentStatus.COMPLETED
    settings.MEILISEARCH_URL = None  # back to the database index, which never saw it
    assert reconcile(repair=False).missing == [document.pk]


def test_a_reprocessing_that_fails_takes_the_document_out_of_the_search(
    process, samples, owner, document_storage
):
    document = process(samples / "scan.pdf")
    assert search(viewer=Viewer(owner), query="ChronoScribe ").total == 1
    # The original is damaged on disk since, so the next run cannot convert it.
    (document_storage / document.original_file).write_bytes(b"%PDF-1.4 broken beyond repair")
    document_reprocess(document=document, enqueue=False)
    assert pipeline_run_sync(document_id=document.pk).status == DocumentStatus.FAILED
    assert search(viewer=Viewer(owner), query="ChronoScribe ").total == 0
