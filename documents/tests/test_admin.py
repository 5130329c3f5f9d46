"""The operators' admin for documents: finding them, and the actions that act through services."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditLog, User
from accounts.tests.factories import UserFactory
from documents import storage
from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.state import document_refresh_status
from documents.pipeline.steps import STEP_NAMES
from documents.tests.factories import with_entries

CHANGELIST = reverse("admin:documents_document_changelist")


@pytest.fixture
def superuser(db: None) -> User:
    return UserFactory.create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def make(ingest: Callable[..., Document], name: str, **fields: Any) -> Document:
    """A stored document (its original on disk) with ``fields`` set on the row."""
    document = ingest(f"content of {name}".encode(), name, user=fields.pop("user", None))
    if fields:
        Document.objects.filter(pk=document.pk).update(**with_entries(fields, owner_id=document.owner_id))
        document.refresh_from_db()
    return document


def fail_step(document: Document, step_name: str, error: str = "tesseract crashed") -> None:
    """Steps before ``step_name`` succeeded, ``step_name`` failed: as the runner leaves it."""
    position = STEP_NAMES.index(step_name)
    ProcessingStep.objects.filter(document=document, position__lt=position).update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name=step_name).update(
        status=StepStatus.FAILURE, error=error
    )
    document_refresh_status(document)


def listed(response: Any) -> list[int]:
    assert response.status_code == 200, response.content[:2000]
    return sorted(document.pk for document in response.context["cl"].result_list)


def test_the_list_filters_by_status_type_owner_and_date(
    admin_client: Client, ingest: Callable[..., Document], owner: User, other_user: User, clock: Any
) -> None:
    invoice = make(ingest, "invoice.pdf", document_type="invoice")
    letter = make(ingest, "letter.pdf", document_type="letter", user=other_user)
    broken = make(ingest, "broken.pdf", document_type="invoice")
    fail_step(broken, STEP_NAMES[1])
    old = make(ingest, "old.pdf", created_at=timezone.now() - datetime.timedelta(days=400))

    assert listed(admin_client.get(CHANGELIST)) == sorted([invoice.pk, letter.pk, broken.pk, old.pk])
    assert listed(admin_client.get(CHANGELIST, {"status__exact": "failed"})) == [broken.pk]
    assert listed(
        admin_client.get(CHANGELIST, {"document_type__id__exact": str(invoice.document_type_id)})
    ) == sorted([invoice.pk, broken.pk])
    assert listed(admin_client.get(CHANGELIST, {"owner__id__exact": other_user.pk})) == [letter.pk]
    # As the filter's own links ("Past 7 days", "This year") give them: times with their zone.
    month_ago = str(timezone.now() - datetime.timedelta(days=30))
    year_ago = str(timezone.now() - datetime.timedelta(days=365))
    assert old.pk not in listed(admin_client.get(CHANGELIST, {"created_at__gte": month_ago}))
    assert listed(admin_client.get(CHANGELIST, {"created_at__lt": year_ago})) == [old.pk]


def test_search_finds_a_document_by_its_hash_or_the_start_of_it_and_by_name(
    admin_client: Client, ingest: Callable[..., Document]
) -> None:
    wanted = make(ingest, "tax-return-2023.pdf")
    other = make(ingest, "holiday.pdf")
    assert wanted.filehash != other.filehash

    assert listed(admin_client.get(CHANGELIST, {"q": wanted.filehash})) == [wanted.pk]
    assert listed(admin_client.get(CHANGELIST, {"q": wanted.filehash[:12]})) == [wanted.pk]
    assert listed(admin_client.get(CHANGELIST, {"q": "tax-return"})) == [wanted.pk]
    # A hash is matched from its start only: a piece from its middle finds nothing.
    assert listed(admin_client.get(CHANGELIST, {"q": wanted.filehash[20:40]})) == []


def test_a_document_page_shows_its_steps_and_processing_log_read_only(
    admin_client: Client, ingest: Callable[..., Document]
) -> None:
    document = make(ingest, "scan.pdf")
    fail_step(document, STEP_NAMES[1], error="the OCR engine gave up")
    page = admin_client.get(reverse("admin:documents_document_change", args=[document.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "the OCR engine gave up" in html
    assert "Received via upload" in html  # the processing log's first entry
    # Only the legal hold can be changed: a form that also sends a step's status and a new
    # name changes the hold and nothing else.
    assert 'name="legal_hold"' in html
    assert 'name="original_filename"' not in html
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    form.update({"legal_hold": "on", "steps-1-status": "success", "original_filename": "renamed.pdf"})
    saved = admin_client.post(reverse("admin:documents_document_change", args=[document.pk]), form)
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    document.refresh_from_db()
    assert document.legal_hold is True
    assert document.original_filename == "scan.pdf"
    assert ProcessingStep.objects.get(document=document, name=STEP_NAMES[1]).status == StepStatus.FAILURE


def test_reprocess_resets_every_step_and_queues_the_first(
    admin_client: Client,
    ingest: Callable[..., Document],
    sent: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    first = make(ingest, "first.pdf")
    second = make(ingest, "second.pdf")
    fail_step(first, STEP_NAMES[2])
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            CHANGELIST, {"action": "reprocess", "_selected_action": [first.pk, second.pk]}, follow=True
        )
    assert answer.status_code == 200
    assert "Reprocessing 2 document(s)." in answer.content.decode()
    assert sorted(call["args"] for call in sent) == sorted(
        [(first.pk, STEP_NAMES[0]), (second.pk, STEP_NAMES[0])]
    )
    assert set(ProcessingStep.objects.filter(document=first).values_list("status", flat=True)) == {
        StepStatus.PENDING
    }
    first.refresh_from_db()
    assert first.status == DocumentStatus.PENDING
    assert ProcessingLog.objects.filter(document=first, message="Reprocessing requested").exists()


def test_retry_failed_step_reruns_the_step_that_failed_and_skips_documents_without_one(
    admin_client: Client,
    ingest: Callable[..., Document],
    sent: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    broken = make(ingest, "broken.pdf")
    fine = make(ingest, "fine.pdf")
    failed_step = STEP_NAMES[2]
    fail_step(broken, failed_step)
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            CHANGELIST, {"action": "retry_failed_step", "_selected_action": [broken.pk, fine.pk]}, follow=True
        )
    html = answer.content.decode()
    assert "Retrying the failed step of 1 document(s)." in html
    assert "fine.pdf: no step has failed" in html
    assert [call["args"] for call in sent] == [(broken.pk, failed_step)]
    steps = dict(ProcessingStep.objects.filter(document=broken).values_list("name", "status"))
    # The steps before it keep their results; it and the ones after start again.
    assert steps[STEP_NAMES[0]] == steps[STEP_NAMES[1]] == StepStatus.SUCCESS
    assert steps[failed_step] == StepStatus.PENDING


def test_delete_asks_first_then_removes_rows_files_and_search_entry_and_audits_it(
    admin_client: Client,
    superuser: User,
    ingest: Callable[..., Document],
    sent: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    doomed = make(ingest, "doomed.pdf")
    kept = make(ingest, "kept.pdf")
    assert storage.exists(doomed.original_file)

    confirm = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [doomed.pk]})
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.content.decode()
    assert Document.objects.filter(pk=doomed.pk).exists()  # asking deletes nothing

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            CHANGELIST,
            {"action": "delete_selected", "_selected_action": [doomed.pk], "post": "yes"},
            follow=True,
        )
    assert done.status_code == 200
    assert not Document.objects.filter(pk=doomed.pk).exists()
    assert not ProcessingStep.objects.filter(document_id=doomed.pk).exists()
    assert not storage.exists(doomed.original_file)  # the service removed the file
    assert storage.exists(kept.original_file)
    assert {"task": "search.tasks.search_remove_document_task", "args": None} in [
        {"task": call["task"], "args": None} for call in sent
    ]
    audit = AuditLog.objects.get(action=AuditAction.DOCUMENT_DELETED)
    assert audit.actor == superuser
    assert str(doomed.pk) in audit.target
    assert audit.detail["sha256"] == doomed.filehash


def test_documents_under_legal_hold_are_never_deleted_from_the_admin(
    admin_client: Client, ingest: Callable[..., Document]
) -> None:
    held = make(ingest, "contract.pdf", legal_hold=True)
    free = make(ingest, "note.pdf")
    answer = admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [held.pk, free.pk], "post": "yes"},
        follow=True,
    )
    assert "under legal hold" in answer.content.decode()
    assert Document.objects.filter(pk__in=[held.pk, free.pk]).count() == 2
    change_page = admin_client.get(reverse("admin:documents_document_change", args=[held.pk]))
    assert reverse("admin:documents_document_delete", args=[held.pk]) not in change_page.content.decode()
    assert (
        admin_client.post(
            reverse("admin:documents_document_delete", args=[held.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert storage.exists(held.original_file)


def test_the_delete_button_of_a_document_page_goes_through_the_service(
    admin_client: Client,
    ingest: Callable[..., Document],
    django_capture_on_commit_callbacks: Any,
    sent: list[Any],
) -> None:
    document = make(ingest, "single.pdf")
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            reverse("admin:documents_document_delete", args=[document.pk]), {"post": "yes"}
        )
    assert answer.status_code == 302
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not storage.exists(document.original_file)
    assert AuditLog.objects.filter(action=AuditAction.DOCUMENT_DELETED).count() == 1


def test_operators_use_the_document_admin_and_other_users_do_not(
    operator: User, other_user: User, ingest: Callable[..., Document]
) -> None:
    document = make(ingest, "any.pdf")
    staff = Client()
    staff.force_login(operator)
    assert listed(staff.get(CHANGELIST)) == [document.pk]
    assert staff.get(reverse("admin:documents_document_add")).status_code == 403

    stranger = Client()
    stranger.force_login(other_user)
    refused = stranger.get(CHANGELIST)
    assert refused.status_code == 302
    assert "/admin/login/" in refused["Location"]
