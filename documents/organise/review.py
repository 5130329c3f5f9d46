"""The review inbox: documents waiting for a person to confirm or correct what was found.

A finished document waits when its extraction was less sure than CONFIDENCE_REVIEW_THRESHOLD
(until someone confirmed it: ``metadata["reviewed"]``) or while it carries an inbox tag.
Confirming takes the inbox tags off, applies the person's corrections through the one edit
service (versions, history, user_fields, refiling) and marks the document reviewed, so a
reprocess does not bring it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from docuelevate.errors import InvalidInput
from documents.models import ChangeOrigin, Document, DocumentChange, DocumentQuerySet, DocumentStatus, Tag
from documents.organise.editing import document_update
from documents.organise.keys import match_key

REVIEWED_KEY = "reviewed"


def review_queue(*, viewer: Viewer) -> DocumentQuerySet:
    """The documents waiting for ``viewer``'s review, oldest first (a queue is worked from
    its front): finished, out of the trash, visible to them, and unsure or inbox-tagged."""
    inbox = Exists(Document.tags.through.objects.filter(document_id=OuterRef("pk"), tag__is_inbox=True))
    unsure = Q(confidence__lt=settings.CONFIDENCE_REVIEW_THRESHOLD) & ~Q(metadata__has_key=REVIEWED_KEY)
    return (
        Document.objects.visible_to(viewer)
        .filter(status=DocumentStatus.COMPLETED)
        .filter(Q(inbox) | unsure)
        .order_by("created_at", "pk")
    )


def review_count(*, viewer: Viewer) -> int:
    """How many documents wait for ``viewer`` (the navigation's badge)."""
    return int(review_queue(viewer=viewer).count())


def document_review(
    *,
    viewer: Viewer,
    document_id: int,
    corrections: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    origin: ChangeOrigin = ChangeOrigin.PAGE,
) -> Document:
    """Confirm a document ``viewer`` may see, with optional ``corrections`` (as
    ``document_update`` takes them): its inbox tags come off, it is marked reviewed and
    leaves the queue. StaleEdit when it changed since ``expected_version``."""
    changes = dict(corrections or {})
    with transaction.atomic():
        # Locked and checked by the edit service, even when nothing but the mark changes.
        current = document_update(
            viewer=viewer,
            document_id=document_id,
            changes={},
            expected_version=expected_version,
            origin=origin,
        )
        inbox = list(Tag.objects.filter(documents=current, is_inbox=True))
        if "tags" in changes:
            changes["tags"] = _without_inbox(changes["tags"], inbox_ids={t.pk for t in inbox})
        elif inbox:
            changes["tags"] = [tag.pk for tag in current.tags.all() if not tag.is_inbox]
        document = (
            document_update(viewer=viewer, document_id=document_id, changes=changes, origin=origin)
            if changes
            else current
        )
        actor = viewer.user if isinstance(viewer.user, User) else None
        document.metadata = {
            **(document.metadata if isinstance(document.metadata, dict) else {}),
            REVIEWED_KEY: {"at": timezone.now().isoformat(), "by": actor.get_username() if actor else ""},
        }
        document.save(update_fields=["metadata", "updated_at"])
        DocumentChange.objects.create(
            document=document, actor=actor, actor_name=actor.get_username() if actor else "",
            origin=origin, field=REVIEWED_KEY, old=None, new="confirmed",
        )  # fmt: skip
    return document


def _without_inbox(raw: Any, *, inbox_ids: set[int]) -> Any:
    """The tags a person gave on review, less the inbox tags the document had: confirming is
    what takes them off. Shapes are checked by the edit service."""
    if not isinstance(raw, list | tuple):
        raise InvalidInput("tags takes a list of tag ids or names.")
    inbox_keys = set(Tag.objects.filter(pk__in=inbox_ids).values_list("match_key", flat=True))
    return [
        item
        for item in raw
        if not (isinstance(item, int) and item in inbox_ids)
        and not (isinstance(item, str) and match_key(item) in inbox_keys)
    ]
