"""Reference numbers (invoice, contract, order, customer) and IBANs."""

from __future__ import annotations

import re

from documents.metadata.rules.dates import DATE_RE

_NO = r"(?:nummer|nr|no|number|num|id)\b\.?|\s?#"
_REFERENCE_LABELS = {
    "invoice": rf"rechnungs?[\s-]?(?:{_NO})|invoice[\s-]?(?:{_NO})|beleg[\s-]?(?:{_NO})|bon[\s-]?(?:{_NO})"
    rf"|receipt[\s-]?(?:{_NO})",
    "contract": rf"vertrags?[\s-]?(?:{_NO})|contract[\s-]?(?:{_NO})|polic(?:en|e|y)[\s-]?(?:{_NO})"
    rf"|versicherungs(?:schein)?[\s-]?(?:{_NO})",
    "order": rf"(?:bestell|auftrags|angebots|lieferschein)[\s-]?(?:{_NO})"
    rf"|(?:order|quote|quotation|delivery note)[\s-]?(?:{_NO})",
    "customer": rf"kunden[\s-]?(?:{_NO})|customer[\s-]?(?:{_NO})|mitglieds[\s-]?(?:{_NO})|aktenzeichen"
    rf"|(?:your|our) reference|reference[\s-]?(?:{_NO})",
}
# The value may sit on the label's line or, in tables, alone on the next one.
_REFERENCE_VALUE = r"[ \t]{0,4}[:#]?[ \t]{0,20}\n?[ \t]{0,20}(?P<value>[A-Za-z0-9][A-Za-z0-9/_.-]{1,30})"
_REFERENCE_RES = {
    kind: re.compile(rf"\b(?:{labels}){_REFERENCE_VALUE}", re.IGNORECASE)
    for kind, labels in _REFERENCE_LABELS.items()
}
_CONTRACT_FIRST = ("contract", "invoice", "order", "customer")
_ORDER_FIRST = ("order", "invoice", "contract", "customer")
_REFERENCE_ORDER = {
    "contract": _CONTRACT_FIRST,
    "insurance": _CONTRACT_FIRST,
    "offer": _ORDER_FIRST,
    "order_confirmation": _ORDER_FIRST,
    "delivery_note": _ORDER_FIRST,
}
_DEFAULT_REFERENCE_ORDER = ("invoice", "contract", "order", "customer")

_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}")
# Fixed IBAN lengths for the SEPA countries; they let us cut off whatever OCR glued on.
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}  # fmt: skip


def find_reference(text: str, document_type: str) -> str | None:
    """The invoice, contract, order or customer number; the kind that fits the type first."""
    for kind in _REFERENCE_ORDER.get(document_type, _DEFAULT_REFERENCE_ORDER):
        for match in _REFERENCE_RES[kind].finditer(text):
            value = match.group("value").rstrip("./-_")
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
