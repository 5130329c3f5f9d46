"""Shapes of the sources API: input serializers check a request's form (types, sizes, no
unknown fields); what a kind accepts, and who may make which source, is decided by the
kind's ``clean()`` and the services. Output serializers render every answer: settings as
they are, secrets by name only, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from docuelevate.api_fields import (
    LARGEST_NUMBER,
    NamedValuesField,
    StrictInputSerializer,
    secrets_field,
)
from documents.models import FailureKind
from sources.kinds import KINDS
from sources.models import Source, SourceKind
from sources.selectors import source_secret_names

# What one request may carry: enough for any kind (a mailbox has about a dozen settings, a
# folder list a handful of names), little enough that nothing a client sends grows without bound.
MAX_LIST_ITEMS = 100
SETTING_MAX_LENGTH = 2048
LIST_ITEM_MAX_LENGTH = 500
SECRET_MAX_LENGTH = 16384


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": SETTING_MAX_LENGTH},
            {"type": "integer"},
            {"type": "boolean"},
            {
                "type": "array",
                "maxItems": MAX_LIST_ITEMS,
                "items": {"type": "string", "maxLength": LIST_ITEM_MAX_LENGTH},
            },
        ]
    }
)
class SettingValueField(serializers.Field[Any, Any, Any, Any]):
    """One non-secret setting: text, a whole number, true/false, or a list of names (a
    mailbox's folders, the tags to give)."""

    default_error_messages = {
        "invalid": "A setting is text, a whole number, true/false or a list of names.",
        "too_long": f"A setting is at most {SETTING_MAX_LENGTH} characters long.",
        "list_too_long": f"A list setting has at most {MAX_LIST_ITEMS} names "
        f"of at most {LIST_ITEM_MAX_LENGTH} characters each.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool):
            return data
        if isinstance(data, int) and abs(data) <= LARGEST_NUMBER:
            return data
        if isinstance(data, str):
            if len(data) > SETTING_MAX_LENGTH:
                self.fail("too_long")
            return data
        if isinstance(data, list):
            if not all(isinstance(item, str) for item in data):
                self.fail("invalid")
            if len(data) > MAX_LIST_ITEMS or any(len(item) > LIST_ITEM_MAX_LENGTH for item in data):
                self.fail("list_too_long")
            return list(data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


def _settings_field(**options: Any) -> NamedValuesField:
    options.setdefault(
        "help_text", "The kind's settings (host, username, folders, path, …); see docs/ingestion.md."
    )
    return NamedValuesField(child=SettingValueField(), example_name="move_to", **options)


def _secrets_field(**options: Any) -> NamedValuesField:
    return secrets_field(max_length=SECRET_MAX_LENGTH, **options)


def _interval_field(**options: Any) -> serializers.IntegerField:
    # Only a bound that keeps the number a number; the range is the service's rule.
    return serializers.IntegerField(
        min_value=-LARGEST_NUMBER,
        max_value=LARGEST_NUMBER,
        help_text="Minutes between two looks, from 1 to 1440.",
        **options,
    )


@extend_schema_field({"type": "string", "description": "One of " + ", ".join(KINDS) + "."})
class SourceKindField(serializers.ChoiceField):
    """A source's kind, described rather than an enum in the schema: a second enum named
    "kind" (the destinations' has it) would need a settings override to be named, and
    ``manage.py check`` fails on schema warnings."""

    def __init__(self, **options: Any) -> None:
        super().__init__(choices=[(kind, SourceKind(kind).label) for kind in KINDS], **options)


class SourceCreateInputSerializer(StrictInputSerializer):
    """A new source. What ``settings`` and ``secrets`` hold depends on the kind; a field not
    listed here is refused. Users may add their own mailboxes; watched folders and
    system-wide sources are for operators."""

    kind = SourceKindField()
    name = serializers.CharField(max_length=100)
    settings = _settings_field(required=False, default=dict)
    secrets = _secrets_field(
        required=False, default=dict, help_text="Passwords: stored encrypted, never shown back."
    )
    poll_interval_minutes = _interval_field(required=False, default=5)
    enabled = serializers.BooleanField(required=False, default=True)
    system_wide = serializers.BooleanField(
        required=False, default=False, help_text="Operators only: a source no single user manages."
    )


class SourceUpdateInputSerializer(StrictInputSerializer):
    """Every field is optional: what is given changes, the rest stays. A field not listed
    here is refused."""

    fixed_fields = {
        "kind": "A source's kind cannot change; make a new source.",
        "system_wide": "Whose source it is cannot change; make a new source.",
    }

    name = serializers.CharField(max_length=100, required=False)
    settings = _settings_field(
        required=False, help_text="The kind's settings, all of them (they replace the stored ones)."
    )
    secrets = _secrets_field(
        required=False,
        help_text="The secrets to set; an empty value removes one, and the ones not given stay as they are.",
    )
    poll_interval_minutes = _interval_field(required=False)
    enabled = serializers.BooleanField(required=False)


# --- Answers -------------------------------------------------------------------------------


class SourceStateOutputSerializer(serializers.Serializer[Any]):
    last_poll_at = serializers.DateTimeField(allow_null=True, help_text="When it was last looked at.")
    last_success_at = serializers.DateTimeField(allow_null=True, help_text="When a look last worked.")
    last_error = serializers.CharField(help_text="Why the last look or test failed; empty otherwise.")
    last_error_kind = serializers.CharField(
        help_text="The failure's kind (" + ", ".join(FailureKind.values) + ") or empty."
    )
    documents_today = serializers.SerializerMethodField(help_text="Documents it made since midnight.")
    next_poll_at = serializers.DateTimeField(
        allow_null=True, help_text="When it is looked at next; null: within the next minute."
    )

    def get_documents_today(self, source: Source) -> int:
        # Counted for the whole answer at once by the view (sources_documents_since).
        counts: Mapping[int, int] = self.context.get("documents_today", {})
        return counts.get(source.pk, 0)


class SourceOutputSerializer(serializers.ModelSerializer[Source]):
    kind = serializers.CharField(help_text="One of " + ", ".join(SourceKind.values) + ".")
    system_wide = serializers.BooleanField(
        source="is_system", help_text="No single user manages it: an operator's, or the environment's."
    )
    defined_by_environment = serializers.SerializerMethodField(
        help_text="Defined by the environment (IMAP1_*, WATCH_FOLDERS, …): only its name can change here, "
        "and it cannot be removed."
    )
    settings = serializers.DictField(
        child=serializers.JSONField(), help_text="As the kind keeps them: text, numbers, true/false, lists."
    )
    secrets = serializers.SerializerMethodField(
        help_text="The names of the secrets stored; never their values."
    )
    secrets_unreadable = serializers.SerializerMethodField(
        help_text="The stored secrets cannot be decrypted with the current SESSION_SECRET: enter them again."
    )
    owner = serializers.IntegerField(
        source="owner_id",
        allow_null=True,
        help_text="The id of the user who manages it; null when system-wide.",
    )
    state = SourceStateOutputSerializer(source="*")

    class Meta:
        model = Source
        fields = [
            "id", "kind", "name", "system_wide", "defined_by_environment", "enabled", "settings", "secrets",
            "secrets_unreadable", "poll_interval_minutes", "owner", "state", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_defined_by_environment(self, source: Source) -> bool:
        return bool(source.system_key)

    def get_secrets(self, source: Source) -> list[str]:
        return source_secret_names(source) or []

    def get_secrets_unreadable(self, source: Source) -> bool:
        return source_secret_names(source) is None


class SourceCheckOutputSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField(help_text="The source could be reached, signed in to and read.")
    detail = serializers.CharField(help_text="What was found, in words; the reason when it failed.")
    failure_kind = serializers.CharField(
        allow_null=True, help_text="When it failed, the kind: " + ", ".join(FailureKind.values) + "."
    )


class SourcePollQueuedOutputSerializer(serializers.Serializer[Any]):
    source_id = serializers.IntegerField()
    status = serializers.CharField(help_text='Always "queued": a worker looks at the source shortly.')
