"""Reads of destinations and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.db.models import Q, QuerySet

from accounts.access import Viewer
from destinations.models import Delivery, Destination
from docuelevate.errors import NotFound
from documents.models import Document


def destinations_for_document(document: Document) -> QuerySet[Destination]:
    """The enabled destinations ``document`` goes to: every system-wide one, and its owner's own."""
    return (
        Destination.objects.filter(enabled=True)
        .filter(Q(owner__isnull=True) | Q(owner_id=document.owner_id))
        .order_by("pk")
    )


def destination_get_for_viewer(*, viewer: Viewer, destination_id: int) -> Destination:
    """A destination ``viewer`` may manage: their own, or a system-wide one with operator
    rights. NotFound otherwise, the same as for one that does not exist."""
    user_id = getattr(viewer.user, "pk", None)
    mine = Q(owner_id=user_id) if user_id is not None else Q(pk__in=[])
    allowed = mine | Q(owner__isnull=True) if viewer.operator else mine
    destination = Destination.objects.filter(allowed, pk=destination_id).first()
    if destination is None:
        raise NotFound("There is no such destination.")
    return destination


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
