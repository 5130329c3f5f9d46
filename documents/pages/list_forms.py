"""The forms of the /organise pages: they check shapes; documents.organise.lists decides.

One form per list, each with the name and the list's own attributes (a tag's colour,
parent and inbox flag, a storage path's template, a custom field's type and options), and
``attributes()`` that hands those to ``entry_create``/``entry_update`` as the API would.
"""

from __future__ import annotations

from typing import Any

from django import forms

from documents.models import CustomField, CustomFieldType, StoragePath, Tag
from documents.organise.lists import MAX_OPTIONS, EntryKind
from documents.organise.storage_paths import MAX_TEMPLATE_LENGTH, PLACEHOLDERS

DEFAULT_COLOUR = "#6b7280"  # the model's default: a grey that reads on light and dark pages
TEMPLATE_HELP = (
    "Where a document's processed file goes, such as {created_year}/{correspondent}/{title}. "
    "Placeholders: " + ", ".join("{" + name + "}" for name in PLACEHOLDERS) + "."
)


class EntryForm(forms.Form):
    """A document type's or a correspondent's form; the other lists add their attributes."""

    name = forms.CharField(max_length=128)
    # Operators only: the page shows the box to them alone, and the service refuses the
    # others (403) should they send it anyway.
    is_global = forms.BooleanField(required=False, label="Global: every user may use it")

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            # Whose an entry is does not change once it exists.
            del self.fields["is_global"]

    def attributes(self) -> dict[str, Any]:
        """What the service takes besides the name and whether the entry is global."""
        return {}


class TagForm(EntryForm):
    colour = forms.RegexField(
        regex=r"^#[0-9a-fA-F]{6}$",
        initial=DEFAULT_COLOUR,
        widget=forms.TextInput(attrs={"type": "color"}),
        error_messages={"invalid": "Choose a colour such as #1f77b4."},
    )
    parent_tag = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Parent tag")
    is_inbox = forms.BooleanField(
        required=False, label="Inbox tag: new documents get it until someone has looked at them"
    )

    def __init__(self, *args: Any, parents: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent_tag"].choices = [("", "None: a tag of its own"), *parents]  # type: ignore[attr-defined]  # a ChoiceField

    def attributes(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"colour": data["colour"], "parent_tag": data["parent_tag"], "is_inbox": data["is_inbox"]}


class StoragePathForm(EntryForm):
    template = forms.CharField(max_length=MAX_TEMPLATE_LENGTH, help_text=TEMPLATE_HELP)

    def attributes(self) -> dict[str, Any]:
        return {"template": self.cleaned_data["template"]}


class CustomFieldForm(EntryForm):
    data_type = forms.ChoiceField(choices=CustomFieldType.choices, label="Type")
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Select fields: the options offered, one a line.",
    )
    default_currency = forms.CharField(
        required=False, max_length=3, label="Currency", help_text="Monetary fields: a code such as EUR."
    )
    extract_from = forms.ChoiceField(
        required=False,
        choices=[("", "Nothing"), ("total", "The document's total")],
        label="Filled by extraction from",
        help_text="Monetary and decimal fields only.",
    )

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, creating=creating, **kwargs)
        if not creating:
            # A field keeps its type (its values are stored by type); the page says so.
            del self.fields["data_type"]

    def clean_options(self) -> list[str]:
        lines = [line.strip() for line in str(self.cleaned_data["options"]).splitlines()]
        options = [line for line in lines if line]
        if len(options) > MAX_OPTIONS:
            raise forms.ValidationError(f"At most {MAX_OPTIONS} options.")
        return options

    def attributes(self) -> dict[str, Any]:
        data = self.cleaned_data
        attributes = {
            "options": data["options"],
            "default_currency": data["default_currency"],
            "extract_from": data["extract_from"],
        }
        if "data_type" in data:
            attributes["data_type"] = data["data_type"]
        return attributes


def entry_form(
    kind: EntryKind,
    data: Any = None,
    *,
    entry: Any = None,
    parents: list[tuple[int, str]] | None = None,
) -> EntryForm:
    """The form of ``kind``'s list: to add an entry, or to change ``entry`` (its values shown)."""
    initial: dict[str, Any] = {}
    if entry is not None:
        initial = {"name": entry.name}
        if isinstance(entry, Tag):
            initial.update(colour=entry.colour, parent_tag=entry.parent_id, is_inbox=entry.is_inbox)
        elif isinstance(entry, StoragePath):
            initial.update(template=entry.template)
        elif isinstance(entry, CustomField):
            initial.update(
                options="\n".join(entry.options),
                default_currency=entry.default_currency,
                extract_from=entry.extract_from,
            )
    creating = entry is None
    prefix = "new" if creating else "edit"
    if kind.model is Tag:
        return TagForm(data, initial=initial, prefix=prefix, creating=creating, parents=parents or [])
    form_class = {StoragePath: StoragePathForm, CustomField: CustomFieldForm}.get(kind.model, EntryForm)
    return form_class(data, initial=initial, prefix=prefix, creating=creating)


class MergeForm(forms.Form):
    """The entries to merge into this one, among those ``entries_mergeable`` allows."""

    sources = forms.TypedMultipleChoiceField(
        coerce=int,
        label="Merge these into it",
        help_text="Hold Ctrl (⌘ on a Mac) to choose several.",
    )

    def __init__(self, *args: Any, candidates: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sources"].choices = candidates  # type: ignore[attr-defined]  # a ChoiceField
        self.fields["sources"].widget.attrs["size"] = min(max(len(candidates), 2), 10)


class DeleteForm(forms.Form):
    """Delete an entry; its documents move to ``replacement`` when one is chosen."""

    replacement = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Move its documents to"
    )

    def __init__(self, *args: Any, candidates: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["replacement"].choices = [("", "Nothing: they lose it"), *candidates]  # type: ignore[attr-defined]  # a ChoiceField
