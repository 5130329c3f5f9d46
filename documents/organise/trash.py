"""The trash: a deleted document waits there, restorable, until EMPTY_TRASH_DELAY days
have passed; then beat deletes it for good. Legal hold blocks both steps."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.access import Viewer
from accounts.audit import audit_record
from accounts.models import AuditAction, User
from docuelevate.errors import Conflict, NotFound
from documents.models import Document
from documents.services import document_delete
from search.services import index_documents_now

LEGAL_HOLD = "The document is under legal hold and cannot be deleted."


def document_trash(*, viewer: Viewer, document_id: int) -> Document:
    """Move a document the viewer may see into the trash (out of lists and search)."""
    with transaction.atomic():
        document = Document.objects.visible_to(viewer).select_for_update().filter(pk=document_id).first()
        if document is None:
            raise NotFound("No such document.")
        if document.legal_hold:
            raise Conflict(LEGAL_HOLD)
        _move(document, trashed_at=timezone.now(), action=AuditAction.DOCUMENT_TRASHED)
    return document


def documents_trash(*, documents: Sequence[Document], actor: User | None) -> list[tuple[int, str]]:
    """Move many documents (locked by the caller, who checked they are visible) into the
    trash at once, as document_trash moves one; returns those refused, with the reason.
    One audit entry names them all (a bulk edit's trail stays readable)."""
    refused = [(document.pk, LEGAL_HOLD) for document in documents if document.legal_hold]
    moved = [document.pk for document in documents if not document.legal_hold]
    if moved:
        now = timezone.now()
        Document.objects.filter(pk__in=moved).update(trashed_at=now, updated_at=now)
        audit_record(
            action=AuditAction.DOCUMENT_TRASHED,
            actor=actor,
            target=f"{len(moved)} documents",
            detail={"document_ids": moved},
        )
        index_documents_now(document_ids=moved)
    return refused


def document_restore(*, viewer: Viewer, document_id: int) -> Document:
    """Bring a document back from the trash, as it was."""
    with transaction.atomic():
        document = (
            Document.objects.trashed_visible_to(viewer).select_for_update().filter(pk=document_id).first()
        )
        if document is None:
            raise NotFound("No such document in the trash.")
        _move(document, trashed_at=None, action=AuditAction.DOCUMENT_RESTORED)
    return document


def _move(document: Document, *, trashed_at: datetime.datetime | None, action: AuditAction) -> None:
    """Into the trash or out of it: recorded, and the search entry follows at once."""
    document.trashed_at = trashed_at
    document.save(update_fields=["trashed_at", "updated_at"])
    audit_record(
        action=action,
        target=f"document {document.pk} {document.original_filename}"[:255],
        detail={"owner_id": document.owner_id},
    )
    index_documents_now(document_ids=[document.pk])


def trash_empty(
    *, viewer: Viewer | None = None, now: datetime.datetime | None = None, everything: bool = False
) -> int:
    """Delete for good what has waited EMPTY_TRASH_DELAY days (``everything``: the whole
    trash the viewer may see, at once); documents under legal hold stay. Returns how many."""
    trashed = (
        Document.objects.trashed_visible_to(viewer)
        if viewer
        else Document.objects.filter(trashed_at__isnull=False)
    )
    if not everything:
        cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.EMPTY_TRASH_DELAY)
        trashed = trashed.filter(trashed_at__lte=cutoff)
    deleted = 0
    for document in trashed.filter(legal_hold=False).order_by("pk").iterator():
        document_delete(document=document)
        deleted += 1
    return deleted
