"""Reads of destinations and deliveries."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, TypedDict

from django.db.models import Q, QuerySet

from destinations.kinds.base import DocumentFacts
from destinations.models import Delivery, Destination
from documents.models import Document


def destinations_for_document(document: Document) -> QuerySet[Destination]:
    """The enabled destinations ``document`` goes to: every system-wide one, and its owner's own."""
    return (
        Destination.objects.filter(enabled=True)
        .filter(Q(owner__isnull=True) | Q(owner_id=document.owner_id))
        .order_by("pk")
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
        "document_type": document.document_type,
        "document_date": document.document_date.isoformat() if document.document_date else None,
        "correspondent": document.correspondent,
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
        correspondent=document.correspondent,
        document_type=document.document_type,
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
