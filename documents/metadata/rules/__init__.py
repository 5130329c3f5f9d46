"""The built-in rules extractor: metadata from German and English OCR text without any service.

Regular expressions and small lexicons, ``dateparser`` for dates, ``price-parser`` for amounts
and, when installed, ``py3langid`` for the language. Every step sees bounded input (candidate
substrings, short header lines, a capped sample), so odd or huge text stays fast.
"""

from __future__ import annotations

import logging

from documents.metadata.base import ExtractedMetadata
from documents.metadata.rules.dates import find_document_date
from documents.metadata.rules.doctype import classify, heading
from documents.metadata.rules.identifiers import find_ibans, find_reference
from documents.metadata.rules.language import detect_language
from documents.metadata.rules.money import find_amounts, find_total, primary_currency
from documents.metadata.rules.naming import (
    confidence,
    make_tags,
    make_title,
    safe_filename,
    title_from_filename,
)
from documents.metadata.rules.parties import find_parties
from documents.metadata.rules.text import meaningful_lines, normalise

__all__ = ["RulesExtractor"]

logger = logging.getLogger(__name__)


class RulesExtractor:
    """Metadata from German and English OCR text by rules alone: no network, no model download.

    Finds the document date, sums of money, reference number, IBANs, language, type, sender,
    recipient and correspondent, and derives a title, tags, filename and a rough confidence.
    """

    name = "rules"

    def extract(self, *, text: str, original_filename: str) -> ExtractedMetadata:
        """Fields found in ``text``; never raises: unreadable text gives a mostly empty result."""
        try:
            return _extract(text if isinstance(text, str) else "", original_filename or "")
        except Exception:  # the pipeline must go on: a bug here may cost metadata, never the document
            logger.exception("rules extractor failed on %s", original_filename)
            title = title_from_filename(original_filename or "")
            return ExtractedMetadata(title=title, filename=safe_filename(None, title), confidence=0)


def _extract(raw_text: str, original_filename: str) -> ExtractedMetadata:
    text = normalise(raw_text)
    lines = meaningful_lines(text)
    language = detect_language(text)
    amounts = find_amounts(text)
    document_type = classify(text, lines)
    # A dollar document that isn't German writes "03/12/2024" for the 12th of March.
    month_first = language != "de" and primary_currency(amounts) == "USD"
    document_date = find_document_date(text, month_first=month_first)
    total = find_total(text, document_type=document_type, language=language)
    reference = find_reference(text, document_type)
    ibans = find_ibans(text)
    parties = find_parties(lines)
    correspondent = parties.correspondent
    content_title = make_title(
        document_type=document_type,
        language=language,
        reference=reference,
        correspondent=correspondent,
        heading=heading(lines),
        lines=lines,
    )
    title = content_title or title_from_filename(original_filename)
    found = {
        "date": document_date is not None, "type": document_type != "other",
        "correspondent": correspondent is not None, "reference": reference is not None,
        "amounts": bool(amounts), "ibans": bool(ibans), "language": language is not None,
        "title": content_title is not None,
    }  # fmt: skip
    return ExtractedMetadata(
        title=title,
        document_type=document_type,
        document_date=document_date,
        correspondent=correspondent,
        sender=parties.sender,
        recipient=parties.recipient,
        language=language,
        reference_number=reference,
        amounts=amounts,
        total=total,
        ibans=ibans,
        tags=make_tags(document_type, correspondent, text),
        confidence=confidence(found),
        filename=safe_filename(document_date, title),
    )
