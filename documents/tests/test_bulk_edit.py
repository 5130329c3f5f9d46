"""Bulk edit: the service on 50 documents for each action, the selection by filter, other
users' documents, a task run twice, and the API (202, progress, another user's 404)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.access import Viewer
from accounts.models import AuditLog
from docuelevate.errors import Forbidden, InvalidInput
from documents.models import (
    BulkAction,
    BulkOperation,
    BulkStatus,
    Correspondent,
    CustomField,
    CustomFieldValue,
    Document,
    DocumentChange,
    DocumentType,
    StoragePath,
    Tag,
)
from documents.organise import bulk
from documents.organise.bulk import bulk_edit_run, bulk_edit_start
from documents.tests.factories import DocumentFactory
from search.selectors import search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations handed to the workers (captured: each test runs the task body itself)."""
    ids: list[str] = []
    monkeypatch.setattr("documents.tasks.bulk_edit_task.delay", lambda operation_id: ids.append(operation_id))
    return ids


@pytest.fixture
def fifty(owner) -> list[Document]:
    """50 finished documents of the owner; ten of them filed (a processed PDF), so an edit
    files them again."""
    documents = DocumentFactory.create_batch(50, owner=owner, document_title="Scan")
    Document.objects.filter(pk__in=[d.pk for d in documents[:10]]).update(processed_file="processed/x.pdf")
    return documents


def run(
    viewer: Viewer, documents: list[Document], action: str, parameters: dict[str, Any], capture
) -> BulkOperation:
    """Start the operation and run its task body in this process, side effects included."""
    with capture(execute=True):
        operation = bulk_edit_start(
            viewer=viewer,
            selection={"documents": [d.pk for d in documents]},
            action=action,
            parameters=parameters,
        )
    with capture(execute=True):
        finished = bulk_edit_run(operation_id=str(operation.pk))
    assert finished is not None
    return finished


def refiled(sent: list[dict[str, Any]]) -> set[int]:
    return {call["args"][0] for call in sent if call["task"] == "documents.tasks.pipeline_step_task"}


# --- Each action on 50 documents ----------------------------------------------------------------


def test_add_tags_tags_every_document_once_with_history_version_and_search(
    owner, fifty, started, sent, django_capture_on_commit_callbacks
):
    urgent = Tag.objects.create(owner=owner, name="Urgent")
    Document.objects.get(pk=fifty[0].pk).tags.add(urgent)  # carries it already: unchanged

    operation = run(
        Viewer(user=owner), fifty, "add_tags", {"tags": ["urgent"]}, django_capture_on_commit_callbacks
    )

    assert (operation.status, operation.total, operation.done, operation.failed) == (
        BulkStatus.DONE,
        50,
        50,
        0,
    )
    assert urgent.documents.count() == 50
    changes = DocumentChange.objects.filter(field="tags", origin="bulk")
    assert changes.count() == 49
    assert {tuple(c.new or ()) for c in changes} == {("Urgent",)}
    assert all(c.actor_name == owner.username for c in changes)
    versions = dict(Document.objects.values_list("pk", "version"))
    assert versions[fifty[0].pk] == 1
    assert versions[fifty[1].pk] == 2
    assert "tags" in Document.objects.get(pk=fifty[1].pk).user_fields
    # Finished documents are filed again (their PDF carries the keywords); the others are not.
    assert refiled(sent) == {d.pk for d in fifty[1:10]}
    assert AuditLog.objects.filter(
        action="document_changed", target=f"bulk operation {operation.pk}"
    ).exists()
    assert started == [str(operation.pk)]


def test_remove_tags_takes_the_tag_off_and_says_so_in_the_history(
    owner, fifty, started, django_capture_on_commit_callbacks
):
    old, kept = Tag.objects.create(owner=owner, name="Old"), Tag.objects.create(owner=owner, name="Kept")
    for document in fifty:
        document.tags.add(old, kept)

    run(Viewer(user=owner), fifty, "remove_tags", {"tags": [old.pk]}, django_capture_on_commit_callbacks)

    assert old.documents.count() == 0
    assert kept.documents.count() == 50
    change = DocumentChange.objects.filter(document=fifty[3], field="tags").get()
    assert (change.old, change.new) == (["Kept", "Old"], ["Kept"])


@pytest.mark.parametrize(
    ("action", "field", "model"),
    [
        ("set_document_type", "document_type", DocumentType),
        ("set_correspondent", "correspondent", Correspondent),
        ("set_storage_path", "storage_path", StoragePath),
    ],
)
def test_setting_an_entry_changes_every_document_and_records_the_old_name(
    owner, fifty, started, django_capture_on_commit_callbacks, action, field, model
):
    extra = {"template": "{title}"} if model is StoragePath else {}
    entry = model.objects.create(owner=owner, name="Acme Power", **extra)
    before = model.objects.create(owner=owner, name="Before", **extra)
    Document.objects.filter(pk=fifty[0].pk).update(**{field: before})

    operation = run(Viewer(user=owner), fifty, action, {field: entry.pk}, django_capture_on_commit_callbacks)

    assert operation.failed == 0
    assert Document.objects.filter(**{field: entry}).count() == 50
    first = DocumentChange.objects.get(document=fifty[0], field=field)
    assert (first.old, first.new, first.origin) == ("Before", "Acme Power", "bulk")
    assert DocumentChange.objects.filter(field=field).count() == 50
    assert field in Document.objects.get(pk=fifty[7].pk).user_fields


def test_a_bulk_correspondent_is_found_by_search_at_once(
    owner, fifty, started, django_capture_on_commit_callbacks
):
    acme = Correspondent.objects.create(owner=owner, name="Zyxwater Utilities")

    run(
        Viewer(user=owner),
        fifty[:5],
        "set_correspondent",
        {"correspondent": acme.pk},
        django_capture_on_commit_callbacks,
    )

    found = search(viewer=Viewer(user=owner), query="zyxwater")
    assert sorted(result.document.pk for result in found.results) == sorted(d.pk for d in fifty[:5])


def test_a_custom_field_value_is_set_replaced_and_removed(
    owner, fifty, started, django_capture_on_commit_callbacks
):
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type="monetary", default_currency="EUR"
    )
    viewer = Viewer(user=owner)

    run(
        viewer,
        fifty,
        "set_custom_field",
        {"field": total.pk, "value": "12.50 EUR"},
        django_capture_on_commit_callbacks,
    )
    assert CustomFieldValue.objects.filter(field=total).count() == 50
    run(
        viewer,
        fifty[:10],
        "set_custom_field",
        {"field": total.pk, "value": "99 EUR"},
        django_capture_on_commit_callbacks,
    )
    run(
        viewer,
        fifty[40:],
        "set_custom_field",
        {"field": total.pk, "value": None},
        django_capture_on_commit_callbacks,
    )

    assert CustomFieldValue.objects.filter(field=total).count() == 40
    history = list(DocumentChange.objects.filter(document=fifty[0]).order_by("pk").values_list("old", "new"))
    assert [old for old, _ in history] == [None, {"amount": "12.50", "currency": "EUR"}]
    assert history[1][1] == {"amount": "99.00", "currency": "EUR"}
    assert "custom_field" in Document.objects.get(pk=fifty[45].pk).user_fields
    assert DocumentChange.objects.get(document=fifty[45], field="custom_field:Total", new__isnull=True)


def test_a_wrong_custom_field_value_is_refused_before_anything_runs(owner, fifty, started):
    count = CustomField.objects.create(owner=owner, name="Pages", data_type="integer")
    with pytest.raises(InvalidInput):
        bulk_edit_start(
            viewer=Viewer(user=owner), selection={"documents": [fifty[0].pk]},
            action="set_custom_field", parameters={"field": count.pk, "value": "many"},
        )  # fmt: skip
    assert not BulkOperation.objects.exists()
    assert started == []


def test_set_owner_is_for_operators_and_moves_the_documents(
    owner, other_user, operator, fifty, started, django_capture_on_commit_callbacks
):
    with pytest.raises(Forbidden):
        bulk_edit_start(
            viewer=Viewer(user=owner), selection={"documents": [fifty[0].pk]},
            action="set_owner", parameters={"owner": other_user.pk},
        )  # fmt: skip

    as_operator = Viewer(user=operator, operator=True)
    operation = run(
        as_operator, fifty, "set_owner", {"owner": other_user.pk}, django_capture_on_commit_callbacks
    )

    assert operation.failed == 0
    assert Document.objects.filter(owner=other_user).count() == 50
    assert DocumentChange.objects.filter(field="owner", origin="bulk").count() == 50


def test_reprocess_starts_every_document_again(
    owner, fifty, started, sent, django_capture_on_commit_callbacks
):
    operation = run(Viewer(user=owner), fifty, "reprocess", {}, django_capture_on_commit_callbacks)

    assert operation.done == 50
    assert refiled(sent) == {d.pk for d in fifty}
    assert all(call["args"][1] == "convert" for call in sent if call["task"].endswith("pipeline_step_task"))


def test_trash_moves_all_but_those_under_legal_hold_which_get_an_error_entry(
    owner, fifty, started, django_capture_on_commit_callbacks
):
    Document.objects.filter(pk__in=[fifty[2].pk, fifty[30].pk]).update(legal_hold=True)

    operation = run(Viewer(user=owner), fifty, "trash", {}, django_capture_on_commit_callbacks)

    assert (operation.status, operation.done, operation.failed) == (BulkStatus.DONE, 50, 2)
    assert [e["document_id"] for e in operation.errors] == [fifty[2].pk, fifty[30].pk]
    assert "legal hold" in operation.errors[0]["detail"]
    assert Document.objects.visible_to(Viewer(user=owner)).count() == 2
    assert Document.objects.trashed_visible_to(Viewer(user=owner)).count() == 48


# --- Selection, access, resuming --------------------------------------------------------------


def test_a_query_selects_every_result_of_the_filter_not_only_a_page(owner, started):
    invoices = DocumentFactory.create_batch(30, owner=owner, document_title="Invoice March")
    DocumentFactory.create_batch(5, owner=owner, document_title="Letter")

    operation = bulk_edit_start(
        viewer=Viewer(user=owner), selection={"query": {"search": "invoice", "per_page": "25"}},
        action="trash", parameters={},
    )  # fmt: skip

    assert operation.total == 30
    assert operation.document_ids == sorted(d.pk for d in invoices)
    assert operation.selection == {"query": {"search": "invoice", "per_page": "25"}}


def test_another_users_ids_are_left_out_as_if_absent(
    owner, other_user, fifty, started, django_capture_on_commit_callbacks
):
    theirs = DocumentFactory.create_batch(3, owner=other_user)
    tag = Tag.objects.create(owner=owner, name="Mine")

    operation = run(
        Viewer(user=owner),
        fifty[:2] + theirs,
        "add_tags",
        {"tags": [tag.pk]},
        django_capture_on_commit_callbacks,
    )

    assert operation.total == 2
    assert not Document.objects.filter(pk__in=[d.pk for d in theirs], tags__isnull=False).exists()
    with pytest.raises(InvalidInput, match="No document"):
        bulk_edit_start(
            viewer=Viewer(user=owner), selection={"documents": [theirs[0].pk]}, action="trash", parameters={}
        )
    other_tag = Tag.objects.create(owner=other_user, name="Theirs")
    with pytest.raises(InvalidInput, match="No tag"):
        bulk_edit_start(
            viewer=Viewer(user=owner), selection={"documents": [fifty[0].pk]},
            action="add_tags", parameters={"tags": [other_tag.pk]},
        )  # fmt: skip


def test_an_operators_tag_of_one_user_is_refused_for_another_users_documents(
    owner, other_user, operator, started, django_capture_on_commit_callbacks
):
    mine, theirs = DocumentFactory.create(owner=owner), DocumentFactory.create(owner=other_user)
    private = Tag.objects.create(owner=owner, name="Private")

    operation = run(
        Viewer(user=operator, operator=True), [mine, theirs], "add_tags", {"tags": [private.pk]},
        django_capture_on_commit_callbacks,
    )  # fmt: skip

    assert (operation.done, operation.failed) == (2, 1)
    assert operation.errors == [
        {"document_id": theirs.pk, "detail": "The tag 'Private' belongs to another user."}
    ]
    assert list(private.documents.all()) == [mine]


class Killed(BaseException):
    """A worker killed mid-chunk: nothing of the chunk commits."""


def test_a_task_killed_mid_way_and_delivered_again_continues_from_done_without_doing_any_document_twice(
    owner, fifty, started, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 20)
    tag = Tag.objects.create(owner=owner, name="Paid")
    operation = bulk_edit_start(
        viewer=Viewer(user=owner), selection={"documents": [d.pk for d in fifty]},
        action="add_tags", parameters={"tags": [tag.pk]},
    )  # fmt: skip
    real_record, calls = bulk._record, []

    def record_then_die_on_the_second_chunk(chunk):
        calls.append(len(chunk.documents))
        real_record(chunk)
        if len(calls) == 2:
            raise Killed

    monkeypatch.setattr(bulk, "_record", record_then_die_on_the_second_chunk)
    with pytest.raises(Killed):
        bulk_edit_run(operation_id=str(operation.pk))
    operation.refresh_from_db()
    assert (operation.status, operation.done) == (BulkStatus.RUNNING, 20)
    assert tag.documents.count() == 20  # the second chunk rolled back with its progress

    with django_capture_on_commit_callbacks(execute=True):
        bulk_edit_run(operation_id=str(operation.pk))  # the redelivery
        bulk_edit_run(operation_id=str(operation.pk))  # and a duplicate message: nothing to do
    operation.refresh_from_db()
    assert (operation.status, operation.done, operation.failed) == (BulkStatus.DONE, 50, 0)
    assert calls == [20, 20, 20, 10]
    assert tag.documents.count() == 50
    assert DocumentChange.objects.filter(field="tags").count() == 50
    assert set(Document.objects.values_list("version", flat=True)) == {2}


def test_documents_trashed_meanwhile_are_counted_as_refused(owner, fifty, started):
    operation = bulk_edit_start(
        viewer=Viewer(user=owner),
        selection={"documents": [d.pk for d in fifty[:3]]},
        action="reprocess",
        parameters={},
    )
    Document.objects.filter(pk=fifty[1].pk).delete()

    finished = bulk_edit_run(operation_id=str(operation.pk))

    assert finished is not None
    assert (finished.done, finished.failed) == (3, 1)
    assert finished.errors[0]["document_id"] == fifty[1].pk


# --- API ----------------------------------------------------------------------------------------


def client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_answers_202_with_an_operation_whose_progress_its_owner_follows(
    owner, other_user, operator, fifty, started, django_capture_on_commit_callbacks
):
    tag = Tag.objects.create(owner=owner, name="Tax 2025")
    with django_capture_on_commit_callbacks(execute=True):
        answer = client(owner).post(
            "/api/files/bulk-edit",
            {"documents": [d.pk for d in fifty], "action": "add_tags", "parameters": {"tags": ["Tax 2025"]}},
            format="json",
        )

    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["status"], body["total"]) == ("pending", 50)
    assert started == [body["operation_id"]]
    progress = f"/api/bulk-operations/{body['operation_id']}"
    assert client(owner).get(progress).json()["done"] == 0

    bulk_edit_run(operation_id=body["operation_id"])

    shown = client(owner).get(progress).json()
    assert (shown["status"], shown["done"], shown["failed"], shown["errors"]) == ("done", 50, 0, [])
    assert shown["parameters"] == {"tags": [tag.pk]}
    assert client(other_user).get(progress).status_code == 404
    assert client(operator).get(progress).status_code == 200
    assert client(owner).get("/api/bulk-operations/not-a-uuid").status_code == 404


def test_the_api_selects_by_query_and_refuses_what_it_cannot_do(owner, fifty, started):
    by_query = client(owner).post(
        "/api/files/bulk-edit", {"query": {"search": "scan"}, "action": "reprocess"}, format="json"
    )
    assert by_query.status_code == 202
    assert by_query.json()["total"] == 50

    for body in (
        {"action": "trash"},
        {"documents": [fifty[0].pk], "query": {}, "action": "trash"},
        {"documents": [fifty[0].pk], "action": "explode"},
        {"documents": [fifty[0].pk], "action": "add_tags", "parameters": {"tags": []}},
        {"query": {"date_from": "yesterday"}, "action": "trash"},
    ):
        refused = client(owner).post("/api/files/bulk-edit", body, format="json")
        assert refused.status_code == 400, body
        assert refused.json()["detail"]
    not_operator = client(owner).post(
        "/api/files/bulk-edit",
        {"documents": [fifty[0].pk], "action": "set_owner", "parameters": {"owner": 1}},
        format="json",
    )
    assert not_operator.status_code == 403
    assert APIClient().post("/api/files/bulk-edit", {"action": "trash"}, format="json").status_code == 401


def test_an_operation_stopped_by_a_bug_says_so_instead_of_running_for_ever(
    owner, fifty, started, monkeypatch
):
    operation = bulk_edit_start(
        viewer=Viewer(user=owner), selection={"documents": [fifty[0].pk]}, action="trash", parameters={}
    )

    def broken(chunk):
        raise RuntimeError("a bug")

    monkeypatch.setitem(bulk.HANDLERS, BulkAction.TRASH, broken)
    with pytest.raises(RuntimeError):
        bulk_edit_run(operation_id=str(operation.pk))

    operation.refresh_from_db()
    assert operation.status == BulkStatus.FAILED
    assert "internal error" in operation.detail
    assert operation.finished_at is not None
