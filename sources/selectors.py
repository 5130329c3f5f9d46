"""Reads of sources.

Every read of a source for a person goes through ``sources_visible_to`` (lists) and
``source_get_for_viewer`` (one): a user sees and manages their own mailboxes, an operator
(a request with operator rights) also the system-wide sources, and nobody another user's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.db.models import Case, Count, F, Q, QuerySet, Value, When

from accounts.access import Viewer
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import NotFound
from sources.models import ItemState, Source, SourceItem


def sources_visible_to(viewer: Viewer) -> QuerySet[Source]:
    user = viewer.user
    if not user.is_authenticated:
        return Source.objects.none()
    visible = Q(owner_id=user.pk)
    if viewer.operator:
        visible |= Q(owner__isnull=True)
    return Source.objects.filter(visible).order_by("name", "id")


def source_get_for_viewer(*, viewer: Viewer, source_id: int) -> Source:
    """The source if ``viewer`` may see it; NotFound otherwise, so that nobody learns
    whether another user's id exists."""
    source = sources_visible_to(viewer).filter(pk=source_id).first()
    if source is None:
        raise NotFound("No such source.")
    return source


def source_secret_names(source: Source) -> list[str] | None:
    """The names of the secrets ``source`` keeps, never a value; None when they cannot be
    decrypted with the current SESSION_SECRET."""
    try:
        return sorted(source.secrets)
    except SecretsUnreadable:
        return None


def sources_documents_since(source_ids: list[int], since: datetime) -> dict[int, int]:
    """Documents each source made since ``since`` (the pages' "taken today"), in one query."""
    rows = (
        SourceItem.objects.filter(source_id__in=source_ids, state=ItemState.INGESTED, finished_at__gte=since)
        .values("source_id")
        .annotate(count=Count("id"))
    )
    return {row["source_id"]: row["count"] for row in rows}


def sources_failing(*, system_wide_only: bool = False) -> QuerySet[Source]:
    """Enabled sources whose last poll or test failed (health, metrics), by name;
    ``system_wide_only`` for the answers any signed-in user reads, where a user's own
    mailbox is counted, never named."""
    failing = Source.objects.filter(enabled=True).exclude(last_error="")
    if system_wide_only:
        failing = failing.filter(owner__isnull=True)
    return failing.select_related("owner").order_by("name", "pk")


class SourceHealthCounts(TypedDict):
    """How the enabled sources fare: how many, failing, and not polled yet."""

    enabled: int
    failing: int
    never_polled: int


def source_health_counts() -> SourceHealthCounts:
    """The enabled sources counted by how their last poll went, in one query."""
    counts = Source.objects.filter(enabled=True).aggregate(
        enabled=Count("id"),
        failing=Count("id", filter=~Q(last_error="")),
        never_polled=Count("id", filter=Q(last_error="", last_poll_at__isnull=True)),
    )
    return SourceHealthCounts(
        enabled=counts["enabled"], failing=counts["failing"], never_polled=counts["never_polled"]
    )


def sources_by_health() -> QuerySet[Source]:
    """Every source for the operators' overview (/status): the failing ones first, then
    those not polled yet, the working ones, and the disabled ones last; system-wide before
    a user's own, then by name."""
    rank = Case(
        When(enabled=False, then=Value(3)),
        When(~Q(last_error=""), then=Value(0)),
        When(last_poll_at__isnull=True, then=Value(1)),
        default=Value(2),
    )
    return (
        Source.objects.select_related("owner")
        .annotate(health_rank=rank)
        .order_by("health_rank", F("owner").asc(nulls_first=True), "name", "pk")
    )
