"""Sender, recipient and correspondent from letterheads, return-address lines and address blocks.

The correspondent is the organisation the document comes from: the first name with a legal
form in the letterhead (outside the recipient's address block), else an institution heading
the page, else the one in the footer's imprint; never a street, a tagline or the recipient.

Deliberately conservative: a missing name costs less than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from documents.metadata.rules.dates import DATE_RE
from documents.metadata.rules.doctype import KEYWORDS
from documents.metadata.rules.text import fold

_HEADER_LINES = 30
_LETTERHEAD_LINES = 12
_FOOTER_LINES = 15
_MAX_NAME_CHARS = 60

LEGAL_FORM = re.compile(
    r"(?:\b(?:gGmbH|GmbH|mbH|AG|KGaA|KG|OHG|GbR|UG|eG|SE|Ltd|Limited|Inc|LLC|LLP|PLC|plc|Corp|Corporation"
    r"|S\.A|S\.p\.A|S\.r\.l|B\.V|N\.V|SA|SARL|SAS|SASU|EURL|SNC|Company)\b(?!-)\.?|\be\.\s?[VK]\.)"
    r"(?:\s?&\s?Co\.?\s?(?:KG|OHG|KGaA)\b)?(?:\s?\(haftungsbeschränkt\))?"
)
_INSTITUTION = re.compile(
    r"\b(?:\w*bank|\w*sparkasse|\w*versicherung|finanzamt|stadtwerke|\w*krankenkasse|aok|landratsamt"
    r"|stadtverwaltung|gemeinde|universität|university|hochschule|klinikum|rentenversicherung|bkk"
    r"|hm revenue|revenue (?:&|and) customs|finances publiques|\w*banque|\w*assurances?|mutuelle|stadt)\b",
    re.IGNORECASE,
)
_STREET = re.compile(
    r"(?:\d{1,5}[a-z]?\s+[A-Za-z][\w .'-]{2,40}"  # "12 High Street"
    r"|[A-ZÄÖÜ][\w .'-]{2,40}?\s\d{1,4}\s?[a-z]?(?:\s?[-/]\s?\d{1,4}[a-z]?)?"  # "Hauptstr. 5a"
    r"|(?:postfach|p\.?\s?o\.?\s?box)\s[\d ]{1,12})(?:,.{0,40})?",
    re.IGNORECASE,
)
_POSTCODE_CITY = re.compile(
    r"(?:[A-Z]{1,2}-)?\d{4,5}\s+[A-ZÄÖÜ][\w .()/-]{1,40}"  # DE, AT, CH
    r"|[A-Za-z .'-]{2,40}\s+[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"  # UK
    r"|[A-Za-z .'-]{2,40},\s?[A-Z]{2}\s+\d{5}(?:-\d{4})?"  # US
)
_SEGMENT_SPLIT = re.compile(r"\s*[·•|]\s*|\s+[-\u2013]\s+|,\s*(?!(?:Inc|Ltd|LLC|Limited|Corp)\b)")
_RECIPIENT_CUE = re.compile(
    r"(?:an|to|herrn?|frau|firma|empfänger|recipient|bill to|ship to|rechnungsadresse|lieferadresse"
    r"|mr\.?|mrs\.?|ms\.?|madame|monsieur|customer|client)\s*:?",
    re.IGNORECASE,
)
_NOT_A_NAME = re.compile(
    r"(?:z\.\s?hd\.?|attn\.?|c/o|zu händen|abteilung|department)\b|@|www\.|https?:|\btel\b|\bfax\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Parties:
    """Who a document is from and to, as far as its layout tells."""

    sender: str | None = None
    recipient: str | None = None
    organisation: str | None = None  # the letterhead's, when there is one

    @property
    def correspondent(self) -> str | None:
        """The organisation on the other side: the letterhead's, the sending one, else the receiving one."""
        if self.organisation:
            return self.organisation
        for name in (self.sender, self.recipient):
            if name and (LEGAL_FORM.search(name) or _INSTITUTION.search(name)):
                return name
        return self.sender


def find_parties(lines: list[str]) -> Parties:
    """Sender and recipient from the letterhead, the return-address line and address blocks."""
    header = lines[:_HEADER_LINES]
    sender = _return_address_sender(header)
    recipient = None
    for start, name in _address_blocks(header):
        cue = start > 0 and _RECIPIENT_CUE.fullmatch(header[start - 1]) is not None
        if cue or sender is not None:
            recipient = recipient or name
        else:
            sender = name
    sender = (
        sender
        or _organisation_line(header[:_LETTERHEAD_LINES], exclude=recipient)
        or _institution_line(header[:3], exclude=recipient)
        or _organisation_line(lines[-_FOOTER_LINES:], exclude=recipient)  # the imprint in the footer
    )
    recipient_lines = _recipient_lines(header)
    letterhead = [
        line for index, line in enumerate(header[:_LETTERHEAD_LINES]) if index not in recipient_lines
    ]
    organisation = (
        _organisation_line(letterhead, exclude=recipient)
        or _institution_line(letterhead[:3], exclude=recipient)
        or _organisation_line(lines[-_FOOTER_LINES:], exclude=recipient)
    )
    return Parties(sender, recipient if recipient != sender else None, organisation)


def _recipient_lines(header: list[str]) -> set[int]:
    """Indexes of the recipient's address block: from a cue ("Herrn", "Madame ...", "Bill to:")
    down to its postcode line, at most five lines."""
    lines: set[int] = set()
    for index, line in enumerate(header):
        if not _RECIPIENT_CUE.match(line) or index in lines:
            continue
        for offset in range(6):
            if index + offset >= len(header):
                break
            lines.add(index + offset)
            if _POSTCODE_CITY.search(header[index + offset]) and offset > 0:
                break
    return lines


def _return_address_sender(header: list[str]) -> str | None:
    # DIN 5008 letters print "Sender GmbH · Street 1 · 12345 City" above the recipient's window.
    for line in header:
        segments = _SEGMENT_SPLIT.split(line)
        if len(segments) >= 2 and any(_POSTCODE_CITY.fullmatch(s) for s in segments[1:]):
            # "Unit 4, Riverside Park, Leeds LS11 5DJ" under the letterhead is an address, not a name.
            return None if _STREET.fullmatch(segments[0]) else _clean_name(segments[0])
    return None


def _address_blocks(header: list[str]) -> list[tuple[int, str]]:
    """(index, name) of each name, street, postcode-and-city block in the header."""
    blocks = []
    for index in range(2, len(header)):
        if not (_POSTCODE_CITY.fullmatch(header[index]) and _STREET.fullmatch(header[index - 1])):
            continue
        start = index - 2
        while start > 0 and _NOT_A_NAME.search(header[start]):
            start -= 1  # step over "z. Hd. Frau Müller" to the organisation's own line
        name = _clean_name(header[start])
        if name:
            blocks.append((start, name))
    return blocks


def _organisation_line(lines: list[str], exclude: str | None) -> str | None:
    """The first name with a legal form (GmbH, AG, Ltd, Inc., ...) other than ``exclude``."""
    for line in lines:
        for segment in _SEGMENT_SPLIT.split(line):
            legal_form = LEGAL_FORM.search(segment)
            name = _clean_name(segment[: legal_form.end()]) if legal_form else None
            if name and not (exclude and name.startswith(exclude)):
                return name
    return None


def _institution_line(lines: list[str], exclude: str | None) -> str | None:
    # Banks, insurers and authorities often head their letters without a legal form.
    for line in lines:
        if _INSTITUTION.search(line) and len(line.split()) <= 6 and not re.search(r"\d", line):
            name = _clean_name(line)
            if name and name != exclude:
                return name
    return None


def _clean_name(raw: str) -> str | None:
    """A plausible person or organisation name, or None for anything that looks like noise."""
    name = re.sub(r"^(?:firma|absender|von|from)\s*:?\s+", "", raw.strip(), flags=re.IGNORECASE)
    name = re.sub(r"^\(?\d{1,2}[.)]\s+", "", name)  # a contract's "(1) Keystone IT Services Ltd"
    name = name.strip(" ,;:·|-\u2013")
    letters = sum(char.isalpha() for char in name)
    if not 2 <= len(name) <= _MAX_NAME_CHARS or letters < max(2, len(name) // 2) or _NOT_A_NAME.search(name):
        return None
    if _RECIPIENT_CUE.fullmatch(name) or DATE_RE.search(name) or fold(name) in KEYWORDS:
        return None
    return name
