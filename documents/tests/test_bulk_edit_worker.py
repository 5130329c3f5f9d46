"""A bulk edit done by a real Celery worker: 300 documents tagged through the API, progress
followed until done."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from conftest import log_tails, wait_until
from documents.models import Document, DocumentChange, Tag
from documents.tests.factories import DocumentFactory

# A chunk is 500 documents; 300 make one, with history rows and search entries each.
WORKER_TIMEOUT = 180


@pytest.mark.django_db(transaction=True)
def test_a_worker_tags_300_documents_asked_through_the_api_and_the_progress_reaches_done(
    owner, worker_env, start_worker, tmp_path
):
    documents = DocumentFactory.create_batch(300, owner=owner)
    tag = Tag.objects.create(owner=owner, name="Archive 2025")
    api = APIClient()
    api.force_authenticate(owner)
    start_worker(worker_env, queues="default")

    answer = api.post(
        "/api/files/bulk-edit",
        {"documents": [d.pk for d in documents], "action": "add_tags", "parameters": {"tags": [tag.pk]}},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    progress = f"/api/bulk-operations/{answer.json()['operation_id']}"

    finished = wait_until(
        lambda: (state := api.get(progress).json())["status"] in ("done", "failed") and state,
        timeout=WORKER_TIMEOUT,
        what="the worker to finish the bulk edit",
        details=log_tails(tmp_path),
    )

    assert (finished["status"], finished["done"], finished["total"], finished["failed"]) == (
        "done",
        300,
        300,
        0,
    )
    assert tag.documents.count() == 300
    assert DocumentChange.objects.filter(field="tags", origin="bulk").count() == 300
    assert set(Document.objects.values_list("version", flat=True)) == {2}
