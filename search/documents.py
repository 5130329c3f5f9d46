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
    """The documents the index holds, with what their records read (indexed_records)."""
    return (
        Document.objects.filter(status__in=INDEXED_STATUSES, trashed_at__isnull=True)
        .select_related("document_type", "correspondent")
        .prefetch_related("tags", "notes")
    )


def indexed_records(documents: Iterable[Document]) -> Iterator[IndexedDocument]:
    """Records for ``documents`` (fetched by ``indexable_documents``). Notes are searched
    with the text: what someone wrote about a document finds it."""
    for document in documents:
        yield IndexedDocument(
            file_id=document.pk,
            owner_id=document.owner_id,
            title=document.document_title,
            filename=document.original_filename,
            text="\n\n".join([document.ocr_text, *(note.text for note in document.notes.all())]),
            tags=tuple(sorted(tag.name for tag in document.tags.all())),
            tag_ids=tuple(sorted(tag.pk for tag in document.tags.all())),
            correspondent=document.correspondent_name,
            sender=document.sender,
            recipient=document.recipient,
            document_type=document.document_type_name,
            language=document.language,
            mime_type=document.mime_type,
            date=document.document_date or document.created_at.date(),
            size=document.file_size,
            confidence=document.confidence,
            created_at=document.created_at,
            fingerprint=fingerprint(document.updated_at),
        )
