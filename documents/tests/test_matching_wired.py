"""Matching that learns, wired in: an owner's matcher is trained on their finished documents,
beat retrains it when enough changed, and extraction sets what it is sure of (recorded in the
history as matching's) while keeping every suggestion for the review inbox."""

from __future__ import annotations

import datetime

import pytest

from documents.models import ChangeOrigin, Document, DocumentChange, OwnerMatcher, Tag
from documents.organise import matching
from documents.organise.mapping import entry_for_name
from documents.organise.matching import matcher_train_owner, matchers_retrain_due
from documents.pipeline.base import StepContext
from documents.pipeline.steps import ExtractMetadataStep
from documents.tests.factories import DocumentFactory
from documents.tests.test_matching import documents

pytestmark = pytest.mark.django_db

TELEKOM_LETTER = (
    "Telekom Deutschland GmbH\nRechnung für September\nMagentaZuhause M 44,95 €\nKundennummer 4711"
)


@pytest.fixture(autouse=True)
def _small_archives(settings):
    # Fewer documents than the shipped 50 keep training quick; the rule is the same.
    settings.MATCHING_MIN_DOCUMENTS = 30
    settings.MATCHING_RETRAIN_AFTER = 5
    settings.MATCHING_CONFIDENCE_THRESHOLD = 70
    matching._cache.clear()


@pytest.fixture
def trains(monkeypatch) -> list[int]:
    """The owners a training task was sent for (instead of sending it)."""
    sent: list[int] = []
    monkeypatch.setattr("documents.tasks.matcher_train_owner_task.delay", sent.append)
    return sent


def archive(owner, count):
    """``count`` finished documents of ``owner`` from three correspondents, filed by the owner."""
    made = []
    for sample in documents(count):
        document = DocumentFactory.create(
            owner=owner,
            ocr_text=sample.text,
            document_type=sample.document_type,
            correspondent=sample.correspondent,
        )
        tags = [entry_for_name(Tag, owner_id=owner.pk, name=tag, create=True) for tag in sample.tags]
        document.tags.add(*tags)
        made.append(document)
    return made


def extract(document, tmp_path):
    ExtractMetadataStep().run(StepContext(document=document, scratch=tmp_path))
    return Document.objects.get(pk=document.pk)


def test_training_refuses_an_owner_with_too_few_documents(owner, other_user):
    archive(owner, 29)
    archive(other_user, 10)  # another owner's documents teach nothing about this one
    assert matcher_train_owner(owner_id=owner.pk) is None
    assert not OwnerMatcher.objects.exists()
    assert matchers_retrain_due() == []


def test_a_new_document_of_a_known_correspondent_gets_its_type_and_correspondent_from_matching(
    owner, tmp_path
):
    archive(owner, 45)
    stored = matcher_train_owner(owner_id=owner.pk)
    assert stored is not None
    assert stored.documents_trained == 45
    assert stored.blob

    new = extract(DocumentFactory.create(owner=owner, ocr_text=TELEKOM_LETTER, status="processing"), tmp_path)

    assert new.correspondent.name == "Telekom"
    assert new.document_type.name == "Invoice"
    assert "utilities" in {tag.name for tag in new.tags.all()}  # beside the rules' own tags
    set_by_matching = {change.field: change.new for change in DocumentChange.objects.filter(document=new)}
    assert set_by_matching["correspondent"] == "Telekom"
    assert "utilities" in (set_by_matching["tags"] or [])
    assert set(DocumentChange.objects.filter(document=new).values_list("origin", flat=True)) == {
        ChangeOrigin.MATCHING
    }
    suggestions = new.metadata["suggestions"]
    assert suggestions["correspondent"]["name"] == "Telekom"
    assert suggestions["correspondent"]["set"] is True
    assert 70 <= suggestions["correspondent"]["confidence"] <= 100


def test_fields_a_person_set_are_kept_and_the_suggestion_is_only_shown(owner, tmp_path):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    mine = DocumentFactory.create(
        owner=owner, ocr_text=TELEKOM_LETTER, correspondent="My phone company", user_fields=["correspondent"]
    )

    new = extract(mine, tmp_path)

    assert new.correspondent.name == "My phone company"
    assert new.document_type.name == "Invoice"  # not the person's: matching set it
    assert new.metadata["suggestions"]["correspondent"] == {
        **new.metadata["suggestions"]["correspondent"],
        "name": "Telekom",
        "set": False,
    }
    assert not DocumentChange.objects.filter(document=new, field="correspondent").exists()


def test_suggestions_below_the_threshold_are_only_stored(owner, settings, tmp_path):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    settings.MATCHING_CONFIDENCE_THRESHOLD = 100

    new = extract(DocumentFactory.create(owner=owner, ocr_text=TELEKOM_LETTER), tmp_path)

    assert new.correspondent is None or new.correspondent.name != "Telekom"
    assert not DocumentChange.objects.filter(document=new, origin=ChangeOrigin.MATCHING).exists()
    shown = new.metadata["suggestions"]
    assert shown["correspondent"]["name"] == "Telekom"
    assert shown["correspondent"]["set"] is False
    assert shown["document_type"]["set"] is False


def test_a_tampered_matcher_is_ignored_and_trained_again(
    owner, tmp_path, trains, django_capture_on_commit_callbacks
):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    blob = bytearray(OwnerMatcher.objects.get(owner=owner).blob)
    blob[-10] ^= 0xFF
    OwnerMatcher.objects.filter(owner=owner).update(blob=bytes(blob))

    with django_capture_on_commit_callbacks(execute=True):
        new = extract(DocumentFactory.create(owner=owner, ocr_text=TELEKOM_LETTER), tmp_path)

    assert "suggestions" not in new.metadata
    assert new.document_title  # extracted by the rules all the same
    assert trains == [owner.pk]
    assert matchers_retrain_due() == [owner.pk]  # should the task be lost, beat trains it


def test_a_matcher_stays_in_memory_until_it_is_trained_again(owner, django_assert_num_queries):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    first = matching.matcher_for_owner(owner_id=owner.pk)
    with django_assert_num_queries(1):  # only whether it is still the stored one
        assert matching.matcher_for_owner(owner_id=owner.pk) is first
    matcher_train_owner(owner_id=owner.pk)
    assert matching.matcher_for_owner(owner_id=owner.pk) is not first


def test_beat_trains_new_owners_and_retrains_after_enough_new_or_corrected_documents(
    owner, other_user, operator, clock
):
    archive(owner, 45)
    archive(other_user, 12)
    assert matchers_retrain_due() == [owner.pk]

    matcher_train_owner(owner_id=owner.pk)
    assert matchers_retrain_due() == []

    clock.shift(datetime.timedelta(minutes=1))
    new = archive(owner, 3)
    corrected = Document.objects.filter(owner=owner).order_by("pk")[:2]
    for document in corrected:
        DocumentChange.objects.create(
            document=document, origin=ChangeOrigin.PAGE, field="correspondent", old="A", new="B"
        )
    # The machine's own changes teach nothing new.
    DocumentChange.objects.create(
        document=new[0], origin=ChangeOrigin.MATCHING, field="correspondent", old="A", new="B"
    )
    assert matchers_retrain_due() == [owner.pk]  # 3 new + 2 corrected = 5


def test_matching_switched_off_trains_and_sets_nothing(owner, settings, tmp_path):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    settings.MATCHING_ENABLED = False
    assert matchers_retrain_due() == []
    new = extract(DocumentFactory.create(owner=owner, ocr_text=TELEKOM_LETTER), tmp_path)
    assert "suggestions" not in new.metadata


def test_operators_see_each_owners_matcher_in_the_admin_and_others_do_not(client, owner, operator):
    archive(owner, 45)
    matcher_train_owner(owner_id=owner.pk)
    client.force_login(operator)
    listed = client.get("/admin/documents/ownermatcher/")
    assert listed.status_code == 200
    assert "owner" in listed.content.decode()
    client.force_login(owner)
    assert client.get("/admin/documents/ownermatcher/").status_code in (302, 403)
