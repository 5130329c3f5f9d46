"""PATCH /api/files/{id}, the managed lists, notes, history and the trash, through the API,
for the owner, another user and an operator."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.access import Viewer
from documents.models import CustomFieldValue, Document, DocumentChange, DocumentStatus, StepStatus, Tag
from documents.organise.trash import trash_empty
from search.selectors import search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True


def client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def letter(ingest) -> Document:
    """A finished document as extraction left it."""
    document = ingest(b"Dear customer, your invoice is attached. Regards, ACME", "letter.txt")
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.COMPLETED, document_title="Scan 001", processed_file=""
    )
    document.steps.update(status=StepStatus.SUCCESS)
    return Document.objects.get(pk=document.pk)


def edit(user, document, data, **headers):
    return client(user).patch(f"/api/files/{document.pk}", data, format="json", **headers)


# --- Editing ---------------------------------------------------------------------------------


def test_an_edit_changes_the_fields_records_history_and_is_found_by_search_at_once(
    owner, letter, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(
            owner, letter,
            {"document_title": "Electricity bill March", "document_type": "Invoice", "correspondent": None,
             "document_date": "2024-03-12", "language": "en"},
        )  # fmt: skip

    assert response.status_code == 200, response.json()
    file = response.json()["file"]
    assert file["document_title"] == "Electricity bill March"
    assert file["document_type"] == "Invoice"  # the global type, found by its name
    assert file["document_date"] == "2024-03-12"
    assert response["ETag"] == '"2"'
    assert file["version"] == 2
    assert set(file["user_fields"]) >= {"document_title", "document_type", "document_date", "language"}
    changes = {
        change.field: (change.old, change.new) for change in DocumentChange.objects.filter(document=letter)
    }
    assert changes["document_title"] == ("Scan 001", "Electricity bill March")
    assert changes["document_type"] == (None, "Invoice")
    assert "correspondent" not in changes  # it was empty, and stays so
    history = client(owner).get(f"/api/files/{letter.pk}/history").json()["changes"]
    assert {row["field"] for row in history} >= {"document_title", "document_date"}
    assert history[0]["actor"] == owner.username
    found = search(viewer=Viewer(user=owner), query="electricity")
    assert [result.document.pk for result in found.results] == [letter.pk]


def test_a_second_save_on_an_older_reading_gets_412_never_a_silent_overwrite(owner, letter):
    etag = client(owner).get(f"/api/files/{letter.pk}")["ETag"]
    first = edit(owner, letter, {"document_title": "Mine"}, HTTP_IF_MATCH=etag)
    second = edit(owner, letter, {"document_title": "Theirs"}, HTTP_IF_MATCH=etag)
    in_body = edit(owner, letter, {"document_title": "Theirs", "version": 1})

    assert first.status_code == 200
    assert second.status_code == 412
    assert "reload" in second.json()["detail"]
    assert second["ETag"] == '"2"'
    assert in_body.status_code == 412
    assert Document.objects.get(pk=letter.pk).document_title == "Mine"


def test_tags_are_set_by_id_or_name_and_another_users_tag_is_refused(owner, other_user, letter):
    own = client(owner).post("/api/tags", {"name": "Bills", "colour": "#1f77b4"}, format="json").json()
    foreign = client(other_user).post("/api/tags", {"name": "Secret"}, format="json").json()

    by_name = edit(owner, letter, {"tags": ["bills"]})
    refused = edit(owner, letter, {"tags": [own["id"], foreign["id"]]})

    assert by_name.status_code == 200
    assert by_name.json()["file"]["tags"] == ["Bills"]
    assert refused.status_code == 400
    assert str(foreign["id"]) in refused.json()["detail"]
    assert list(letter.tags.values_list("name", flat=True)) == ["Bills"]


def test_another_users_document_is_not_found_and_an_operator_may_edit_it(owner, other_user, operator, letter):
    assert edit(other_user, letter, {"document_title": "x"}).status_code == 404
    assert edit(operator, letter, {"document_title": "Filed by the operator"}).status_code == 200
    assert edit(owner, letter, {"owner": other_user.pk}).status_code == 403
    assert edit(operator, letter, {"owner": other_user.pk}).status_code == 200
    assert Document.objects.get(pk=letter.pk).owner == other_user


@pytest.mark.parametrize(
    "data",
    [
        {"document_title": ""},
        {"document_date": "12.03.2024"},
        {"language": "english!"},
        {"document_type": 999999},
        {"tags": "bills"},
        {"custom_fields": {"999999": "x"}},
        {"status": "completed"},
    ],
    ids=[
        "empty title",
        "bad date",
        "bad language",
        "unknown type",
        "tags not a list",
        "unknown field",
        "status",
    ],
)
def test_malformed_edits_are_refused_with_a_reason_and_change_nothing(owner, letter, data):
    response = edit(owner, letter, data)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert Document.objects.get(pk=letter.pk).version == letter.version


def test_custom_field_values_are_typed_checked_and_shown(owner, letter):
    api = client(owner)
    total = api.post(
        "/api/custom-fields",
        {"name": "Total", "data_type": "monetary", "default_currency": "EUR"},
        format="json",
    ).json()
    due = api.post("/api/custom-fields", {"name": "Due", "data_type": "date"}, format="json").json()

    response = edit(
        owner, letter, {"custom_fields": {str(total["id"]): "1234.5", str(due["id"]): "2024-04-01"}}
    )
    wrong = edit(owner, letter, {"custom_fields": {str(total["id"]): "a lot"}})

    assert response.status_code == 200, response.json()
    shown = {value["name"]: value["value"] for value in response.json()["custom_fields"]}
    assert shown == {"Due": "2024-04-01", "Total": {"amount": "1234.50", "currency": "EUR"}}
    assert CustomFieldValue.objects.get(document=letter, field_id=total["id"]).value_decimal == Decimal(
        "1234.5"
    )
    assert wrong.status_code == 400
    assert "Total" in wrong.json()["detail"]


# --- The managed lists ----------------------------------------------------------------------


def test_a_list_counts_documents_and_entries_are_renamed_merged_and_deleted(owner, letter, ingest):
    api = client(owner)
    second = ingest(b"Another letter from the electricity company", "second.txt")
    acme = api.post("/api/correspondents", {"name": "ACME GmbH"}, format="json").json()
    typo = api.post("/api/correspondents", {"name": "ACME GmbH (typo)"}, format="json").json()
    edit(owner, letter, {"correspondent": acme["id"]})
    edit(owner, second, {"correspondent": typo["id"]})

    counts = {entry["name"]: entry["document_count"] for entry in api.get("/api/correspondents").json()}
    renamed = api.patch(f"/api/correspondents/{acme['id']}", {"name": "ACME Energy"}, format="json")
    merged = api.post(f"/api/correspondents/{acme['id']}/merge", {"sources": [typo["id"]]}, format="json")

    assert counts == {"ACME GmbH": 1, "ACME GmbH (typo)": 1}
    assert renamed.json()["name"] == "ACME Energy"
    assert merged.status_code == 200
    assert merged.json()["document_count"] == 2
    assert Document.objects.get(pk=second.pk).correspondent_name == "ACME Energy"
    assert api.get(f"/api/correspondents/{typo['id']}").status_code == 404
    moved = DocumentChange.objects.get(document=second, origin="merge")
    assert (moved.old, moved.new) == ("ACME GmbH (typo)", "ACME Energy")

    assert api.delete(f"/api/correspondents/{acme['id']}").status_code == 204
    assert Document.objects.get(pk=letter.pk).correspondent is None


def test_names_are_unique_per_owner_whatever_their_case_or_accents(owner, other_user):
    api = client(owner)
    assert api.post("/api/tags", {"name": "Müller"}, format="json").status_code == 201
    again = api.post("/api/tags", {"name": "  MULLER "}, format="json")
    theirs = client(other_user).post("/api/tags", {"name": "Müller"}, format="json")

    assert again.status_code == 409
    assert theirs.status_code == 201  # another owner's list


def test_users_see_their_own_and_global_entries_and_only_operators_keep_global_ones(
    owner, other_user, operator
):
    mine = client(owner).post("/api/tags", {"name": "Mine"}, format="json").json()
    refused = client(owner).post("/api/tags", {"name": "Everyone", "is_global": True}, format="json")
    shared = client(operator).post("/api/tags", {"name": "Everyone", "is_global": True}, format="json").json()

    seen_by_other = {tag["name"] for tag in client(other_user).get("/api/tags").json()}
    assert refused.status_code == 403
    assert shared["owner"] is None
    assert seen_by_other == {"Everyone"}
    assert (
        client(other_user).patch(f"/api/tags/{mine['id']}", {"name": "x"}, format="json").status_code == 404
    )
    assert (
        client(other_user).patch(f"/api/tags/{shared['id']}", {"name": "x"}, format="json").status_code == 403
    )
    assert client(other_user).delete(f"/api/tags/{mine['id']}").status_code == 404


def test_nested_tags_refuse_a_loop(owner):
    api = client(owner)
    parent = api.post("/api/tags", {"name": "Finance"}, format="json").json()
    child = api.post("/api/tags", {"name": "Tax", "parent_tag": parent["id"]}, format="json").json()

    loop = api.patch(f"/api/tags/{parent['id']}", {"parent_tag": child["id"]}, format="json")

    assert child["parent_tag"] == parent["id"]
    assert loop.status_code == 400


def test_extraction_maps_names_onto_the_lists_and_creates_only_what_is_configured(owner, settings):
    from documents.models import Correspondent, DocumentType
    from documents.organise.mapping import entry_for_name

    settings.METADATA_CREATE_ENTRIES = ["tags"]
    found = entry_for_name(DocumentType, owner_id=owner.pk, name="bank_statement")
    assert found is not None
    assert found.name == "Bank statement"
    assert entry_for_name(Correspondent, owner_id=owner.pk, name="Stadtwerke") is None
    made = entry_for_name(Tag, owner_id=owner.pk, name="Énergie")
    assert made is not None
    assert entry_for_name(Tag, owner_id=owner.pk, name="ENERGIE") == made


# --- Notes and the trash ----------------------------------------------------------------------


def test_a_note_is_kept_with_its_author_and_found_by_search(
    owner, other_user, operator, letter, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        added = client(owner).post(
            f"/api/files/{letter.pk}/notes", {"text": "Paid by transfer on 3 May"}, format="json"
        )

    assert added.status_code == 201
    assert added.json()["author"] == owner.username
    assert [r.document.pk for r in search(viewer=Viewer(user=owner), query="transfer").results] == [letter.pk]
    assert client(other_user).get(f"/api/files/{letter.pk}/notes").status_code == 404
    note_id = added.json()["id"]
    assert client(operator).delete(f"/api/files/{letter.pk}/notes/{note_id}").status_code == 204


def test_delete_moves_to_the_trash_restore_brings_it_back_and_beat_empties_it_later(
    owner, other_user, letter, clock, settings
):
    api = client(owner)
    assert api.delete(f"/api/files/{letter.pk}").status_code == 204
    assert api.get(f"/api/files/{letter.pk}").status_code == 404
    assert [row["id"] for row in api.get("/api/trash").json()["results"]] == [letter.pk]
    assert client(other_user).post(f"/api/trash/{letter.pk}/restore").status_code == 404

    assert api.post(f"/api/trash/{letter.pk}/restore").status_code == 200
    assert api.get(f"/api/files/{letter.pk}").status_code == 200

    api.delete(f"/api/files/{letter.pk}")
    clock.shift(datetime.timedelta(days=settings.EMPTY_TRASH_DELAY - 1))
    assert trash_empty() == 0
    clock.shift(datetime.timedelta(days=2))
    assert trash_empty() == 1
    assert not Document.objects.filter(pk=letter.pk).exists()


def test_legal_hold_blocks_the_trash(owner, letter):
    Document.objects.filter(pk=letter.pk).update(legal_hold=True)

    assert client(owner).delete(f"/api/files/{letter.pk}").status_code == 409


def test_by_name_the_owners_own_entry_comes_before_a_global_one(owner, operator, letter):
    client(operator).post("/api/tags", {"name": "Bills", "is_global": True}, format="json")
    own = client(owner).post("/api/tags", {"name": "bills"}, format="json").json()

    response = edit(owner, letter, {"tags": ["BILLS"]})

    assert response.json()["file"]["tag_ids"] == [own["id"]]


def test_a_new_document_gets_the_owners_inbox_tags_and_the_global_ones_but_not_another_users(
    owner, other_user, operator, ingest
):
    client(owner).post("/api/tags", {"name": "New", "is_inbox": True}, format="json")
    client(operator).post(
        "/api/tags", {"name": "To check", "is_inbox": True, "is_global": True}, format="json"
    )
    client(other_user).post("/api/tags", {"name": "Theirs", "is_inbox": True}, format="json")
    client(owner).post("/api/tags", {"name": "Plain"}, format="json")

    document = ingest(b"A new letter arrives today and waits to be looked at", "new.txt")

    assert sorted(document.tags.values_list("name", flat=True)) == ["New", "To check"]
