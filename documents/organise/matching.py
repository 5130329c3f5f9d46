"""Matching that learns, wired to the database: train per owner, decide who is due, and set
what a trained matcher is sure of on a document being extracted.

The classifier itself (documents.matching) knows names, not rows; here names become the
owner's list entries. Training reads the owner's finished, untrashed documents with text;
beat retrains an owner once MATCHING_RETRAIN_AFTER of their documents are new or were
corrected by a person since the last training. Extraction asks the owner's matcher (kept in
memory per process, as long as its ``trained_at`` is the stored one) and sets, for the
fields no person set, each suggestion at least MATCHING_CONFIDENCE_THRESHOLD sure; every
suggestion is kept in ``metadata["suggestions"]`` for the review inbox.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from documents.models import (
    ChangeOrigin,
    Correspondent,
    Document,
    DocumentChange,
    DocumentStatus,
    DocumentType,
    OwnerMatcher,
    Tag,
    TaxonomyEntry,
)
from documents.organise.mapping import entry_for_name

if TYPE_CHECKING:
    from documents.matching import Suggestion, Suggestions, TrainedMatcher

# scikit-learn (with numpy and scipy) is imported where a matcher is trained or loaded, not
# with this module: the web processes import the pipeline's steps but never train or suggest.

logger = logging.getLogger(__name__)

# A person's corrections teach the matcher; the machine's own changes (matching, system) do not.
PERSON_ORIGINS = (ChangeOrigin.PAGE, ChangeOrigin.API, ChangeOrigin.BULK, ChangeOrigin.MERGE)
# Matchers kept in memory per worker process: a few MiB each, and a worker mostly serves
# the owners whose documents are arriving now.
_CACHE_SIZE = 8
_cache: OrderedDict[int, tuple[datetime, TrainedMatcher]] = OrderedDict()


def _trainable(owner_id: int | None = None) -> Any:
    documents = Document.objects.filter(status=DocumentStatus.COMPLETED, trashed_at__isnull=True).exclude(
        ocr_text=""
    )
    return documents if owner_id is None else documents.filter(owner_id=owner_id)


def matcher_train_owner(*, owner_id: int) -> OwnerMatcher | None:
    """Train the owner's matcher on their finished documents and store it; None (and any
    stored matcher removed: matching is off for them) below MATCHING_MIN_DOCUMENTS.

    A matcher that learnt nothing (every document has the same type, no tag repeats) is
    stored empty, so beat waits for MATCHING_RETRAIN_AFTER more documents before trying again.
    """
    import sklearn

    from documents.matching import TrainingSample, matcher_train
    from documents.matching.storage import matcher_dumps

    started = timezone.now()
    documents = _trainable(owner_id).select_related("document_type", "correspondent").prefetch_related("tags")
    samples = [
        TrainingSample(
            text=document.ocr_text,
            document_type=document.document_type.name if document.document_type else None,
            correspondent=document.correspondent.name if document.correspondent else None,
            tags=tuple(sorted(tag.name for tag in document.tags.all())),
        )
        for document in documents.iterator(chunk_size=500)
    ]
    if len(samples) < settings.MATCHING_MIN_DOCUMENTS:
        OwnerMatcher.objects.filter(owner_id=owner_id).delete()
        return None
    trained = matcher_train(samples, min_samples=settings.MATCHING_MIN_DOCUMENTS)
    # Stamped with the time training started: a document corrected while it ran counts
    # towards the next training.
    stored, _ = OwnerMatcher.objects.update_or_create(
        owner_id=owner_id,
        defaults={
            "blob": matcher_dumps(trained) if trained is not None else b"",
            "trained_at": started,
            "documents_trained": len(samples),
            "sklearn_version": sklearn.__version__,
        },
    )
    logger.info(
        "trained the matcher of user %s on %d documents%s",
        owner_id, len(samples), "" if trained else " (nothing to learn yet)",
    )  # fmt: skip
    return stored


def matchers_retrain_due() -> list[int]:
    """The owners whose matcher beat should train now: never trained (or refused) and with
    MATCHING_MIN_DOCUMENTS documents, or with MATCHING_RETRAIN_AFTER documents new or corrected
    by a person since the last training. Empty when MATCHING_ENABLED is off."""
    if not settings.MATCHING_ENABLED:
        return []
    trained = dict(
        OwnerMatcher.objects.filter(trained_at__isnull=False).values_list("owner_id", "trained_at")
    )
    first_time = (
        _trainable()
        .exclude(owner_id__in=list(trained))
        .values("owner_id")
        .annotate(count=Count("pk"))
        .filter(count__gte=settings.MATCHING_MIN_DOCUMENTS)
        .values_list("owner_id", flat=True)
    )
    due = set(first_time)
    for owner_id, trained_at in trained.items():
        changed = (
            _trainable(owner_id)
            .filter(
                Q(created_at__gt=trained_at)
                | Q(changes__at__gt=trained_at, changes__origin__in=PERSON_ORIGINS)
            )
            .values("pk")
            .distinct()
            .count()
        )
        if changed >= settings.MATCHING_RETRAIN_AFTER:
            due.add(owner_id)
    return sorted(due)


def matcher_for_owner(*, owner_id: int) -> TrainedMatcher | None:
    """The owner's trained matcher, from this process's memory while it is the stored one.

    None when there is none, or when the stored one is refused (its signature or versions
    do not match): then it is forgotten and a training is scheduled; the document being
    extracted simply gets no suggestion.
    """
    row = OwnerMatcher.objects.filter(owner_id=owner_id, trained_at__isnull=False).values_list(
        "trained_at", flat=True
    )
    trained_at = row.first()
    if trained_at is None:
        _cache.pop(owner_id, None)
        return None
    cached = _cache.get(owner_id)
    if cached is not None and cached[0] == trained_at:
        _cache.move_to_end(owner_id)
        return cached[1]
    blob = OwnerMatcher.objects.filter(owner_id=owner_id).values_list("blob", flat=True).first()
    if not blob:
        return None
    from documents.matching.storage import MatcherBlobRefused, matcher_loads

    try:
        matcher = matcher_loads(bytes(blob))
    except MatcherBlobRefused as refused:
        logger.warning("the stored matcher of user %s is refused (%s); training a new one", owner_id, refused)
        _cache.pop(owner_id, None)
        # trained_at None: beat's matchers_retrain_due sees it as never trained, should the
        # task sent now be lost.
        OwnerMatcher.objects.filter(owner_id=owner_id).update(blob=b"", trained_at=None)
        _schedule_training(owner_id)
        return None
    _cache[owner_id] = (trained_at, matcher)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return matcher


def _schedule_training(owner_id: int) -> None:
    from documents.tasks import matcher_train_owner_task

    transaction.on_commit(lambda: matcher_train_owner_task.delay(owner_id))


@dataclass(frozen=True)
class _Decided:
    """One suggestion mapped onto the owner's entry (None: no such entry any more)."""

    suggestion: Suggestion
    entry: Any


def matching_apply(document: Document, *, actor_name: str = "matching") -> dict[str, Any]:
    """Set on ``document`` (not saved; tags added at once, as extraction does) what the owner's
    matcher is sure of, for the fields no person set, recording each change it made (origin
    MATCHING); returns every suggestion for ``metadata["suggestions"]`` ({} without a matcher).
    """
    if not settings.MATCHING_ENABLED or not document.ocr_text:
        return {}
    matcher = matcher_for_owner(owner_id=document.owner_id)
    if matcher is None:
        return {}
    threshold = settings.MATCHING_CONFIDENCE_THRESHOLD / 100
    try:
        found = matcher.suggest(document.ocr_text, threshold=threshold)
    except Exception:
        # A suggestion is a help, never a condition: whatever goes wrong in the classifier,
        # the document is extracted by the rules alone.
        logger.exception("the matcher of user %s failed on document %s", document.owner_id, document.pk)
        return {}
    return _apply(document, found, actor_name=actor_name)


def _apply(document: Document, found: Suggestions, *, actor_name: str) -> dict[str, Any]:
    kept = set(document.user_fields or ())
    owner_id = document.owner_id
    changes: list[tuple[str, Any, Any]] = []
    shown: dict[str, Any] = {}
    for name, model, suggestion in (
        ("document_type", DocumentType, found.document_type),
        ("correspondent", Correspondent, found.correspondent),
    ):
        if suggestion is None:
            continue
        decided = _decided(model, suggestion, owner_id)
        set_it = decided.entry is not None and suggestion.confident and name not in kept
        if set_it:
            current = getattr(document, name)
            if current != decided.entry:
                changes.append((name, current.name if current else None, decided.entry.name))
                setattr(document, name, decided.entry)
        shown[name] = _shown(decided, set_it=set_it)
    tags = []
    for suggestion in found.tags:
        decided = _decided(Tag, suggestion, owner_id)
        set_it = decided.entry is not None and suggestion.confident and "tags" not in kept
        tags.append((decided, set_it))
    new_tags = [decided.entry for decided, set_it in tags if set_it]
    if new_tags:
        current_names = sorted(tag.name for tag in document.tags.all())
        document.tags.add(*new_tags)
        after = sorted(set(current_names) | {tag.name for tag in new_tags})
        if after != current_names:
            changes.append(("tags", current_names, after))
    if tags:
        shown["tags"] = [_shown(decided, set_it=set_it) for decided, set_it in tags]
    if changes:
        DocumentChange.objects.bulk_create(
            DocumentChange(
                document=document, actor=None, actor_name=actor_name, origin=ChangeOrigin.MATCHING,
                field=name, old=old, new=new,
            )
            for name, old, new in changes
        )  # fmt: skip
    return shown


def _decided(model: type[TaxonomyEntry], suggestion: Suggestion, owner_id: int) -> _Decided:
    # Labels are the names the entries had at training; a renamed or deleted one matches none.
    return _Decided(suggestion, entry_for_name(model, owner_id=owner_id, name=suggestion.label, create=False))


def _shown(decided: _Decided, *, set_it: bool) -> dict[str, Any]:
    """A suggestion as the review inbox reads it: the entry, how sure (0-100), and whether set."""
    return {
        "id": decided.entry.pk if decided.entry is not None else None,
        "name": decided.entry.name if decided.entry is not None else decided.suggestion.label,
        "confidence": round(decided.suggestion.probability * 100),
        "set": set_it,
    }
