"""Reference numbers (invoice, contract, order, customer) and IBANs."""

from __future__ import annotations

import re

from documents.metadata.rules.dates import DATE_RE
from documents.metadata.rules.text import fold

# Labels are matched in folded text (lower case, no accents: text.fold), so "N° de facture",
# "Numéro" and "REFERENCE CLIENT" need one spelling each.
_NO = r"(?:(?:nummer|nr|no|number|num|id|numero)\b\.?|n[°º]|\s?#)"
_REFERENCE_LABELS = {
    "invoice": rf"rechnungs?[\s-]?{_NO}|invoice[\s-]?{_NO}|beleg[\s-]?{_NO}|bon[\s-]?{_NO}"
    rf"|receipt(?:[\s-]?{_NO})?|ticket\s?{_NO}|{_NO}\s?(?:de\s)?facture|facture\s?{_NO}",
    "contract": rf"vertrags?[\s-]?{_NO}|contract[\s-]?{_NO}|agreement[\s-]?{_NO}|polic(?:en|e|y)[\s-]?{_NO}"
    rf"|versicherungs(?:schein)?[\s-]?{_NO}|contrat(?:\s[a-z]{{2,20}}){{0,3}}\s?{_NO}"
    rf"|{_NO}\sde\s(?:contrat|police)",
    "order": rf"(?:bestell|auftrags|angebots|lieferschein)[\s-]?{_NO}"
    rf"|(?:order|quote|quotation|delivery note)[\s-]?{_NO}|(?:devis|commande)\s?{_NO}"
    rf"|{_NO}\sde\s(?:devis|commande)",
    "customer": rf"kunden[\s-]?{_NO}|customer[\s-]?{_NO}|mitglieds[\s-]?{_NO}|versicherten[\s-]?{_NO}"
    rf"|aktenzeichen|(?:your|our) reference|reference[\s-]?{_NO}|account[\s-]?(?:number|no\b\.?)"
    rf"|reference client|{_NO}\sde\sclient|client\s?{_NO}|numero fiscal",
    # Kinds that only their own document types look for: a receipt's footer "St.-Nr." is not its reference.
    "personnel": rf"personal[\s-]?{_NO}|pers\.?[\s-]?{_NO}|employee[\s-]?{_NO}|staff[\s-]?{_NO}|matricule"
    rf"|payroll[\s-]?{_NO}",
    "tax": rf"steuer[\s-]?{_NO}|st\.[\s-]?nr\b\.?|aktenzeichen"
    rf"|unique taxpayer reference(?:\s?\(utr\))?|\butr\b|tax reference|reference de l'avis",
    "statement": rf"(?:konto)?auszug[\s-]?{_NO}|statement[\s-]?{_NO}|releve[\s-]?{_NO}",
}
_REFERENCE_RES = {kind: re.compile(rf"(?<![a-z])(?:{labels})") for kind, labels in _REFERENCE_LABELS.items()}
# The value follows on the label's line or, in a form, alone on the next one: groups of letters and
# digits, with single spaces inside ("KF 4471 9920-3"); two spaces end it, as they end a column.
_VALUE = re.compile(
    r"[ \t]{0,4}[:#]?[ \t]{0,20}\n?[ \t]{0,20}"
    r"(?P<value>[a-z0-9][a-z0-9/_.-]{0,30}(?: [a-z0-9/_.-]{0,12}\d[a-z0-9/_.-]{0,12}){0,5})"
)
_HEADER_GAP = re.compile(r"[ \t]{2,}\S")
_CONTRACT_FIRST = ("contract", "invoice", "order", "customer")
_ORDER_FIRST = ("order", "invoice", "contract", "customer")
_REFERENCE_ORDER = {
    "contract": _CONTRACT_FIRST,
    "insurance": _CONTRACT_FIRST,
    "offer": _ORDER_FIRST,
    "order_confirmation": _ORDER_FIRST,
    "delivery_note": _ORDER_FIRST,
    "payslip": ("personnel", "customer"),
    "tax_document": ("tax", "customer", "invoice"),
    "bank_statement": ("statement", "customer"),
}
_DEFAULT_REFERENCE_ORDER = ("invoice", "contract", "order", "customer")
_MAX_LABELS = 50

_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}")
# Fixed IBAN lengths for the SEPA countries; they let us cut off whatever OCR glued on.
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}  # fmt: skip


def find_reference(text: str, document_type: str) -> str | None:
    """The invoice, contract, order, customer, personnel or tax number; the kind that fits the type first."""
    folded = fold(text)
    for kind in _REFERENCE_ORDER.get(document_type, _DEFAULT_REFERENCE_ORDER):
        for number, label in enumerate(_REFERENCE_RES[kind].finditer(folded)):
            if number >= _MAX_LABELS:
                break
            value = _value_after(text, folded, label.end()) or _value_below(text, folded, label)
            if value:
                return value
    return None


def _value_after(text: str, folded: str, position: int) -> str | None:
    match = _VALUE.match(folded, position)
    return _plausible(text[match.start("value") : match.end("value")]) if match else None


def _value_below(text: str, folded: str, label: re.Match[str]) -> str | None:
    # A table's header row ("Rechnungsnummer   Rechnungsdatum   Betrag") has its values in the
    # same columns of the next line.
    line_start = folded.rfind("\n", 0, label.start()) + 1
    line_end = folded.find("\n", label.end())
    if line_end < 0 or not _HEADER_GAP.match(folded, label.end()):
        return None
    column = label.start() - line_start
    next_end = folded.find("\n", line_end + 1)
    next_line = text[line_end + 1 : next_end if next_end >= 0 else len(text)][:400]
    for token in re.finditer(r"\S+", next_line):
        if abs(token.start() - column) <= 3:
            return _plausible(token.group(0))
    return None


def _plausible(raw: str) -> str | None:
    value = raw.strip().rstrip("./-_")
    if len(value) >= 3 and re.search(r"\d", value) and not DATE_RE.fullmatch(value):
        return value
    return None


def find_ibans(text: str) -> tuple[str, ...]:
    """Valid IBANs, without spaces, in order of appearance."""
    found = []
    for match in _IBAN_RE.finditer(text):
        compact = match.group(0).replace(" ", "")
        candidate = compact[: _IBAN_LENGTHS.get(compact[:2], len(compact))]
        if iban_is_valid(candidate):
            found.append(candidate)
    return tuple(dict.fromkeys(found))


def iban_is_valid(iban: str) -> bool:
    """Whether ``iban`` (without spaces) has its country's length and a correct mod-97 checksum."""
    if not 15 <= len(iban) <= 34 or not iban.isalnum() or len(iban) != _IBAN_LENGTHS.get(iban[:2], len(iban)):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1
