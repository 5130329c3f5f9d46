"""The document's own date: labelled dates first, deadlines and periods last."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from dateparser.date import DateDataParser
from django.utils import timezone

from documents.metadata.rules.text import line_before

logger = logging.getLogger(__name__)

_MAX_CANDIDATES = 200
_MAX_PARSED = 25
_EARLIEST = date(1900, 1, 1)

# German, English and French month names; OCR may drop the French accents ("fevrier", "aout").
_MONTH = (
    r"(?:jan(?:uar|uary|vier)?|jänner|f[eé]v(?:rier)?|feb(?:ruar|ruary)?|m(?:ärz|aerz|är|rz|arch|ars|ar)"
    r"|apr(?:il)?|avr(?:il)?|ma[iy]|jun[ie]?|juin|jul[iy]?|juil(?:let)?|ao[uû]t|aug(?:ust)?"
    r"|sep(?:t(?:ember|embre)?)?|o[ck]t(?:ober|obre)?|nov(?:ember|embre)?|d[eé][cz](?:ember|embre)?)"
)
DATE_RE = re.compile(
    rf"(?P<dmy_text>(?<!\d)\d{{1,2}}(?:st|nd|rd|th|er|\.)?\s{{0,2}}(?:of\s)?{_MONTH}\.?,?\s{{1,2}}\d{{4}})(?!\d)"
    rf"|(?P<mdy_text>(?<![a-zäöü]){_MONTH}\.?\s{{1,2}}\d{{1,2}}(?:st|nd|rd|th)?,?\s{{1,2}}\d{{4}})(?!\d)"
    r"|(?P<iso>(?<!\d)\d{4}-\d{1,2}-\d{1,2})(?!\d)"
    r"|(?P<numeric>(?<![\d.,/-])\d{1,2}(?P<sep>[./-])\d{1,2}(?P=sep)(?:\d{4}|\d{2}))(?![\d/-]|\.\d)",
    re.IGNORECASE,
)
_DATE_LABEL = re.compile(
    r"(?:rechnungs|beleg|ausstellungs|bestell|auftrags|druck|schreib|auszugs)?datum|\bdate\b|\bissued?\b"
    r"|erstellt am|paiement le",
    re.IGNORECASE,
)
_WEAK_DATE_LABEL = re.compile(r"\b(?:vom|den|dated|am|du|le|on)\b", re.IGNORECASE)
# Dates near these words are deadlines, periods or birthdays, not the document's own date.
_OTHER_DATE_LABEL = re.compile(
    r"fällig|faellig|liefer|leistung|zahlbar|due\b|deliver|valid|gültig|geburt|geb\.|geboren|birth"
    r"|\bbis\b|until|period|zeitraum|frist|ablauf|expir|kündig|beginn|\bstart|\bend|\bab\b|\bfrom\b"
    r"|eintritt|entry|joined|received|[eé]ch[eé]ance|p[eé]riode|\bau\b|jusqu|limite|pr[eé]l[eè]vement"
    r"|naissance|entr[eé]e|effet|validit[eé]|intervention|recouvrement|mise en|\bpay by|payment|zahlung",
    re.IGNORECASE,
)
_LABEL_ONLY_LINE = re.compile(r"\s*(?:(?:rechnungs|beleg)?datum|(?:invoice )?date)\s*:?\s*", re.IGNORECASE)
# The letter's date line: "Berlin, den 3. Mai 2024", "Lille, le 3 mai 2024", "Fait à Rennes, le ...".
_PLACE_BEFORE_DATE = re.compile(r"(?:[A-ZÄÖÜ][\w .'-]{1,40},\s*)?(?:den|le|the)?\s*", re.IGNORECASE)
_NOT_PLACE = re.compile(r"\d")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class _Candidate:
    # 0 labelled as the document's date, 1 on a date line of its own or after a place ("Berlin,
    # 3. Mai 2024"), 2 after "vom"/"dated", 3 plain, 4 a deadline, period or birthday.
    rank: int
    position: int
    text: str
    order: str  # dateparser's DATE_ORDER for this spelling


def find_document_date(text: str, *, month_first: bool) -> date | None:
    """The labelled document date if there is one, else the first plausible date.

    ``month_first`` reads ambiguous slashed dates ("03/12/2024") the US way.
    """
    candidates = []
    for number, match in enumerate(DATE_RE.finditer(text)):
        if number >= _MAX_CANDIDATES:
            break
        rank = _rank(text, match.start(), match.end())
        candidates.append(_Candidate(rank, match.start(), *_spelling(match, month_first)))
    candidates.sort(key=lambda c: (c.rank, c.position))
    latest = timezone.localdate() + timedelta(days=366)
    for candidate in candidates[:_MAX_PARSED]:
        parsed = _parse(candidate.text, candidate.order)
        if parsed and _EARLIEST <= parsed <= latest:
            return parsed
    return None


def _spelling(match: re.Match[str], month_first: bool) -> tuple[str, str]:
    """The matched date text, normalised for dateparser, and the day/month order it is in."""
    raw = re.sub(r"(?i)maerz", "März", match.group(0))
    if match.group("iso"):
        return raw, "YMD"
    if match.group("numeric"):
        first, second = (int(part) for part in re.split(r"[./-]", raw)[:2])
        # Dotted dates are always day first; slashes are day first unless the numbers or a US
        # document say otherwise.
        if match.group("sep") != "." and (second > 12 or (month_first and first <= 12)):
            return raw, "MDY"
    return raw, "DMY"


def _rank(text: str, position: int, end: int) -> int:
    # Only the words since the last number on the line label this date: in "Geb.-Datum:
    # 02.12.1999  Eintritt: 01.08.2021" the second date is an entry date, not a "Datum".
    before = _DIGIT.split(line_before(text, position, limit=40))[-1]
    if _OTHER_DATE_LABEL.search(before):
        return 4
    if _DATE_LABEL.search(before):
        return 0
    line_start = text.rfind("\n", 0, position) + 1
    if not before.strip() and line_start > 0:
        previous_line = line_before(text, line_start - 1, limit=40)
        if _LABEL_ONLY_LINE.fullmatch(previous_line):  # a table: the label above, the date below
            return 0
    line_end = text.find("\n", end)
    rest_of_line = text[end : line_end if line_end >= 0 else end + 80][:80]
    if _PLACE_BEFORE_DATE.fullmatch(before) and not rest_of_line.strip() and not _NOT_PLACE.search(before):
        return 1
    return 2 if _WEAK_DATE_LABEL.search(before) else 3


@functools.cache
def _date_parser(order: str) -> Any:
    # Explicit languages keep dateparser from guessing them, which is the only part of it that
    # could want extra (downloadable) models; relative phrases and timestamps are not dates here.
    return DateDataParser(
        languages=["de", "en", "fr"],
        settings={
            "DATE_ORDER": order,
            "PREFER_DAY_OF_MONTH": "first",
            "REQUIRE_PARTS": ["day", "month", "year"],
            "RETURN_AS_TIMEZONE_AWARE": False,
            "PARSERS": ["absolute-time"],
            "STRICT_PARSING": True,
        },
    )


def _parse(text: str, order: str) -> date | None:
    try:
        parsed = _date_parser(order).get_date_data(text).date_obj
    except Exception:  # dateparser raises assorted errors on odd input; a miss is not fatal
        logger.debug("dateparser failed on %r", text, exc_info=True)
        return None
    return parsed.date() if parsed is not None else None
