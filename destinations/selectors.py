"""Reads of destinations and deliveries.

Every read of a destination for a person goes through ``destinations_visible_to`` (lists)
and ``destination_get_for_viewer`` (one): a user sees and manages their own destinations,
an operator (a request with operator rights) also the system-wide ones, and nobody
another user's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, TypedDict

from django.db.models import Case, Count, F, Q, QuerySet, Value, When

from accounts.access import Viewer
from destinations.kinds.base import DocumentFacts
from destinations.models import Delivery, Destination, HealthStatus
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import NotFound
from documents.models import Document


def destinations_visible_to(viewer: Viewer) -> QuerySet[Destination]:
    """The destinations ``viewer`` may see and change: their own, and for a request with
    operator rights every system-wide one too. Never another user's; nothing for an
    anonymous visitor."""
    user = viewer.user
    if not user.is_authenticated:
        return Destination.objects.none()
    visible = Q(owner_id=user.pk)
    if viewer.operator:
        visible |= Q(owner__isnull=True)
    return Destination.objects.filter(visible).order_by("name", "id")


def destination_settings_of_kind(*, kind: str) -> list[tuple[dict[str, Any], str]]:
    """The settings and folder template of every destination of ``kind``, whoever's and
    enabled or not: what a remote-folder source compares its folder with, so it never reads
    what they deliver."""
    return [
        (dict(settings), template)
        for settings, template in Destination.objects.filter(kind=kind).values_list(
            "settings", "folder_template"
        )
    ]


def destination_get_for_viewer(*, viewer: Viewer, destination_id: int) -> Destination:
    """The destination if ``viewer`` may see it (``destinations_visible_to``); NotFound
    otherwise, so that nobody learns whether another user's id exists."""
    destination = destinations_visible_to(viewer).filter(pk=destination_id).first()
    if destination is None:
        raise NotFound("No such destination.")
    return destination


def destination_secret_names(destination: Destination) -> list[str] | None:
    """The names of the secrets ``destination`` keeps (what is set, never a value); None
    when they cannot be decrypted with the current SESSION_SECRET."""
    try:
        return sorted(destination.secrets)
    except SecretsUnreadable:
        return None


def destinations_for_document(document: Document) -> QuerySet[Destination]:
    """The enabled destinations ``document`` goes to: every system-wide one, and its owner's own."""
    return (
        Destination.objects.filter(enabled=True)
        .filter(Q(owner__isnull=True) | Q(owner_id=document.owner_id))
        .order_by("pk")
    )


class DestinationHealthCounts(TypedDict):
    """How the enabled destinations fare: how many, failing, and not checked yet."""

    enabled: int
    failing: int
    unchecked: int


def destination_health_counts() -> DestinationHealthCounts:
    """The enabled destinations counted by health, in one query."""
    counts = Destination.objects.filter(enabled=True).aggregate(
        enabled=Count("id"),
        failing=Count("id", filter=Q(health_status=HealthStatus.FAILING)),
        unchecked=Count("id", filter=Q(health_status=HealthStatus.UNKNOWN)),
    )
    return DestinationHealthCounts(
        enabled=counts["enabled"], failing=counts["failing"], unchecked=counts["unchecked"]
    )


def destinations_failing(*, system_wide_only: bool = False) -> QuerySet[Destination]:
    """The enabled destinations marked failing, by name; ``system_wide_only`` for the
    answers that any signed-in user reads, where a user's own destination is not named."""
    failing = Destination.objects.filter(enabled=True, health_status=HealthStatus.FAILING)
    if system_wide_only:
        failing = failing.filter(owner__isnull=True)
    return failing.select_related("owner").order_by("name", "pk")


def destinations_by_health() -> QuerySet[Destination]:
    """Every destination for the operators' overview: the failing ones first, then those not
    checked yet, the working ones, and the disabled ones last; system-wide before a user's
    own, then by name."""
    rank = Case(
        When(enabled=False, then=Value(3)),
        When(health_status=HealthStatus.FAILING, then=Value(0)),
        When(health_status=HealthStatus.UNKNOWN, then=Value(1)),
        default=Value(2),
    )
    return (
        Destination.objects.select_related("owner")
        .annotate(health_rank=rank)
        .order_by("health_rank", F("owner").asc(nulls_first=True), "name", "pk")
    )


def delivery_facts(document: Document) -> DocumentFacts:
    """What a kind that files by metadata is told about ``document``.

    ``fields`` are the document's metadata (the JSON its extraction wrote, under the names
    DocuElevate's clients know: ``absender``, ``empfaenger``, ``reference_number`` …) with
    the document's current values on top, so an edit after extraction counts.
    """
    tags = tuple(sorted(document.tags.values_list("name", flat=True)))
    current: dict[str, Any] = {
        "title": document.document_title,
        "document_type": document.document_type_name,
        "document_date": document.document_date.isoformat() if document.document_date else None,
        "correspondent": document.correspondent_name,
        "absender": document.sender,
        "empfaenger": document.recipient,
        "language": document.language,
        "reference_number": document.reference_number,
        "tags": list(tags),
    }
    extracted = document.metadata if isinstance(document.metadata, dict) else {}
    return DocumentFacts(
        title=document.document_title or PurePosixPath(document.original_filename).stem,
        created=document.document_date,
        correspondent=document.correspondent_name,
        document_type=document.document_type_name,
        tags=tags,
        fields={**extracted, **current},
    )


class DeliveryView(TypedDict):
    """One delivery as ``GET /api/files/{id}`` and the document page show it."""

    destination: str
    destination_id: int
    kind: str
    status: str
    attempts: int
    remote_path: str
    delivered_at: datetime | None
    error: str


def deliveries_for_document(document: Document) -> list[DeliveryView]:
    """The document's deliveries, one per destination, by destination name. No secrets and
    no settings: only where the file went and how that went. The caller has checked that
    the viewer may see ``document`` (``document_get_for_user``)."""
    deliveries = (
        Delivery.objects.filter(document=document)
        .select_related("destination")
        .order_by("destination__name", "destination_id")
    )
    return [
        DeliveryView(
            destination=delivery.destination.name,
            destination_id=delivery.destination_id,
            kind=delivery.destination.kind,
            status=delivery.status,
            attempts=delivery.attempts,
            remote_path=delivery.remote_path,
            delivered_at=delivery.delivered_at,
            error=delivery.error,
        )
        for delivery in deliveries
    ]
