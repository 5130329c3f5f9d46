"""What a person sees: title, tags, a safe filename and a rough confidence."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from documents.metadata.base import MAX_TAGS
from documents.metadata.rules.doctype import heading_label
from documents.metadata.rules.parties import LEGAL_FORM
from documents.metadata.rules.text import CONTROL, SPACES

MAX_TITLE_CHARS = 80
MAX_FILENAME_CHARS = 100

# (English, German) names of each type for titles.
_TYPE_LABELS = {
    "invoice": ("Invoice", "Rechnung"), "receipt": ("Receipt", "Quittung"),
    "contract": ("Contract", "Vertrag"), "bank_statement": ("Bank statement", "Kontoauszug"),
    "letter": ("Letter", "Brief"), "reminder": ("Payment reminder", "Mahnung"),
    "offer": ("Offer", "Angebot"), "order_confirmation": ("Order confirmation", "Auftragsbestätigung"),
    "delivery_note": ("Delivery note", "Lieferschein"), "payslip": ("Payslip", "Gehaltsabrechnung"),
    "tax_document": ("Tax document", "Steuerbescheid"), "insurance": ("Insurance", "Versicherung"),
    "certificate": ("Certificate", "Bescheinigung"), "manual": ("Manual", "Handbuch"),
}  # fmt: skip
_SUBJECT = re.compile(r"(?:betreff|betr\.|subject|re|regarding)\s*:\s*(?P<subject>.{3,})", re.IGNORECASE)
_TOPIC_TAGS = {
    "energy": r"strom|gas|energie|electricity|stadtwerke",
    "telecom": r"telekom|mobilfunk|internet|dsl|vodafone|telefon|phone",
    "rent": r"miete|mietvertrag|nebenkosten|rent|lease",
    "health": r"arzt|praxis|krankenkasse|apotheke|medical|pharmacy|hospital|klinikum",
    "car": r"kfz|fahrzeug|vehicle|werkstatt",
    "travel": r"flug|hotel|bahn|flight|booking",
}
_TOPIC_RES = {tag: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for tag, words in _TOPIC_TAGS.items()}
_TOPIC_SAMPLE_CHARS = 20_000
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
# Points per field found, weighted by how much a person would miss it. Nothing here checks that a
# field is right, so this measures how complete the result is, not how correct.
_CONFIDENCE_POINTS = {
    "date": 20, "type": 15, "correspondent": 20, "reference": 15, "amounts": 15, "ibans": 5,
    "language": 5, "title": 5,
}  # fmt: skip


def make_title(
    *,
    document_type: str,
    language: str | None,
    reference: str | None,
    correspondent: str | None,
    heading: str | None,
    lines: list[str],
) -> str | None:
    """Titles like "Rechnung RE-4711 Stadtwerke München"; else the subject, heading or first real line."""
    label = _label(document_type, language, heading)
    if label and document_type != "letter" and (reference or correspondent):
        return clean_title(" ".join(part for part in (label, reference, correspondent) if part))
    subject = next((m.group("subject") for line in lines[:40] if (m := _SUBJECT.match(line))), None)
    if subject:
        suffix = f" - {correspondent}" if correspondent and correspondent not in subject else ""
        return clean_title(subject + suffix)
    if heading and _is_meaningful(heading):
        return clean_title(heading)
    if label:
        return clean_title(" ".join(part for part in (label, correspondent) if part))
    meaningful = (clean_title(line) for line in lines[:20] if _is_meaningful(line))
    return next((title for title in meaningful if title), None)


def _label(document_type: str, language: str | None, heading: str | None) -> str:
    english, german = _TYPE_LABELS.get(document_type, ("", ""))
    if language in ("de", "en"):
        return german if language == "de" else english
    # Too few words to tell the language: name the type as the document itself does.
    return heading_label(heading, document_type) or english


def clean_title(raw: str) -> str | None:
    """``raw`` on one line, without path separators or control characters, at most ~80 characters."""
    title = SPACES.sub(" ", CONTROL.sub(" ", re.sub(r"[/\\\r\n]+", "-", raw))).strip(" -").lstrip(".")
    if len(title) > MAX_TITLE_CHARS:
        title = title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(" -")
    return title or None


def title_from_filename(original_filename: str) -> str | None:
    """The uploaded file's name without folders and extension, as a title."""
    base = re.split(r"[\\/]", original_filename)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return clean_title(stem)


def safe_filename(document_date: date | None, title: str | None) -> str | None:
    """The name "YYYY-MM-DD_Title" in plain ASCII, or only the safe title when there is no date."""
    ascii_title = unicodedata.normalize("NFKD", (title or "").translate(_UMLAUTS)).encode("ascii", "ignore")
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", ascii_title.decode())
    safe = re.sub(r"\.{2,}", ".", safe).strip("._-")
    prefix = f"{document_date.isoformat()}_" if document_date else ""
    safe = safe[: MAX_FILENAME_CHARS - len(prefix)].rstrip("._-")
    return (prefix + safe).rstrip("_") or None


def make_tags(document_type: str, correspondent: str | None, text: str) -> tuple[str, ...]:
    """Lower-case tags: the type, the correspondent's short name, then topics such as "energy"."""
    tags = [document_type] if document_type != "other" else []
    if correspondent:
        short = SPACES.sub(" ", LEGAL_FORM.sub("", correspondent)).strip(" ,.&-").lower()
        if 2 <= len(short) <= 30:
            tags.append(short)
    sample = text[:_TOPIC_SAMPLE_CHARS]
    tags.extend(tag for tag, pattern in _TOPIC_RES.items() if pattern.search(sample))
    return tuple(dict.fromkeys(tags))[:MAX_TAGS]


def confidence(found: dict[str, bool]) -> int:
    """0..100 from which fields were found."""
    return min(100, sum(points for field, points in _CONFIDENCE_POINTS.items() if found.get(field)))


def _is_meaningful(line: str) -> bool:
    """Words rather than numbers, codes or OCR noise."""
    letters = sum(char.isalpha() for char in line)
    return (
        3 <= len(line) <= MAX_TITLE_CHARS
        and letters >= 0.6 * len(line.replace(" ", ""))
        and re.search(r"[^\W\d_]{3}", line) is not None
        and re.fullmatch(r"[\w .,:;&'()+-]+", line) is not None
    )
