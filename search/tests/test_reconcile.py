"""Drift between documents and the database index: found by ``reindex --check``, repaired by ``reindex``."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.access import Viewer
from documents.models import Document, DocumentStatus
from search.models import SearchEntry
from search.services import reconcile
from search.tasks import search_reconcile_task

pytestmark = pytest.mark.django_db


def check(capsys) -> dict[str, int]:
    """``reindex --check --json``'s report; the command fails exactly when there is drift."""
    failure = ""
    try:
        call_command("reindex", "--check", "--json")
    except CommandError as error:
        failure = str(error)
    report = json.loads(capsys.readouterr().out)
    drift = report["missing"] + report["stale"] + report["orphaned"]
    assert ("run `python manage.py reindex`" in failure) == bool(drift)
    return report


def delete_behind_its_back(document: Document) -> None:
    SearchEntry.objects.filter(document=document).delete()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM search_fts WHERE rowid = %s", [document.pk])


def test_an_index_in_step_reports_no_drift(make_document, capsys):
    make_document(ocr_text="alpha")
    make_document(ocr_text="beta")
    assert check(capsys) == {"checked": 2, "missing": 0, "stale": 0, "orphaned": 0, "repaired": False}


def test_missing_stale_and_orphaned_entries_are_reported_then_repaired(make_document, owner, capsys):
    from search.selectors import search

    lost = make_document(ocr_text="zeppelin airship")
    changed = make_document(ocr_text="old words")
    gone = make_document(ocr_text="withdrawn")
    delete_behind_its_back(lost)
    Document.objects.filter(pk=changed.pk).update(ocr_text="new words")  # a change the index missed...
    changed.refresh_from_db()
    changed.save()  # ...which moved updated_at
    Document.objects.filter(pk=gone.pk).update(status=DocumentStatus.FAILED)

    assert check(capsys) == {"checked": 2, "missing": 1, "stale": 1, "orphaned": 1, "repaired": False}
    assert search(viewer=Viewer(owner), query="zeppelin ").total == 0

    call_command("reindex")
    assert "repaired" in capsys.readouterr().out
    assert check(capsys) == {"checked": 2, "missing": 0, "stale": 0, "orphaned": 0, "repaired": False}
    assert search(viewer=Viewer(owner), query="zeppelin ").total == 1
    assert search(viewer=Viewer(owner), query="new ").total == 1
    assert search(viewer=Viewer(owner), query="withdrawn ").total == 0


def test_a_deleted_documents_text_never_lingers_unnoticed(make_document):
    document = make_document(ocr_text="ghost")
    Document.objects.filter(pk=document.pk).delete()  # behind the services' back
    if connection.vendor == "sqlite":
        # FTS5 rows have no foreign key: the text outlives the document, and reconcile sees it.
        assert reconcile(repair=False).orphaned == [document.pk]
        assert reconcile(repair=True).orphaned == [document.pk]
    # On PostgreSQL the vector is part of the entry, which the database deletes with the document.
    assert reconcile(repair=False).drift == 0


def test_the_hourly_task_repairs_and_reports_counts(make_document):
    document = make_document(ocr_text="hourly")
    delete_behind_its_back(document)
    assert search_reconcile_task() == {"missing": 1, "stale": 0, "orphaned": 0}
    assert search_reconcile_task() == {"missing": 0, "stale": 0, "orphaned": 0}
