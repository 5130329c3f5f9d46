"""Notes on documents: written by whoever may see the document, searchable with its text."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from docuelevate.errors import Forbidden, InvalidInput, NotFound
from documents.models import Document, Note
from documents.selectors import document_get_for_user
from search.services import index_documents_now

MAX_NOTE_LENGTH = 10_000


def note_add(*, viewer: Viewer, document_id: int, text: str) -> Note:
    """A note on a document the viewer may see; the document is searched by it at once."""
    text = text.strip()
    if not text:
        raise InvalidInput("A note needs some text.")
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"A note is at most {MAX_NOTE_LENGTH} characters.")
    document = document_get_for_user(viewer=viewer, document_id=document_id)
    author = viewer.user if isinstance(viewer.user, User) else None
    with transaction.atomic():
        note = Note.objects.create(document=document, author=author, text=text)
        # The search entry's fingerprint is the document's updated_at.
        Document.objects.filter(pk=document.pk).update(updated_at=note.created_at)
        index_documents_now(document_ids=[document.pk])
    return note


def note_delete(*, viewer: Viewer, document_id: int, note_id: int) -> None:
    """Remove a note: its author, or an operator."""
    document = document_get_for_user(viewer=viewer, document_id=document_id)
    note = Note.objects.filter(document=document, pk=note_id).first()
    if note is None:
        raise NotFound("No such note.")
    if not viewer.operator and note.author_id != getattr(viewer.user, "pk", None):
        raise Forbidden("Only its author or an operator removes a note.")
    with transaction.atomic():
        note.delete()
        Document.objects.filter(pk=document.pk).update(updated_at=timezone.now())
        index_documents_now(document_ids=[document.pk])
