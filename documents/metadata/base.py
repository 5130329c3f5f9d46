"""What a metadata extractor returns, and the interface every extractor implements.

Extractors turn the OCR text of a document into fields. The built-in rules extractor
(``rules``) needs nothing but this machine; the ``openai`` extractor asks any
OpenAI-compatible chat API and lets the rules fill whatever it leaves empty or gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class Amount:
    """A sum of money found in the text; ``currency`` is an ISO 4217 code when known."""

    value: Decimal
    currency: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"value": str(self.value), "currency": self.currency}


@dataclass(frozen=True)
class ExtractedMetadata:
    """Fields found in one document. None or empty means "not found"."""

    title: str | None = None
    document_type: str | None = None  # one of DOCUMENT_TYPES
    document_date: date | None = None
    correspondent: str | None = None  # the organisation the document is from or to
    sender: str | None = None
    recipient: str | None = None
    language: str | None = None  # ISO 639-1, e.g. "en", "de"
    reference_number: str | None = None  # invoice, order, customer or contract number
    amounts: tuple[Amount, ...] = ()
    total: Amount | None = None  # the sum the document is about: amount due, premium, net pay
    ibans: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # at most MAX_TAGS
    confidence: int | None = None  # 0..100
    filename: str | None = None  # "YYYY-MM-DD_Title", without extension

    def merged_with(self, fallback: ExtractedMetadata) -> ExtractedMetadata:
        """This result, with every empty field taken from ``fallback``."""
        gaps = {f.name: getattr(fallback, f.name) for f in fields(self) if not getattr(self, f.name)}
        return replace(self, **gaps)

    def as_metadata_json(self) -> dict[str, Any]:
        """The ``metadata`` JSON: our names plus the keys DocuElevate clients already read."""
        return {
            "title": self.title,
            "document_type": self.document_type,
            "document_date": self.document_date.isoformat() if self.document_date else None,
            "correspondent": self.correspondent,
            "absender": self.sender,
            "empfaenger": self.recipient,
            "language": self.language,
            "reference_number": self.reference_number,
            "monetary_amounts": [amount.as_json() for amount in self.amounts],
            "total": self.total.as_json() if self.total else None,
            "iban": list(self.ibans),
            "tags": list(self.tags),
            "confidence_score": self.confidence,
            "filename": self.filename,
        }


# Canonical document types; extractors map whatever they find onto these.
DOCUMENT_TYPES = (
    "invoice",
    "receipt",
    "contract",
    "bank_statement",
    "letter",
    "reminder",
    "offer",
    "order_confirmation",
    "delivery_note",
    "payslip",
    "tax_document",
    "insurance",
    "certificate",
    "manual",
    "other",
)
MAX_TAGS = 4


class MetadataExtractor(Protocol):
    """Turns OCR text into fields. Must not raise on odd text: return what was found."""

    name: str

    def extract(self, *, text: str, original_filename: str) -> ExtractedMetadata: ...
