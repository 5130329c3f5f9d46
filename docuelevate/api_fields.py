"""Serializer pieces the APIs of configured things share (destinations, sources): a strict
input serializer and the JSON objects of settings and secrets a kind reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

# Names in one object: enough for any kind, little enough that nothing grows without bound.
MAX_NAMED_VALUES = 32
LARGEST_NUMBER = 2**53  # what every JSON client reads exactly
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


# Refuses fields it does not know, so that a misspelt one is not silently ignored;
# ``fixed_fields`` name fields of the resource that cannot be changed, with the reason.
# (Docstrings of serializers are the schema's descriptions, for clients.)
class StrictInputSerializer(serializers.Serializer[Any]):
    fixed_fields: Mapping[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name in data:
                if name in self.fixed_fields:
                    raise serializers.ValidationError({name: [self.fixed_fields[name]]})
            unknown = [str(name)[:64] for name in data if name not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {"non_field_errors": [f"Unknown field {', '.join(sorted(unknown)[:5])}."]}
                )
        return super().to_internal_value(data)


class NamedValuesField(serializers.DictField):
    """A JSON object of settings or secrets: a few names (lowercase, as kinds spell them)."""

    def __init__(self, *, example_name: str = "folder", **options: Any) -> None:
        self.example_name = example_name
        super().__init__(**options)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            if len(data) > MAX_NAMED_VALUES:
                raise serializers.ValidationError(f"At most {MAX_NAMED_VALUES} names.")
            for name in data:
                if not isinstance(name, str) or not _NAME.fullmatch(name):
                    raise serializers.ValidationError(
                        f"Names are lowercase letters, digits and _, such as {self.example_name}."
                    )
        return dict(super().to_internal_value(data))


def secrets_field(*, max_length: int, **options: Any) -> NamedValuesField:
    """Write-only secrets by name: never in an answer."""
    return NamedValuesField(
        child=serializers.CharField(max_length=max_length, allow_blank=True, trim_whitespace=False),
        write_only=True,
        **options,
    )
