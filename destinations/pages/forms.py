"""The destination form of the pages and the admin: it checks shapes, the services decide.

A kind needs no form of its own: a field is made for each of its settings (a box to tick
for ``flag_settings``, text otherwise) and for each of its secrets. Secret fields are
write-only: they never show what is stored, an empty one keeps it, and a box removes it.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from destinations.kinds.base import Kind
from destinations.models import CollisionPolicy, Destination
from destinations.paths import MAX_TEMPLATE_LENGTH, PLACEHOLDERS
from destinations.selectors import destination_secret_names

# The longest setting and secret any channel takes (the API too): room for a private key
# or a service account's JSON.
SETTING_MAX_LENGTH = 8192
SECRET_MAX_LENGTH = 65536
TEMPLATE_HELP = (
    "Where below the folder a document goes: {year}/{document_type}/{filename} files an invoice as "
    "2024/Invoice/2024-03-12_Invoice.pdf. Placeholders: "
    + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    + " ({year} {month} {day}: the document's date; {filename}: the processed PDF's name; {owner}: "
    "the owner's user name). Without {filename} the file keeps its own name inside; empty: "
    "straight into the folder."
)
STORED_VALUE_HELP = "Stored; leave empty to keep it."
COLLISION_HELP = (
    "When a file that is not this document's already has the name. Keep both: the new one becomes "
    "name (2).pdf, name (3).pdf, …; replace: the other file is overwritten; keep the file there: this "
    "delivery is skipped. The same content already there always counts as delivered."
)


def setting_label(name: str) -> str:
    """``endpoint_url`` as a person reads it: "Endpoint URL"."""
    words = [word.upper() if word in {"url", "acl", "id", "tls", "ssl"} else word for word in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


class WriteOnlyTextarea(forms.Textarea):
    """A text box for a secret of several lines (a private key) that never shows a value:
    neither the stored one nor what was typed before a refused submission."""

    def format_value(self, value: Any) -> str | None:
        return None


def kind_fields(kind: type[Kind], destination: Destination | None = None) -> dict[str, forms.Field]:
    """The fields of one kind's settings and secrets: ``setting_<name>`` (with the stored
    value), ``secret_<name>`` (never with it) and, for a secret that is stored,
    ``clear_<name>`` to remove it."""
    fields: dict[str, forms.Field] = {}
    for name in kind.setting_names:
        stored = destination.settings.get(name) if destination is not None else None
        if name in kind.flag_settings:
            initial = stored if isinstance(stored, bool) else kind.flag_settings[name]
            fields[f"setting_{name}"] = forms.BooleanField(
                label=setting_label(name), required=False, initial=initial, help_text=kind_help(kind, name)
            )
        else:
            # A setting kept as a mapping (Paperless-ngx's custom fields) is edited as JSON text.
            shown = json.dumps(stored, ensure_ascii=False) if isinstance(stored, dict | list) else stored
            fields[f"setting_{name}"] = forms.CharField(
                label=setting_label(name),
                required=False,
                max_length=SETTING_MAX_LENGTH,
                initial=shown,
                widget=forms.Textarea(attrs={"rows": 3}) if name in kind.multiline_names else None,
                help_text=kind_help(kind, name),
            )
    kept = (destination_secret_names(destination) or []) if destination is not None else []
    for name in entered_secret_names(kind):
        fields[f"secret_{name}"] = forms.CharField(
            label=setting_label(name),
            required=False,
            strip=False,
            max_length=SECRET_MAX_LENGTH,
            # Never rendered back, not even after a refused submission.
            widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
            if name in kind.multiline_names
            else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=f"{kind_help(kind, name)} {STORED_VALUE_HELP if name in kept else ''}".strip(),
        )
        if name in kept:
            fields[f"clear_{name}"] = forms.BooleanField(
                required=False, label=f"Remove the stored {setting_label(name).lower()}"
            )
    return fields


def kind_help(kind: type[Kind], name: str) -> str:
    """What to enter in ``kind``'s setting or secret ``name``, as the kind describes it."""
    return kind.help_texts.get(name, "")


def entered_secret_names(kind: type[Kind]) -> list[str]:
    """The secrets a person enters: not those the kind comes by itself (a token a connect
    page obtained)."""
    return [name for name in kind.secret_names if name not in kind.carried_secret_names]


class KindFieldsMixin:
    """Reads a form's ``kind_fields`` back: the settings and the secrets to change."""

    kind: type[Kind]
    cleaned_data: dict[str, Any]

    def settings_values(self) -> dict[str, Any]:
        """The kind's settings as entered (all of them: they replace the stored ones)."""
        return {name: self.cleaned_data.get(f"setting_{name}") for name in self.kind.setting_names}

    def secrets_given(self) -> dict[str, str]:
        """The secrets to change: those entered, and "" for each one to remove."""
        given = {}
        for name in entered_secret_names(self.kind):
            if self.cleaned_data.get(f"clear_{name}"):
                given[name] = ""
            elif value := self.cleaned_data.get(f"secret_{name}"):
                given[name] = value
        return given


class DestinationForm(KindFieldsMixin, forms.Form):
    """A new destination of ``kind``, or ``destination`` to change. One the environment
    defines shows only what may change (its name, folder template and collision policy)."""

    name = forms.CharField(max_length=100, help_text="How you tell it apart in lists, e.g. Office archive.")
    enabled = forms.BooleanField(required=False, initial=True, help_text="Deliver new documents here.")
    folder_template = forms.CharField(required=False, max_length=MAX_TEMPLATE_LENGTH, help_text=TEMPLATE_HELP)
    collision_policy = forms.ChoiceField(
        choices=CollisionPolicy.choices,
        initial=CollisionPolicy.RENAME,
        label="When another file has the name",
        help_text=COLLISION_HELP,
    )

    def __init__(
        self,
        *args: Any,
        kind: type[Kind],
        destination: Destination | None = None,
        may_make_system_wide: bool = False,
        **kwargs: Any,
    ) -> None:
        if destination is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": destination.name,
                    "enabled": destination.enabled,
                    "folder_template": destination.folder_template,
                    "collision_policy": destination.collision_policy,
                },
            )
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.from_environment = destination is not None and bool(destination.system_key)
        if destination is None and may_make_system_wide:
            self.fields["system_wide"] = forms.BooleanField(
                required=False, label="System-wide: every user's documents go here"
            )
        if self.from_environment:
            del self.fields["enabled"]  # the environment's <KIND>_ENABLED decides
        else:
            self.fields.update(kind_fields(kind, destination))

    def changes(self) -> dict[str, Any]:
        """What ``destination_update`` is to change: for an environment's destination only
        what it lets change, otherwise everything on the form (secrets only when given)."""
        data = self.cleaned_data
        changes: dict[str, Any] = {
            "name": data["name"],
            "folder_template": data["folder_template"],
            "collision_policy": data["collision_policy"],
        }
        if not self.from_environment:
            changes.update(
                enabled=data["enabled"], settings=self.settings_values(), secrets=self.secrets_given()
            )
        return changes
