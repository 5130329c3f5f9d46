"""The source form of the pages and the admin: it checks shapes, the kind and the services
decide.

A kind needs no form of its own: a field is made for each of its settings from what the
kind declares (a box to tick for a flag, a whole number, a list entered separated by
commas, one of a few choices, text otherwise) and a write-only one for each secret, which
never shows what is stored: empty keeps it.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

from accounts.models import User
from destinations.pages.forms import WriteOnlyTextarea
from sources.kinds.base import Kind
from sources.models import Source
from sources.selectors import source_secret_names

# The longest setting or secret any channel takes: room for a long filter or path.
SETTING_MAX_LENGTH = 2048
SECRET_MAX_LENGTH = 4096
STORED_VALUE_HELP = "Stored; leave empty to keep it."
# A list setting is entered as text: its items are separated by commas or new lines.
_LIST_SEPARATOR = re.compile(r"[,\n]")


def setting_label(name: str) -> str:
    """``subject_filter`` as a person reads it: "Subject filter"."""
    words = [word.upper() if word in {"ssl", "imap"} else word for word in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def kind_fields(kind: type[Kind], source: Source | None = None) -> dict[str, forms.Field]:
    """The fields of one kind's settings and secrets: ``setting_<name>`` (with the stored
    value, or the kind's default for a new source) and ``secret_<name>`` (never with it)."""
    stored_settings = source.settings if source is not None else kind.initial_settings()
    fields: dict[str, forms.Field] = {}
    for name in kind.setting_names:
        stored = stored_settings.get(name)
        label, help_text = setting_label(name), kind.help_texts.get(name, "")
        if name in kind.flag_settings:
            fields[f"setting_{name}"] = forms.BooleanField(
                label=label, required=False, initial=bool(stored), help_text=help_text
            )
        elif name in kind.number_settings:
            fields[f"setting_{name}"] = forms.IntegerField(
                label=label, required=False, min_value=0, initial=stored, help_text=help_text
            )
        elif name in kind.choice_settings:
            # Left out, the kind's default applies (an older client's form knows no new choice).
            fields[f"setting_{name}"] = forms.ChoiceField(
                label=label,
                choices=kind.choice_settings[name],
                required=False,
                initial=stored,
                help_text=help_text,
            )
        else:
            shown = ", ".join(stored) if isinstance(stored, list) else stored
            fields[f"setting_{name}"] = forms.CharField(
                label=label, required=False, max_length=SETTING_MAX_LENGTH, initial=shown, help_text=help_text
            )
    kept = (source_secret_names(source) or []) if source is not None else []
    for name in kind.secret_names:
        fields[f"secret_{name}"] = forms.CharField(
            label=setting_label(name),
            required=False,
            strip=False,
            max_length=SECRET_MAX_LENGTH,
            # Never rendered back, not even after a refused submission; a key keeps its lines.
            widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
            if name in kind.multiline_names
            else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=f"{kind.help_texts.get(name, '')} {STORED_VALUE_HELP if name in kept else ''}".strip(),
        )
    return fields


class KindFieldsMixin:
    """Reads a form's ``kind_fields`` back: the settings and the secrets to change."""

    kind: type[Kind]
    cleaned_data: dict[str, Any]

    def settings_values(self) -> dict[str, Any]:
        """The kind's settings as entered (all of them: they replace the stored ones); a
        number left empty is left out, so that the kind's default applies."""
        values: dict[str, Any] = {}
        for name in self.kind.setting_names:
            value = self.cleaned_data.get(f"setting_{name}")
            if name in self.kind.list_settings:
                values[name] = [item.strip() for item in _LIST_SEPARATOR.split(value or "") if item.strip()]
            elif name in self.kind.number_settings:
                if value is not None:
                    values[name] = value
            else:
                values[name] = value
        return values

    def secrets_given(self) -> dict[str, str]:
        """The secrets entered; one left empty keeps what is stored."""
        return {
            name: value
            for name in self.kind.secret_names
            if (value := self.cleaned_data.get(f"secret_{name}"))
        }


def document_owner_field() -> forms.ModelChoiceField[User]:
    return forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        empty_label="The first operator",
        label="Documents belong to",
        help_text="Whose documents a system-wide source makes (who sees them), e.g. the office account. "
        "Empty: the first operator's.",
    )


class SourceForm(KindFieldsMixin, forms.Form):
    """A new source of ``kind``, or ``source`` to change. One the environment defines shows
    only what may change: its name and whose documents it makes."""

    name = forms.CharField(max_length=100, help_text="How you tell it apart in lists, e.g. Scanner mailbox.")
    enabled = forms.BooleanField(
        required=False, initial=True, help_text="Look for new documents on schedule. Untick to pause it."
    )
    poll_interval_minutes = forms.IntegerField(
        min_value=1,
        max_value=24 * 60,
        initial=5,
        label="Poll interval (minutes)",
        help_text="How often to look for something new, in minutes from 1 to 1440, e.g. 5.",
    )

    def __init__(
        self,
        *args: Any,
        kind: type[Kind],
        source: Source | None = None,
        may_make_system_wide: bool = False,
        **kwargs: Any,
    ) -> None:
        if source is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": source.name,
                    "enabled": source.enabled,
                    "poll_interval_minutes": source.poll_interval_minutes,
                    "document_owner": source.document_owner_id,
                },
            )
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.from_environment = source is not None and bool(source.system_key)
        if source is None and may_make_system_wide and not kind.system_wide_only:
            self.fields["system_wide"] = forms.BooleanField(
                required=False, label="System-wide: managed by operators, its documents go to the owner below"
            )
        # Whose documents: a question only for a system-wide source, asked of operators.
        if (source is None and may_make_system_wide) or (source is not None and source.is_system):
            self.fields["document_owner"] = document_owner_field()
        if self.from_environment:
            for name in ("enabled", "poll_interval_minutes"):
                del self.fields[name]  # the environment's variables decide
        else:
            self.fields.update(kind_fields(kind, source))

    def system_wide(self) -> bool:
        """Whether the source entered is to be system-wide: always for a kind only operators
        may add (the service refuses it to others), else as the box says."""
        return self.kind.system_wide_only or bool(self.cleaned_data.get("system_wide"))

    def changes(self) -> dict[str, Any]:
        """What ``source_update`` is to change: for an environment's source only its name,
        otherwise everything on the form (secrets only when given)."""
        data = self.cleaned_data
        changes: dict[str, Any] = {"name": data["name"]}
        if not self.from_environment:
            changes.update(
                enabled=data["enabled"],
                poll_interval_minutes=data["poll_interval_minutes"],
                settings=self.settings_values(),
                secrets=self.secrets_given(),
            )
        return changes
