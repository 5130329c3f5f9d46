"""The /trash page: what is in the viewer's trash, restoring, emptying it now, legal hold."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone

from documents import storage
from documents.models import Document
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True
    settings.EMPTY_TRASH_DELAY = 30


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def trashed(user, *, days_ago: float = 0, **fields) -> Document:
    return DocumentFactory.create(
        owner=user, trashed_at=timezone.now() - datetime.timedelta(days=days_ago), **fields
    )


def rows(html: str) -> list[str]:
    """The trash table's rows as text, newest first."""
    found = re.findall(r'<tr id="trashed-\d+"[^>]*>(.*?)</tr>', html, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in found]


def test_the_trash_lists_the_viewers_trashed_documents_with_the_days_left(client, owner, other_user):
    trashed(owner, days_ago=10, document_title="Old bill", original_filename="old.pdf")
    trashed(owner, days_ago=0.5, document_title="New bill", original_filename="new.pdf")
    trashed(owner, days_ago=1, original_filename="held.pdf", legal_hold=True)
    trashed(other_user, original_filename="theirs.pdf")
    DocumentFactory.create(owner=owner, original_filename="kept.pdf")

    response = signed_in(client, owner).get("/trash")

    assert response.status_code == 200
    shown = rows(response.content.decode())
    assert len(shown) == 3
    assert shown[0].startswith("New bill new.pdf")
    assert shown[1].startswith("— held.pdf")
    assert shown[2].startswith("Old bill old.pdf")
    assert [row.split(" ")[-3:-1] for row in shown] == [["30", "days"], ["legal", "hold"], ["20", "days"]]
    assert "theirs.pdf" not in response.content.decode()
    assert "kept.pdf" not in response.content.decode()
    assert 'href="/trash"' in response.content.decode()  # the link in the header


def test_an_empty_trash_says_how_long_documents_wait_there(client, owner):
    html = signed_in(client, owner).get("/trash").content.decode()

    assert "The trash is empty." in html
    assert "Empty trash now" not in html


def test_restore_brings_the_document_back_to_the_files_list(
    client, owner, django_capture_on_commit_callbacks
):
    document = trashed(owner, original_filename="back.pdf")
    page = signed_in(client, owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(f"/trash/{document.pk}/restore", follow=True)

    assert "back.pdf is back among your files." in response.content.decode()
    assert Document.objects.get(pk=document.pk).trashed_at is None
    assert page.get(f"/files/{document.pk}").status_code == 200
    assert rows(response.content.decode()) == []


def test_another_users_trashed_document_is_a_404_to_restore(client, owner, other_user):
    theirs = trashed(other_user)
    page = signed_in(client, owner)

    assert page.post(f"/trash/{theirs.pk}/restore").status_code == 404
    assert Document.objects.get(pk=theirs.pk).trashed_at is not None
    # A document that is not in the trash is not restorable either.
    assert page.post(f"/trash/{DocumentFactory.create(owner=owner).pk}/restore").status_code == 404


def test_empty_trash_now_deletes_the_viewers_trash_for_good_and_keeps_legal_hold_with_a_message(
    client, owner, other_user, ingest, django_capture_on_commit_callbacks
):
    stored = ingest(b"This is a note that goes to the trash.", "gone.txt")
    Document.objects.filter(pk=stored.pk).update(trashed_at=timezone.now())
    trashed(owner, original_filename="also-gone.pdf")
    held = trashed(owner, original_filename="held.pdf", legal_hold=True)
    theirs = trashed(other_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(client, owner).post("/trash/empty", follow=True)

    html = response.content.decode()
    assert "2 documents deleted for good." in html
    assert "1 document is under legal hold and cannot be deleted: it stays in the trash." in html
    assert sorted(Document.objects.values_list("pk", flat=True)) == sorted([held.pk, theirs.pk])
    assert not storage.exists(stored.original_file)
    assert [row.split(" ")[1] for row in rows(html)] == ["held.pdf"]


def test_the_empty_button_asks_first_and_the_routes_need_a_post(client, owner):
    trashed(owner)
    page = signed_in(client, owner)

    html = page.get("/trash").content.decode()

    assert re.search(r'action="/trash/empty"[^>]*data-confirm="Delete every document', html)
    assert page.get("/trash/empty").status_code == 405
    assert page.get("/trash/1/restore").status_code == 405


def test_a_document_under_legal_hold_is_not_trashed_from_its_page_and_says_why(client, owner):
    held = DocumentFactory.create(owner=owner, legal_hold=True)

    response = signed_in(client, owner).post(f"/files/{held.pk}/delete", follow=True)

    assert "The document is under legal hold and cannot be deleted." in response.content.decode()
    assert Document.objects.get(pk=held.pk).trashed_at is None


def test_thirty_trashed_documents_cost_a_fixed_handful_of_queries(
    client, owner, django_assert_max_num_queries
):
    page = signed_in(client, owner)
    for _ in range(30):
        trashed(owner)

    with django_assert_max_num_queries(12):
        response = page.get("/trash")

    assert len(rows(response.content.decode())) == 30
