"""What the search knows about a document: one flat record, the same for every backend."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from documents.models import Document, DocumentStatus

# Documents in the index: the finished ones. A failed document has no reliable text yet,
# and a duplicate is found through its original.
INDEXED_STATUSES = (DocumentStatus.COMPLETED,)


@dataclass(frozen=True)
class IndexedDocument:
    file_id: int
    owner_id: int
    title: str
    filename: str
    text: str
    tags: tuple[str, ...]
    tag_ids: tuple[int, ...]
    correspondent: str
    sender: str
    recipient: str
    document_type: str
    language: str
    mime_type: str
    # The document's own date, else the day it arrived: what "date" filters and sorts by.
    date: datetime.date
    size: int
    confidence: int | None
    created_at: datetime.datetime
    fingerprint: str


def fingerprint(updated_at: datetime.datetime) -> str:
    """A document's state as indexed, from its ``updated_at``: every change that matters to
    search saves the document, so equal fingerprints mean a current entry."""
    return updated_at.isoformat()


def indexable_documents() -> QuerySet[Document]:
    return Document.objects.filter(status__in=INDEXED_STATUSES)


def indexed_records(documents: Iterable[Document]) -> Iterator[IndexedDocument]:
    """Records for ``documents`` (fetch them with ``prefetch_related("tags")``)."""
    for document in documents:
        yield IndexedDocument(
            file_id=document.pk,
            owner_id=document.owner_id,
            title=document.document_title,
            filename=document.original_filename,
            text=document.ocr_text,
            tags=tuple(sorted(tag.name for tag in document.tags.all())),
            tag_ids=tuple(sorted(tag.pk for tag in document.tags.all())),
            correspondent=document.correspondent,
            sender=document.sender,
            recipient=document.recipient,
            document_type=document.document_type,
            language=document.language,
            mime_type=document.mime_type,
            date=document.document_date or document.created_at.date(),
            size=document.file_size,
            confidence=document.confidence,
            created_at=document.created_at,
            fingerprint=fingerprint(document.updated_at),
        )
