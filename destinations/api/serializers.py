"""Shapes of the destinations API: input serializers check a request's form (types, sizes,
choices, no unknown fields); what a kind accepts is decided by its ``clean()`` through the
services. Output serializers render every answer: settings as they are, secrets by name
only, never a value.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from destinations.kinds import KINDS
from destinations.models import CollisionPolicy, Destination, DestinationKind, HealthStatus
from destinations.pages.forms import SECRET_MAX_LENGTH, SETTING_MAX_LENGTH
from destinations.paths import MAX_TEMPLATE_LENGTH
from destinations.selectors import destination_secret_names
from docuelevate.api_fields import (
    LARGEST_NUMBER,
    NamedValuesField,
    StrictInputSerializer,
    secrets_field,
)
from documents.models import FailureKind

# What one request may carry (the lengths are the form's too): enough for any kind, little
# enough that nothing a client sends grows without bound.


@extend_schema_field(
    {"oneOf": [{"type": "string", "maxLength": SETTING_MAX_LENGTH}, {"type": "integer"}, {"type": "boolean"}]}
)
class SettingValueField(serializers.Field[Any, Any, Any, Any]):
    """One non-secret setting: text, a whole number or true/false (never a list or an object)."""

    default_error_messages = {
        "invalid": "A setting is text, a whole number or true/false.",
        "too_long": f"A setting is at most {SETTING_MAX_LENGTH} characters long.",
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
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


def _settings_field(**options: Any) -> NamedValuesField:
    options.setdefault(
        "help_text", "The kind's settings (bucket, folder, host, …); see docs/destinations.md."
    )
    return NamedValuesField(child=SettingValueField(), example_name="endpoint_url", **options)


def _secrets_field(**options: Any) -> NamedValuesField:
    return secrets_field(max_length=SECRET_MAX_LENGTH, **options)


class DestinationCreateInputSerializer(StrictInputSerializer):
    """A new destination. What ``settings`` and ``secrets`` hold depends on the kind; a
    field not listed here is refused."""

    kind = serializers.ChoiceField(choices=[(kind, DestinationKind(kind).label) for kind in KINDS])
    name = serializers.CharField(max_length=100)
    settings = _settings_field(required=False, default=dict)
    secrets = _secrets_field(
        required=False, default=dict, help_text="Passwords, keys, tokens: stored encrypted, never shown back."
    )
    folder_template = serializers.CharField(
        max_length=MAX_TEMPLATE_LENGTH, required=False, allow_blank=True, default="",
        help_text="Where below the folder a document goes, e.g. {year}/{document_type}/{filename}.",
    )  # fmt: skip
    collision_policy = serializers.ChoiceField(
        choices=CollisionPolicy.choices, required=False, default=CollisionPolicy.RENAME
    )
    enabled = serializers.BooleanField(required=False, default=True)
    system_wide = serializers.BooleanField(
        required=False, default=False, help_text="Operators only: every user's documents go there."
    )


class DestinationUpdateInputSerializer(StrictInputSerializer):
    """Every field is optional: what is given changes, the rest stays. A field not listed
    here is refused."""

    fixed_fields = {
        "kind": "A destination's kind cannot change; make a new destination.",
        "system_wide": "Whose destination it is cannot change; make a new destination.",
    }

    name = serializers.CharField(max_length=100, required=False)
    settings = _settings_field(
        required=False, help_text="The kind's settings, all of them (they replace the stored ones)."
    )
    secrets = _secrets_field(
        required=False,
        help_text="The secrets to set; an empty value removes one, and the ones not given stay as they are.",
    )
    folder_template = serializers.CharField(max_length=MAX_TEMPLATE_LENGTH, required=False, allow_blank=True)
    collision_policy = serializers.ChoiceField(choices=CollisionPolicy.choices, required=False)
    enabled = serializers.BooleanField(required=False)


# --- Answers -------------------------------------------------------------------------------


class DestinationHealthOutputSerializer(serializers.Serializer[Any]):
    # Plain text rather than enums, so the schema has one "status" enum: the document's.
    status = serializers.CharField(
        source="health_status", help_text="One of " + ", ".join(HealthStatus.values) + "."
    )
    checked_at = serializers.DateTimeField(source="health_checked_at", allow_null=True)
    error = serializers.CharField(source="health_error", help_text="Why it is failing; empty otherwise.")
    error_kind = serializers.CharField(
        source="health_error_kind",
        help_text="The failure's kind (" + ", ".join(FailureKind.values) + ") or empty.",
    )


class DestinationOutputSerializer(serializers.ModelSerializer[Destination]):
    kind = serializers.CharField(help_text="One of " + ", ".join(DestinationKind.values) + ".")
    system_wide = serializers.BooleanField(source="is_system", help_text="Every user's documents go there.")
    from_environment = serializers.SerializerMethodField(
        help_text="Defined by the environment (<KIND>_* variables): only its name, folder template and "
        "collision policy can change here."
    )
    settings = serializers.DictField(
        child=serializers.JSONField(),
        help_text="As the kind keeps them: text, numbers, true/false, and a mapping as an object.",
    )
    secrets_set = serializers.SerializerMethodField(
        help_text="The names of the secrets stored; never their values."
    )
    secrets_unreadable = serializers.SerializerMethodField(
        help_text="The stored secrets cannot be decrypted with the current SESSION_SECRET: enter them again."
    )
    health = DestinationHealthOutputSerializer(source="*")

    class Meta:
        model = Destination
        fields = [
            "id", "kind", "name", "system_wide", "from_environment", "enabled", "settings", "secrets_set",
            "secrets_unreadable", "folder_template", "collision_policy", "health", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_from_environment(self, destination: Destination) -> bool:
        return bool(destination.system_key)

    def get_secrets_set(self, destination: Destination) -> list[str]:
        return destination_secret_names(destination) or []

    def get_secrets_unreadable(self, destination: Destination) -> bool:
        return destination_secret_names(destination) is None


# Renders a destinations.health.CheckOutcome.
class DestinationCheckOutputSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField(
        source="healthy", help_text="The destination could be reached, signed in to and written to."
    )
    detail = serializers.CharField(
        source="message", help_text="What was found, in words; the reason when it failed."
    )
    failure_kind = serializers.CharField(
        source="kind",
        allow_null=True,
        help_text="When it failed, the kind: " + ", ".join(FailureKind.values) + ".",
    )
