"""Polling a source: one poller at a time, each item exactly once, the outcome recorded.

A poll takes the source's lease (a conditional update: the holder and an end time), so a
second poller (beat's turn and a "poll now" at once, two workers, a command) finds it taken
and does nothing; a poller killed mid-way holds nothing once its lease runs out. It renews
the lease as it goes, and stops if someone else has the source by then.

Everything a poll takes goes through the ledger (``SourceItem``, one row per source and
item key): the row is written before the document is made, and finished after. An item
whose row is finished is never taken again; one left ``claimed`` by a poller that died is
looked up among the owner's documents by its ``source_ref`` before anything is made, so a
kill between the document and the ledger's record costs nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from docuelevate import diskspace
from docuelevate.errors import InsufficientStorage, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from documents.models import Document, FailureKind, Tag
from documents.organise.mapping import entry_for_name
from documents.services import document_ingest
from sources.kinds import kind_for
from sources.kinds.base import LeaseLost, SourceFailed, SourceMisconfigured, SourcePaused, Taken
from sources.models import ItemState, Source, SourceItem

logger = logging.getLogger(__name__)

KEY_MAX_LENGTH = 1024
REF_MAX_LENGTH = 2048
# Reasons an ingest refuses a file: the item is failed for good with the reason.
_REFUSALS = (InvalidInput, PayloadTooLarge, UnsupportedMediaType)


def poll_lease() -> timedelta:
    """How long a poll holds its source without renewing; a killed poller's turn ends after
    it (SOURCES_POLL_LEASE_SECONDS)."""
    return timedelta(seconds=settings.SOURCES_POLL_LEASE_SECONDS)


class PollStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    BUSY = "busy"  # another poller holds the source
    DISABLED = "disabled"  # disabled or gone
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class PollOutcome:
    status: PollStatus
    documents: int = 0
    error: str = ""
    error_kind: FailureKind | None = None


class PollRun:
    """The ``PollContext`` a kind walks its source with: the ledger, under a lease."""

    def __init__(self, *, source: Source, holder: str, owner: User) -> None:
        self.source = source
        self.holder = holder
        self.owner = owner

    def seen(self, key: str) -> Taken | None:
        item = SourceItem.objects.filter(source=self.source, key=_bounded_key(key)).first()
        if item is None or item.state == ItemState.CLAIMED:
            return None
        return Taken(state=ItemState(item.state), document_id=item.document_id, new=False, detail=item.detail)

    def skip(self, *, key: str, ref: str, reason: str) -> Taken:
        item, created = SourceItem.objects.get_or_create(
            source=self.source,
            key=_bounded_key(key),
            defaults={
                "ref": ref[:REF_MAX_LENGTH],
                "state": ItemState.SKIPPED,
                "detail": reason,
                "claimed_by": self.holder,
                "claimed_at": timezone.now(),
                "finished_at": timezone.now(),
            },
        )
        return Taken(
            state=ItemState(item.state), document_id=item.document_id, new=created, detail=item.detail
        )

    def take(
        self, *, key: str, ref: str, filename: str, chunks: Iterable[bytes], tags: Iterable[str] = ()
    ) -> Taken:
        ref = ref[:REF_MAX_LENGTH]
        now = timezone.now()
        item, created = SourceItem.objects.get_or_create(
            source=self.source,
            key=_bounded_key(key),
            defaults={"ref": ref, "claimed_by": self.holder, "claimed_at": now},
        )
        if not created:
            if item.state != ItemState.CLAIMED:
                return Taken(
                    state=ItemState(item.state), document_id=item.document_id, new=False, detail=item.detail
                )
            # An earlier poller claimed it and died: it may have made the document already.
            left = self._document_left_by(item)
            if left is not None:
                self._finish(item, ItemState.INGESTED, document_id=left)
                return Taken(state=ItemState.INGESTED, document_id=left, new=False)
            SourceItem.objects.filter(pk=item.pk).update(claimed_by=self.holder, claimed_at=now)
        try:
            result = document_ingest(
                owner=self.owner, chunks=chunks, filename=filename, source=self.source.kind, source_ref=ref
            )
        except _REFUSALS as exc:
            self._finish(item, ItemState.FAILED, detail=exc.message)
            return Taken(state=ItemState.FAILED, document_id=None, new=True, detail=exc.message)
        except InsufficientStorage:
            # Not the item's fault: it stays claimed, and the poll stops here.
            raise SourcePaused(diskspace.pause_reason()) from None
        document = result.document
        tag_names = sorted({name.strip()[:64] for name in tags if name.strip()})
        if tag_names and not result.is_duplicate:
            # A source's tags are what its owner asked for: made if they do not exist yet.
            wanted = [
                entry_for_name(Tag, owner_id=document.owner_id, name=name, create=True) for name in tag_names
            ]
            document.tags.add(*(tag for tag in wanted if tag is not None))
        self._finish(item, ItemState.INGESTED, document_id=document.pk)
        self.renew()
        return Taken(state=ItemState.INGESTED, document_id=document.pk, new=True)

    def renew(self) -> None:
        renewed = Source.objects.filter(pk=self.source.pk, lease_holder=self.holder).update(
            lease_until=timezone.now() + poll_lease()
        )
        if not renewed:
            raise LeaseLost(f"another poller took over source {self.source.pk}")

    def _document_left_by(self, item: SourceItem) -> int | None:
        found = (
            Document.objects.filter(
                owner=self.owner,
                source=self.source.kind,
                source_ref=item.ref,
                created_at__gte=item.claimed_at,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        return found

    @staticmethod
    def _finish(
        item: SourceItem, state: ItemState, *, document_id: int | None = None, detail: str = ""
    ) -> None:
        SourceItem.objects.filter(pk=item.pk).update(
            state=state, document_id=document_id, detail=detail, finished_at=timezone.now()
        )


def source_poll(*, source_id: int, worker_name: str = "") -> PollOutcome:
    """Poll one source now, unless another poller holds it; record how it went."""
    holder = f"{worker_name or 'local'} {os.getpid()} {uuid.uuid4().hex[:12]}"
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if not Source.objects.filter(free, pk=source_id, enabled=True).update(
        lease_holder=holder, lease_until=now + poll_lease()
    ):
        exists = Source.objects.filter(pk=source_id, enabled=True).exists()
        return PollOutcome(status=PollStatus.BUSY if exists else PollStatus.DISABLED)
    source = Source.objects.select_related("owner", "document_owner").get(pk=source_id)
    try:
        if not diskspace.has_room():
            raise SourcePaused(diskspace.pause_reason())
        run = PollRun(source=source, holder=holder, owner=_document_owner(source))
        documents = kind_for(source).poll(run)
    except SourceFailed as exc:
        _record(source, holder, error=exc.message, kind=exc.kind)
        return PollOutcome(status=PollStatus.FAILED, error=exc.message, error_kind=exc.kind)
    except LeaseLost:
        logger.warning("source %s: another poller took over; this one stops", source_id)
        return PollOutcome(status=PollStatus.LEASE_LOST)
    except Exception:
        # A bug or an input nobody foresaw: the source shows it and the next poll tries again.
        logger.exception("source %s: poll failed", source_id)
        message = "The poll failed unexpectedly; the server log has the details."
        _record(source, holder, error=message, kind=FailureKind.INTERNAL_ERROR)
        return PollOutcome(status=PollStatus.FAILED, error=message, error_kind=FailureKind.INTERNAL_ERROR)
    _record(source, holder, error="", kind=None)
    return PollOutcome(status=PollStatus.DONE, documents=documents)


def _document_owner(source: Source) -> User:
    owner = source.owner or source.document_owner
    if owner is None:
        # The first operator, as for ``manage.py ingest``: a superuser before other staff.
        owner = User.objects.filter(is_staff=True, is_active=True).order_by("-is_superuser", "pk").first()
    if owner is None:
        raise SourceMisconfigured(
            "No operator account exists to own its documents; create one or set an owner."
        )
    return owner


def _record(source: Source, holder: str, *, error: str, kind: FailureKind | None) -> None:
    """The poll's outcome, and the lease given back (only by its holder)."""
    now = timezone.now()
    changes: dict[str, object] = {"last_poll_at": now, "last_error": error, "last_error_kind": kind or ""}
    if not error:
        changes["last_success_at"] = now
    Source.objects.filter(pk=source.pk).update(**changes)
    Source.objects.filter(pk=source.pk, lease_holder=holder).update(lease_holder="", lease_until=None)


def sources_due(*, now: datetime | None = None) -> list[int]:
    """The enabled sources whose turn has come, each moved on to its next turn.

    The conditional update makes two beats (or a beat restarted mid-minute) hand each turn
    out once; the interval is read from the row at every turn, so an edit applies at once.
    """
    now = now or timezone.now()
    due = Source.objects.filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), enabled=True)
    taken = []
    for source_id, next_poll_at, interval in due.values_list("pk", "next_poll_at", "poll_interval_minutes"):
        following = now + timedelta(minutes=max(1, interval))
        if Source.objects.filter(pk=source_id, next_poll_at=next_poll_at).update(next_poll_at=following):
            taken.append(source_id)
    return taken


def source_poll_enqueue(*, source_id: int) -> None:
    """Queue a poll of the source once the current transaction commits."""
    from sources.tasks import source_poll_task

    transaction.on_commit(lambda: source_poll_task.delay(source_id))


def _bounded_key(key: str) -> str:
    # Paths and Message-IDs can be longer than the column; their hash stays unique.
    if len(key) <= KEY_MAX_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
