"""How the document page words a history row: the service records machine names and JSON
values (documents.organise.editing); a person reads labels and plain values."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

FIELD_LABELS = {
    "document_title": "Title",
    "document_type": "Type",
    "correspondent": "Correspondent",
    "document_date": "Date",
    "tags": "Tags",
    "language": "Language",
    "storage_path": "Storage path",
    "owner": "Owner",
}
CUSTOM_FIELD = "custom_field:"


@register.filter
def change_field(name: str) -> str:
    """``document_title`` is "Title"; a custom field's row is named by the field."""
    if name.startswith(CUSTOM_FIELD):
        return name.removeprefix(CUSTOM_FIELD)
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


@register.filter
def change_value(value: Any) -> str:
    """A recorded value as text: "—" for none, lists joined, money as "12.50 EUR"."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency') or ''}".strip()
    return str(value)
