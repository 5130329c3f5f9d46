"""Custom field values: what a person or a client sends, checked and stored in the column of
the field's type (``CustomFieldValue``), and read back as they were sent."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from docuelevate.errors import InvalidInput
from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document

MAX_TEXT = 2048
MAX_LONG_TEXT = 100_000
# Bounds of the decimal column (20 digits, 4 after the point).
MAX_DECIMAL = Decimal("9999999999999999.9999")
COLUMNS = (
    "value_text", "value_long_text", "value_int", "value_decimal", "value_currency", "value_date",
    "value_bool", "value_document_id",
)  # fmt: skip


def custom_value_columns(field: CustomField, raw: Any, *, owner_id: int) -> dict[str, Any]:
    """The columns of a value of ``field`` (every column: those not used are emptied), or
    InvalidInput naming the field and what it takes. ``owner_id`` bounds a document link to
    documents of the same owner."""
    columns: dict[str, Any] = dict.fromkeys(COLUMNS)
    columns["value_currency"] = ""
    kind = field.data_type
    what = f"The field {field.name!r}"
    if kind in {CustomFieldType.TEXT, CustomFieldType.LONG_TEXT, CustomFieldType.URL, CustomFieldType.SELECT}:
        if not isinstance(raw, str):
            raise InvalidInput(f"{what} takes text.")
        text = raw.strip()
        if kind == CustomFieldType.LONG_TEXT:
            if len(text) > MAX_LONG_TEXT:
                raise InvalidInput(f"{what} takes at most {MAX_LONG_TEXT} characters.")
            columns["value_long_text"] = text
            return columns
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"{what} takes at most {MAX_TEXT} characters.")
        if kind == CustomFieldType.URL and urlsplit(text).scheme not in {"http", "https"}:
            raise InvalidInput(f"{what} takes an http or https address.")
        if kind == CustomFieldType.SELECT and text not in (field.options or []):
            raise InvalidInput(f"{what} takes one of: {', '.join(map(str, field.options or []))}.")
        columns["value_text"] = text
    elif kind == CustomFieldType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise InvalidInput(f"{what} takes a whole number.")
        try:
            number = int(raw)
        except ValueError:
            raise InvalidInput(f"{what} takes a whole number.") from None
        if abs(number) > 2**63 - 1:
            raise InvalidInput(f"{what} takes a smaller number.")
        columns["value_int"] = number
    elif kind in {CustomFieldType.DECIMAL, CustomFieldType.MONETARY}:
        amount, currency = _amount(raw, field)
        columns["value_decimal"] = amount
        columns["value_currency"] = currency if kind == CustomFieldType.MONETARY else ""
    elif kind == CustomFieldType.DATE:
        try:
            columns["value_date"] = (
                raw if isinstance(raw, datetime.date) else datetime.date.fromisoformat(str(raw))
            )
        except ValueError:
            raise InvalidInput(f"{what} takes a date as YYYY-MM-DD.") from None
    elif kind == CustomFieldType.BOOLEAN:
        if not isinstance(raw, bool):
            raise InvalidInput(f"{what} takes true or false.")
        columns["value_bool"] = raw
    elif kind == CustomFieldType.DOCUMENT_LINK:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidInput(f"{what} takes a document id.")
        # Only the owner's own documents: a link never reveals another user's document.
        if not Document.objects.filter(pk=raw, owner_id=owner_id, trashed_at__isnull=True).exists():
            raise InvalidInput(f"{what}: no document {raw} of this owner.")
        columns["value_document_id"] = raw
    return columns


def _amount(raw: Any, field: CustomField) -> tuple[Decimal, str]:
    """A decimal, or for money ``{"amount", "currency"}``, "12.50 EUR" or a bare number."""
    currency = field.default_currency or ""
    if isinstance(raw, dict):
        currency = str(raw.get("currency") or currency).upper()
        raw = raw.get("amount")
    elif isinstance(raw, str) and " " in raw.strip():
        raw, _, currency = raw.strip().rpartition(" ")
        currency = currency.upper()
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise InvalidInput(f"The field {field.name!r} takes a number.")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise InvalidInput(f"The field {field.name!r} takes a number, such as 12.50.") from None
    if not amount.is_finite() or abs(amount) > MAX_DECIMAL:
        raise InvalidInput(f"The field {field.name!r} takes a smaller number.")
    if currency and not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        raise InvalidInput(f"The field {field.name!r} takes a currency as a three-letter code, such as EUR.")
    return amount.quantize(Decimal("0.0001")), currency


def custom_value_shown(value: CustomFieldValue) -> Any:
    """The value as the API answers it and the history records it (JSON)."""
    kind = value.field.data_type
    if kind == CustomFieldType.LONG_TEXT:
        return value.value_long_text
    if kind in {CustomFieldType.INTEGER}:
        return value.value_int
    if kind == CustomFieldType.DECIMAL:
        return None if value.value_decimal is None else str(value.value_decimal.normalize())
    if kind == CustomFieldType.MONETARY:
        if value.value_decimal is None:
            return None
        return {"amount": f"{value.value_decimal:.2f}", "currency": value.value_currency or None}
    if kind == CustomFieldType.DATE:
        return value.value_date.isoformat() if value.value_date else None
    if kind == CustomFieldType.BOOLEAN:
        return value.value_bool
    if kind == CustomFieldType.DOCUMENT_LINK:
        return value.value_document_id
    return value.value_text
