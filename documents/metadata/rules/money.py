"""Sums of money with their currency, totals first, and the one total the document is about."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from price_parser import Price

from documents.metadata.base import Amount
from documents.metadata.rules.text import fold, line_before

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
# "1.234,56", "1,234.56", "1'234.50", "1 234,56" (French), "12,50", "99,-" (German for "99 and no
# cents").
_CENTS = r"(?:[.,](?:\d{1,2}|[-\u2013]))?(?!\d)"
_NUMBER = rf"(?<![\d.,])\d{{1,3}}(?:[.,' \u00a0\u202f]\d{{3}})+{_CENTS}|(?<![\d.,])\d{{1,9}}{_CENTS}"
_AMOUNT_RE = re.compile(
    rf"(?P<minus1>-)?(?P<cur1>{_CURRENCY})[ \t]{{0,4}}(?P<minus2>-)?(?P<num1>{_NUMBER})"
    rf"|(?P<minus3>-)?(?P<num2>{_NUMBER})\s?(?P<cur2>{_CURRENCY})"
)
_BARE_DECIMAL = re.compile(
    r"(?<![\d.,])(?P<minus>-)?\d{1,3}(?:[., \u00a0\u202f]\d{3})*[.,]\d{2}(?![\d.,]?\d)(?! ?%)"
)
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


# What the document asks for or settles, in three tiers: 0 the sum due, 1 the gross total,
# 2 any other total-like label. Labels are matched without accents (text.fold).
_DUE_LABEL = re.compile(
    r"rechnungsbetrag|zahlbetrag|endbetrag|zu zahlen|zahlen sie|gesamtforderung|offener betrag|nachzahlung"
    r"|amount due|total due|balance due|now due|you owe|amount payable|total payable|premium payable"
    r"|total to pay|a payer|montant (?:total )?du\b|total du\b"
)
_GROSS_LABEL = re.compile(
    r"gesamtbetrag|gesamtsumme|gesamtmiete|gesamtbeitrag|jahresbeitrag|jahresbetrag|bruttobetrag"
    r"|summe brutto|gesamt brutto|grand total|total amount|invoice total|total incl|gesamt inkl|summe inkl"
    r"|total ttc|montant ttc|montant total|neuer saldo|closing balance|renewal premium|total premium"
    r"|cotisation annuelle|cotisation ttc|^\W*(?:total|summe|gesamt|montant|amount|sum)\W*$"
)
_WEAK_LABEL = re.compile(
    r"summe|total|gesamt|betrag|saldo|balance|premium|beitrag|cotisation|\bfee\b|gebuhr|\bprix\b|price"
    r"|miete|\brent\b|loyer|montant"
)
# Sums that are not the document's total however they are labelled: parts of it (net, tax),
# last year's figures, limits and deductibles of a cover, deposits, capital, year-to-date sums.
_NEVER_TOTAL = re.compile(
    r"zwischensumme|sub-?\s?total|netto|\bnet\b|\bht\b|excl|exkl|zzgl|plus vat|mwst|\bust\b|umsatzsteuer"
    r"|mehrwertsteuer|\bsteuer\b|versicherungs?steuer|\bvat\b|\btva\b|\btax\b|\btaxes\b|vorjahr|previous"
    r"|last year|precedent|alter saldo|opening balance|deckung|limit|plafond|\bcover|excess|selbstbeteiligung"
    r"|franchise|kaution|deposit|acompte|anzahlung|dispositions|overdraft|liability|haftung|capital|\bytd\b"
    r"|year to date|cumul|income|revenu|messbetrag|abschlag|geleistet|\bpaid\b|\bpaye\b|received|bezahlt"
    r"|\brate\b|\btaux\b|\bje\b|\beach\b|instalment|\braten\b"
)
# A payslip's total is the net pay that reaches the account, not the gross.
_PAYOUT_LABEL = re.compile(
    r"auszahlung|uberweisung|ausgezahlt|net pay|net paid|take[- ]home|net paye|net a payer"
)
_PAYSLIP_NET_LABEL = re.compile(r"netto|\bnet\b")
_NEVER_PAYSLIP_TOTAL = re.compile(r"brutto|gross|\bbrut\b|avant|\bytd\b|year to date|cumul|imposable|abzug")
_GROSS_AFTER = re.compile(r"\W{0,3}(?:ttc|brutto|inkl|incl)\b")
_NET_AFTER = re.compile(r"\W{0,3}(?:ht|netto|zzgl|plus vat|excl|exkl)\b")
_MARKER = re.compile(r"^\W{0,3}(?:ttc|ht|brutto|netto|inkl|incl|excl|exkl|zzgl)\b")
_MAX_TOTAL_LINES = 3_000
_MAX_AMOUNTS_PER_LINE = 20
_EURO_LANGUAGES = frozenset({"de", "fr"})


def find_total(text: str, *, document_type: str, language: str | None) -> Amount | None:
    """The sum the document is about, by its label: the amount due or gross total of an invoice,
    the premium of an insurance notice, the net pay of a payslip, the new balance of a statement.

    Only labelled sums count: a letter that mentions an overdraft limit has no total. Without any
    currency in the document, a German or French one is taken to be in euros.
    """
    payslip = document_type == "payslip"
    best: tuple[int, int, Decimal] | None = None  # (tier, position, value)
    currency_seen = None
    for line_number, line_match in enumerate(re.finditer(r"[^\n]{1,200}", text)):
        if line_number >= _MAX_TOTAL_LINES:
            break
        line = line_match.group(0)
        previous_end = 0
        for match, value, currency in _line_amounts(line):
            currency_seen = currency_seen or currency
            # A marker after the previous sum ("450,00 € HT, soit") belongs to that sum.
            label = _MARKER.sub("", fold(line[previous_end : match.start()]), count=1)
            after = fold(line[match.end() : match.end() + 12])
            previous_end = match.end()
            tier = _payslip_tier(label) if payslip else _total_tier(label, after)
            if tier is not None and value > 0 and (best is None or tier < best[0]):
                best = (tier, line_match.start() + match.start(), value)
                best_currency = currency
    if best is None:
        return None
    currency = best_currency or primary_currency(find_amounts(text)) or currency_seen
    if currency is None and language in _EURO_LANGUAGES:
        currency = "EUR"
    return Amount(best[2], currency)


def _line_amounts(line: str) -> list[tuple[re.Match[str], Decimal, str | None]]:
    """(match, value, currency) of the sums on one line: with a currency, or bare with cents."""
    found = []
    with_currency = []
    for match in _AMOUNT_RE.finditer(line):
        amount = _to_amount(match)
        if amount is not None:
            found.append((match, amount.value, amount.currency))
            with_currency.append(match.span())
        if len(found) >= _MAX_AMOUNTS_PER_LINE:
            break
    for match in _BARE_DECIMAL.finditer(line):
        if any(start <= match.start() < end for start, end in with_currency):
            continue
        price = Price.fromstring(match.group(0).lstrip("-"))
        if price.amount is not None:
            found.append((match, -price.amount if match.group("minus") else price.amount, None))
        if len(found) >= 2 * _MAX_AMOUNTS_PER_LINE:
            break
    return sorted(found, key=lambda item: item[0].start())


def _total_tier(label: str, after: str) -> int | None:
    if _NEVER_TOTAL.search(label):
        return None
    if _DUE_LABEL.search(label):
        tier = 0
    elif _GROSS_LABEL.search(label):
        tier = 1
    elif _WEAK_LABEL.search(label):
        tier = 2
    elif _GROSS_AFTER.match(after):  # "450,00 € HT, soit 540,00 € TTC"
        return 1
    else:
        return None
    return tier + 1 if _NET_AFTER.match(after) else tier


def _payslip_tier(label: str) -> int | None:
    if _NEVER_PAYSLIP_TOTAL.search(label):
        return None
    if _PAYOUT_LABEL.search(label):
        return 0
    return 1 if _PAYSLIP_NET_LABEL.search(label) else None
