"""The review inbox: which documents wait (unsure extraction, an inbox tag; only one's own),
confirming one takes its inbox tags off and lets it leave, a correction on the page is an
edit like any other; the API answers the same, and another user's document does not exist."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.access import Viewer
from documents.models import ChangeOrigin, DocumentChange, DocumentStatus, Tag
from documents.organise.mapping import entry_for_name
from documents.organise.review import review_queue
from documents.pipeline.base import StepContext
from documents.pipeline.steps import ExtractMetadataStep
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True
    settings.CONFIDENCE_REVIEW_THRESHOLD = 70


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def tag(owner, name, *, inbox=False):
    made = entry_for_name(Tag, owner_id=owner.pk, name=name, create=True)
    assert made is not None
    if inbox:
        Tag.objects.filter(pk=made.pk).update(is_inbox=True)
        made.refresh_from_db()
    return made


@pytest.fixture
def waiting(owner, other_user):
    """The owner's archive: two documents that wait, and three that do not; another user's
    unsure document."""
    unsure = DocumentFactory.create(owner=owner, confidence=40, document_title="Unsure letter", ocr_text="x")
    tagged = DocumentFactory.create(owner=owner, confidence=95, document_title="New scan", ocr_text="y")
    tagged.tags.add(tag(owner, "Inbox", inbox=True), tag(owner, "bank"))
    DocumentFactory.create(owner=owner, confidence=90, document_title="Sure invoice")
    DocumentFactory.create(owner=owner, confidence=10, status=DocumentStatus.PROCESSING)
    DocumentFactory.create(owner=owner, confidence=10, trashed_at=timezone.now())
    DocumentFactory.create(owner=other_user, confidence=10, document_title="Someone else's")
    return unsure, tagged


def queue_ids(user) -> list[int]:
    return list(review_queue(viewer=Viewer(user=user)).values_list("pk", flat=True))


def test_unsure_and_inbox_tagged_documents_wait_and_nothing_of_another_user(owner, other_user, waiting):
    unsure, tagged = waiting
    assert queue_ids(owner) == [unsure.pk, tagged.pk]
    answer = api(owner).get("/api/review")
    assert answer.status_code == 200
    files = answer.json()["files"]
    assert [file["id"] for file in files] == [unsure.pk, tagged.pk]
    assert files[1]["inbox"] is True
    assert answer.json()["pagination"]["total"] == 2
    assert [file["document_title"] for file in api(other_user).get("/api/review").json()["files"]] == [
        "Someone else's"
    ]


def test_confirming_takes_the_inbox_tag_off_and_the_document_leaves_the_queue(owner, waiting):
    unsure, tagged = waiting
    answer = api(owner).post(f"/api/files/{tagged.pk}/review", {"version": tagged.version}, format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["reviewed"]["tags"] == ["bank"]
    assert answer.json()["next"] == unsure.pk
    assert answer.json()["remaining"] == 1
    assert queue_ids(owner) == [unsure.pk]
    assert [t.name for t in tagged.tags.all()] == ["bank"]
    fields = set(DocumentChange.objects.filter(document=tagged).values_list("field", "origin"))
    assert fields == {("tags", ChangeOrigin.API), ("reviewed", ChangeOrigin.API)}


def test_an_unsure_document_once_confirmed_stays_out_even_after_it_is_extracted_again(
    owner, waiting, tmp_path
):
    unsure, _ = waiting
    assert api(owner).post(f"/api/files/{unsure.pk}/review", {}, format="json").status_code == 200
    unsure.refresh_from_db()  # as the pipeline reads it
    ExtractMetadataStep().run(StepContext(document=unsure, scratch=tmp_path))
    assert unsure.pk not in queue_ids(owner)


def test_a_confirmation_made_on_an_older_reading_is_refused(owner, waiting):
    unsure, _ = waiting
    answer = api(owner).post(
        f"/api/files/{unsure.pk}/review", {"document_title": "Mine"}, format="json", HTTP_IF_MATCH='"99"'
    )
    assert answer.status_code == 412
    assert unsure.pk in queue_ids(owner)


def test_another_users_document_cannot_be_reviewed(owner, other_user, waiting):
    unsure, _ = waiting
    answer = api(other_user).post(f"/api/files/{unsure.pk}/review", {}, format="json")
    assert answer.status_code == 404
    assert unsure.pk in queue_ids(owner)


def test_the_page_shows_one_document_with_its_suggestions_and_the_nav_counts_what_waits(
    client, owner, waiting
):
    unsure, _ = waiting
    unsure.metadata = {
        "suggestions": {"correspondent": {"id": None, "name": "Telekom", "confidence": 64, "set": False}}
    }
    unsure.save()
    client.force_login(owner)

    page = client.get("/review")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Unsure letter" in html
    assert "Document 1 of 2 waiting" in html
    assert "Correspondent: Telekom" in html
    assert "64 %" in html
    assert f"/files/{unsure.pk}/thumbnail" in html
    assert 'data-review-count="2"' in html
    assert "js/review." in html


def test_a_correction_on_the_page_is_an_edit_and_the_next_document_follows(client, owner, waiting):
    unsure, tagged = waiting
    client.force_login(owner)
    invoice = tag(owner, "invoice")

    answer = client.post(
        f"/review/{unsure.pk}",
        {"version": unsure.version, "document_title": "Electricity bill", "document_type": "",
         "correspondent": "", "document_date": "2024-03-12", "tags": [invoice.pk]},
    )  # fmt: skip

    assert answer.status_code == 302
    assert answer["Location"] == f"/review?id={tagged.pk}"
    unsure.refresh_from_db()
    assert unsure.document_title == "Electricity bill"
    assert unsure.document_date.isoformat() == "2024-03-12"
    assert [t.name for t in unsure.tags.all()] == ["invoice"]
    assert {"document_title", "document_date", "tags"} <= set(unsure.user_fields)
    assert set(DocumentChange.objects.filter(document=unsure).values_list("origin", flat=True)) == {
        ChangeOrigin.PAGE
    }
    assert queue_ids(owner) == [tagged.pk]


def test_the_page_says_when_nothing_waits_and_another_users_document_is_not_confirmed(
    client, owner, other_user, waiting
):
    unsure, _ = waiting
    client.force_login(other_user)
    answer = client.post(f"/review/{unsure.pk}", {"version": unsure.version, "document_title": "Taken"})
    assert answer.status_code == 302
    unsure.refresh_from_db()
    assert unsure.document_title == "Unsure letter"

    api(other_user).post(f"/api/files/{queue_ids(other_user)[0]}/review", {}, format="json")
    page = client.get("/review")
    assert "Nothing waits for review" in page.content.decode()
    assert "data-review-count" not in page.content.decode()


def test_the_queue_costs_the_same_few_queries_for_two_documents_or_twenty(
    client, owner, waiting, django_assert_max_num_queries
):
    client.force_login(owner)
    with django_assert_max_num_queries(12) as few:  # the session, the user, the queue and its page
        api(owner).get("/api/review")
        client.get("/review")
    for number in range(18):
        made = DocumentFactory.create(owner=owner, confidence=20, document_title=f"Scan {number}")
        made.tags.add(tag(owner, f"tag {number}"))
    with django_assert_max_num_queries(len(few)):
        assert len(api(owner).get("/api/review").json()["files"]) == 20
        client.get("/review")


def test_a_page_confirmation_made_on_an_older_reading_says_so_and_changes_nothing(client, owner, waiting):
    unsure, _ = waiting
    client.force_login(owner)
    answer = client.post(f"/review/{unsure.pk}", {"version": unsure.version + 5, "document_title": "Mine"})
    assert answer.status_code == 400
    assert "Someone changed this document after you opened it" in answer.content.decode()
    unsure.refresh_from_db()
    assert unsure.document_title == "Unsure letter"
    assert unsure.pk in queue_ids(owner)
