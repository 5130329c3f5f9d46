"""Sums of money with their currency, totals first."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from price_parser import Price

from documents.metadata.base import Amount
from documents.metadata.rules.text import line_before

MAX_AMOUNTS = 20
_MAX_CANDIDATES = 500

_CURRENCIES = {
    "€": "EUR", "EUR": "EUR", "EURO": "EUR", "$": "USD", "US$": "USD", "USD": "USD", "£": "GBP",
    "GBP": "GBP", "CHF": "CHF", "SFR.": "CHF", "FR.": "CHF", "¥": "JPY", "JPY": "JPY", "PLN": "PLN",
    "ZŁ": "PLN", "SEK": "SEK", "NOK": "NOK", "DKK": "DKK", "CZK": "CZK", "CAD": "CAD", "AUD": "AUD",
}  # fmt: skip
_CURRENCY = (
    r"(?:€|\$|£|¥|(?<![A-Za-z])(?:US\$|EURO?|USD|GBP|CHF|SFr\.|Fr\.|JPY|PLN|zł|SEK|NOK|DKK|CZK|CAD|AUD)"
    r"(?![A-Za-z]))"
)
# "1.234,56", "1,234.56", "1'234.50", "12,50", "99,-" (German for "99 and no cents").
_CENTS = r"(?:[.,](?:\d{1,2}|[-\u2013]))?(?!\d)"
_NUMBER = rf"(?<![\d.,])\d{{1,3}}(?:[.,'\u00a0\u202f]\d{{3}})+{_CENTS}|(?<![\d.,])\d{{1,9}}{_CENTS}"
_AMOUNT_RE = re.compile(
    rf"(?P<minus1>-)?(?P<cur1>{_CURRENCY})\s?(?P<minus2>-)?(?P<num1>{_NUMBER})"
    rf"|(?P<minus3>-)?(?P<num2>{_NUMBER})\s?(?P<cur2>{_CURRENCY})"
)
_BARE_DECIMAL = re.compile(r"(?<![\d.,])(?P<minus>-)?\d{1,3}(?:[.,]\d{3})*[.,]\d{2}(?![\d.,]?\d)")
_STRONG_TOTAL = re.compile(
    r"gesamtbetrag|rechnungsbetrag|endbetrag|zahlbetrag|gesamtsumme|zu zahlen|bruttobetrag|summe brutto"
    r"|gesamt brutto|amount due|total due|balance due|grand total|total amount|amount payable"
    r"|total payable|invoice total|total to pay|total incl|gesamt inkl|summe inkl|neuer saldo",
    re.IGNORECASE,
)
_WEAK_TOTAL = re.compile(r"\b(?:summe|total|gesamt|betrag|saldo|kontostand|balance)\b", re.IGNORECASE)
_NOT_TOTAL = re.compile(
    r"zwischensumme|sub-?\s?total|netto|\bnet\b|excl|exkl|zzgl|mwst|\bust\b|\bvat\b|\btax\b|steuer"
    r"|alter saldo|opening balance",
    re.IGNORECASE,
)
_NOT_A_TOTAL_RANK = 2


@dataclass(frozen=True)
class _Found:
    amount: Amount
    total_rank: int  # 0 a clear total, 1 probably a total, 2 any other sum
    position: int


def find_amounts(text: str) -> tuple[Amount, ...]:
    """Sums of money, totals first ("Gesamtbetrag", "Amount due", ...), without duplicates."""
    found: list[_Found] = []
    for number, match in enumerate(_AMOUNT_RE.finditer(text)):
        if number >= _MAX_CANDIDATES:
            break
        amount = _to_amount(match)
        # "x$5y" is noise, not money: the amount must stand apart from letters and digits.
        neighbours = text[match.start() - 1 : match.start()] + text[match.end() : match.end() + 1]
        if amount is not None and not any(char.isalnum() for char in neighbours):
            found.append(_Found(amount, _total_rank(line_before(text, match.start())), match.start()))
    found.extend(_bare_totals(text, primary_currency(tuple(f.amount for f in found))))
    found.sort(key=lambda f: (f.total_rank, f.position))
    return tuple(dict.fromkeys(f.amount for f in found))[:MAX_AMOUNTS]


def primary_currency(amounts: tuple[Amount, ...]) -> str | None:
    """The most frequent currency among ``amounts``."""
    counts = Counter(a.currency for a in amounts if a.currency)
    return counts.most_common(1)[0][0] if counts else None


def _to_amount(match: re.Match[str]) -> Amount | None:
    symbol = match.group("cur1") or match.group("cur2") or ""
    digits = match.group("num1") or match.group("num2") or ""
    price = Price.fromstring(digits.replace("\u00a0", "").replace("\u202f", ""))
    if price.amount is None:
        return None
    negative = any(match.group(name) for name in ("minus1", "minus2", "minus3"))
    return Amount(value=-price.amount if negative else price.amount, currency=_CURRENCIES.get(symbol.upper()))


def _bare_totals(text: str, currency: str | None) -> list[_Found]:
    """Totals written without a currency, e.g. "Gesamtbetrag: 1.234,56", in the usual currency."""
    bare = []
    for line_match in re.finditer(r"[^\n]{1,200}", text):
        line = line_match.group(0)
        rank = _total_rank(line)
        if rank == _NOT_A_TOTAL_RANK or _AMOUNT_RE.search(line):
            continue
        for match in _BARE_DECIMAL.finditer(line):
            price = Price.fromstring(match.group(0).lstrip("-"))
            if price.amount is not None:
                value = -price.amount if match.group("minus") else price.amount
                bare.append(_Found(Amount(value, currency), rank, line_match.start() + match.start()))
        if len(bare) > MAX_AMOUNTS:
            break
    return bare


def _total_rank(label: str) -> int:
    if _STRONG_TOTAL.search(label):
        return 0
    if _WEAK_TOTAL.search(label) and not _NOT_TOTAL.search(label):
        return 1
    return _NOT_A_TOTAL_RANK
