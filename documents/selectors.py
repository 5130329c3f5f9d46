"""Reads of documents. Every read of a user's document goes through ``document_get_for_user``."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from docuelevate.errors import NotFound
from documents.models import Document


def document_get_for_user(*, user: User | AnonymousUser, document_id: int) -> Document:
    """The document if ``user`` may see it; NotFound otherwise.

    Not found rather than forbidden: a stranger must not learn that the id exists.
    """
    document = Document.objects.visible_to(user).filter(pk=document_id).first()
    if document is None:
        raise NotFound("No such document.")
    return document
