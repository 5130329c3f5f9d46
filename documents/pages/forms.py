"""Forms of the documents pages.

The document page's edit form only checks shapes (a date is a date, an entry is one the
document's owner may use) and turns what was posted into the changes
``documents.organise.editing.document_update`` takes: the rules stay in the service. It
sends only the fields that differ from what is stored, so saving an untouched form changes
nothing, and a person's edit makes only the fields they changed theirs (``user_fields``).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django import forms

from accounts.access import Viewer
from accounts.models import User
from docuelevate.errors import InvalidInput
from documents.models import (
    Correspondent,
    CustomField,
    CustomFieldType,
    CustomFieldValue,
    Document,
    DocumentType,
    StoragePath,
    Tag,
)
from documents.organise.custom_fields import MAX_LONG_TEXT, MAX_TEXT, custom_value_columns
from documents.organise.editing import entries_usable
from documents.organise.notes import MAX_NOTE_LENGTH

CUSTOM_PREFIX = "cf_"
# The form's fields for the managed lists, by the names the service takes.
ENTRY_FIELDS = (
    ("document_type", DocumentType, "Type"),
    ("correspondent", Correspondent, "Correspondent"),
    ("storage_path", StoragePath, "Storage path"),
)
NO_ENTRY = "— none —"


class EntryChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]  # django-stubs' generic over the model
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} (global)" if obj.owner_id is None else str(obj.name)


class UserChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]  # as above
    def label_from_instance(self, obj: Any) -> str:
        name = getattr(obj, "display_name", "") or ""
        return f"{name} ({obj.get_username()})" if name else str(obj.get_username())


class MoneyWidget(forms.MultiWidget):
    """An amount and its currency side by side; the currency box is named for screen readers."""

    def __init__(self, *, currency_label: str) -> None:
        super().__init__(
            widgets=[
                forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
                forms.TextInput(
                    attrs={
                        "class": "currency",
                        "size": 4,
                        "maxlength": 3,
                        "aria-label": currency_label,
                        "autocomplete": "off",
                    }
                ),
            ]
        )

    def decompress(self, value: Any) -> list[Any]:
        return list(value) if value else [None, None]


class MoneyField(forms.MultiValueField):
    """``(amount, currency)``; an empty amount is no value, whatever the currency says."""

    def __init__(self, *, default_currency: str, **kwargs: Any) -> None:
        fields = (
            forms.DecimalField(max_digits=20, decimal_places=4, required=False),
            forms.CharField(max_length=3, min_length=3, required=False),
        )
        kwargs.setdefault("widget", MoneyWidget(currency_label=f"{kwargs.get('label', 'Amount')}: currency"))
        super().__init__(fields=fields, require_all_fields=False, required=False, **kwargs)
        self.default_currency = default_currency

    def compress(self, data_list: list[Any]) -> tuple[Decimal, str] | None:
        if not data_list or data_list[0] in (None, ""):
            return None
        currency = (data_list[1] or self.default_currency or "").upper()
        return (data_list[0], currency)

    def has_changed(self, initial: Any, data: Any) -> bool:
        # Compared as a value: "12.5" and "12.50 EUR" typed for a stored 12.50 EUR are the same.
        before = self.compress(list(initial)) if initial else None
        try:
            after = self.clean(data)
        except forms.ValidationError:
            return True
        return _money_key(before) != _money_key(after)


def _money_key(value: tuple[Decimal, str] | None) -> tuple[Decimal, str] | None:
    return None if value is None else (Decimal(value[0]).normalize(), value[1])


def _plain(number: Decimal) -> str:
    """A decimal without trailing zeros or an exponent (100, not 1E+2)."""
    return format(number.normalize(), "f")


def _custom_form_field(field: CustomField) -> forms.Field:
    """The input of one custom field, typed by its data type."""
    label = field.name
    kind = field.data_type
    common: dict[str, Any] = {"label": label, "required": False}
    if kind == CustomFieldType.LONG_TEXT:
        return forms.CharField(max_length=MAX_LONG_TEXT, widget=forms.Textarea(attrs={"rows": 3}), **common)
    if kind == CustomFieldType.INTEGER:
        return forms.IntegerField(**common)
    if kind == CustomFieldType.DECIMAL:
        return forms.DecimalField(max_digits=20, decimal_places=4, **common)
    if kind == CustomFieldType.MONETARY:
        return MoneyField(default_currency=field.default_currency, label=label)
    if kind == CustomFieldType.DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), **common)
    if kind == CustomFieldType.BOOLEAN:
        return forms.BooleanField(**common)
    if kind == CustomFieldType.URL:
        return forms.URLField(max_length=MAX_TEXT, assume_scheme="https", **common)
    if kind == CustomFieldType.SELECT:
        options = [(str(option), str(option)) for option in field.options or []]
        return forms.ChoiceField(choices=[("", NO_ENTRY), *options], **common)
    if kind == CustomFieldType.DOCUMENT_LINK:
        return forms.IntegerField(
            min_value=1,
            help_text="The number of another of your documents (its page is /files/<number>).",
            **common,
        )
    return forms.CharField(max_length=MAX_TEXT, **common)


def _custom_initial(value: CustomFieldValue) -> Any:
    """A stored value as its input shows it."""
    kind = value.field.data_type
    if kind == CustomFieldType.LONG_TEXT:
        return value.value_long_text
    if kind == CustomFieldType.INTEGER:
        return value.value_int
    if kind == CustomFieldType.DECIMAL:
        return None if value.value_decimal is None else _plain(value.value_decimal)
    if kind == CustomFieldType.MONETARY:
        if value.value_decimal is None:
            return None
        return [value.value_decimal.quantize(Decimal("0.01")), value.value_currency]
    if kind == CustomFieldType.DATE:
        return value.value_date
    if kind == CustomFieldType.BOOLEAN:
        return value.value_bool
    if kind == CustomFieldType.DOCUMENT_LINK:
        return value.value_document_id
    return value.value_text


def _custom_change(field: CustomField, cleaned: Any) -> Any:
    """What the service takes for an input's cleaned value; None removes the value."""
    kind = field.data_type
    if kind == CustomFieldType.BOOLEAN:
        return bool(cleaned)
    if cleaned in (None, ""):
        return None
    if kind == CustomFieldType.MONETARY:
        amount, currency = cleaned
        return {"amount": str(amount), "currency": currency or None}
    if kind == CustomFieldType.DECIMAL:
        return str(cleaned)
    return cleaned


class DocumentEditForm(forms.Form):
    """The document page's edit form, built for one document and the person editing it."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    document_title = forms.CharField(label="Title", max_length=255)
    document_type = EntryChoiceField(
        queryset=DocumentType.objects.none(), required=False, empty_label=NO_ENTRY
    )
    correspondent = EntryChoiceField(
        queryset=Correspondent.objects.none(), required=False, empty_label=NO_ENTRY
    )
    document_date = forms.DateField(
        label="Date", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    language = forms.CharField(
        max_length=16,
        required=False,
        help_text="A language code such as en, de or fr.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 6}),
    )
    storage_path = EntryChoiceField(queryset=StoragePath.objects.none(), required=False, empty_label=NO_ENTRY)

    def __init__(self, data: Any = None, *, document: Document, viewer: Viewer) -> None:
        self.document = document
        self.custom_fields = list(entries_usable(CustomField, document=document).order_by("name", "pk"))
        stored = {
            value.field_id: value
            for value in CustomFieldValue.objects.filter(document=document).select_related("field")
        }
        initial: dict[str, Any] = {
            "version": document.version,
            "document_title": document.document_title,
            "document_type": document.document_type_id,
            "correspondent": document.correspondent_id,
            "document_date": document.document_date,
            "tags": [tag.pk for tag in document.tags.all()],
            "language": document.language,
            "storage_path": document.storage_path_id,
        }
        for custom_field in self.custom_fields:
            if custom_field.pk in stored:
                initial[f"{CUSTOM_PREFIX}{custom_field.pk}"] = _custom_initial(stored[custom_field.pk])
        super().__init__(data, initial=initial)
        for name, model, label in ENTRY_FIELDS:
            choice = self.fields[name]
            assert isinstance(choice, forms.ModelChoiceField)
            choice.queryset = entries_usable(model, document=document).order_by("name", "pk")
            choice.label = label
        tags = self.fields["tags"]
        assert isinstance(tags, forms.ModelMultipleChoiceField)
        tags.queryset = entries_usable(Tag, document=document).order_by("name", "pk")
        if viewer.operator:
            # Only operators give a document to someone else; for the others the field is
            # not there at all, so nothing posted in its name is read.
            self.fields["owner"] = UserChoiceField(
                queryset=User.objects.filter(is_active=True).order_by("username"),
                empty_label=None,
                label="Owner",
            )
            self.initial["owner"] = document.owner_id
        for custom_field in self.custom_fields:
            name = f"{CUSTOM_PREFIX}{custom_field.pk}"
            self.fields[name] = form_field = _custom_form_field(custom_field)
            kept = self.initial.get(name)
            options = custom_field.options or []
            if isinstance(form_field, forms.ChoiceField) and kept and kept not in options:
                # An option taken out of the field since: still offered for this document,
                # so saving other fields does not force a new choice.
                form_field.choices = [("", NO_ENTRY), *((str(o), str(o)) for o in options), (kept, kept)]

    @property
    def custom_bound_fields(self) -> list[forms.BoundField]:
        return [self[f"{CUSTOM_PREFIX}{custom_field.pk}"] for custom_field in self.custom_fields]

    @property
    def main_bound_fields(self) -> list[forms.BoundField]:
        names = [
            "document_title",
            "document_type",
            "correspondent",
            "document_date",
            "language",
            "storage_path",
        ]
        return [self[name] for name in names]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Each custom value is checked by the service's own rule here too, so a refusal is
        # shown beside its input (the service checks it again when saving).
        for custom_field in self.custom_fields:
            name = f"{CUSTOM_PREFIX}{custom_field.pk}"
            if name not in cleaned or name not in self.changed_data:
                continue
            value = _custom_change(custom_field, cleaned[name])
            if value is None:
                continue
            try:
                custom_value_columns(custom_field, value, owner_id=self.document.owner_id)
            except InvalidInput as error:
                self.add_error(name, error.message)
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The changed fields, as document_update takes them."""
        changes: dict[str, Any] = {}
        custom: dict[int, Any] = {}
        by_name = {f"{CUSTOM_PREFIX}{custom_field.pk}": custom_field for custom_field in self.custom_fields}
        for name in self.changed_data:
            value = self.cleaned_data.get(name)
            if name == "version":
                continue
            if name in by_name:
                custom[by_name[name].pk] = _custom_change(by_name[name], value)
            elif name in {"document_type", "correspondent", "storage_path", "owner"}:
                changes[name] = value.pk if value is not None else None
            elif name == "tags":
                changes[name] = sorted(tag.pk for tag in value or ())
            else:
                changes[name] = value
        if custom:
            changes["custom_fields"] = custom
        return changes

    def field_for_change(self, change: str) -> str | None:
        """The form field a change came from; None for the custom fields, which are many."""
        return None if change == "custom_fields" else change

    def differences(self) -> list[dict[str, str]]:
        """Each field where what was posted differs from what is stored: for the conflict
        view, "theirs" (stored now) beside "yours" (posted)."""
        rows = []
        for name in self.changed_data:
            if name == "version" or name not in self.cleaned_data:
                continue
            bound = self[name]
            rows.append(
                {
                    "field": name,
                    "label": str(bound.label),
                    "theirs": self._shown(name, self.get_initial_for_field(bound.field, name)),
                    "yours": self._shown(name, self.cleaned_data[name]),
                }
            )
        return rows

    def _shown(self, name: str, value: Any) -> str:
        """A value as a person reads it (names of entries, ISO dates, "yes"/"no")."""
        field = self.fields[name]
        if isinstance(field, forms.ModelChoiceField):
            # Every entry field's queryset is set in __init__.
            entries = field.queryset
            assert entries is not None
            if isinstance(field, forms.ModelMultipleChoiceField):
                wanted = {getattr(item, "pk", item) for item in value or []}
                return ", ".join(str(tag.name) for tag in entries.filter(pk__in=wanted)) or "—"
            key = getattr(value, "pk", value)
            found = entries.filter(pk=key).first() if key is not None else None
            return field.label_from_instance(found) if found is not None else "—"
        if isinstance(field, forms.BooleanField):
            return "yes" if value else "no"
        if isinstance(field, MoneyField):
            if not value:
                return "—"
            amount, currency = value
            return f"{Decimal(amount).quantize(Decimal('0.01'))} {currency}".strip()
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return _plain(value)
        return "—" if value in (None, "") else str(value)


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note", max_length=MAX_NOTE_LENGTH, widget=forms.Textarea(attrs={"rows": 3}), strip=True
    )
