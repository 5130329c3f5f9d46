"""Output serializers of the health endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ops import health


class HealthCheckOutputSerializer(serializers.Serializer[Any]):
    """One check: its status word, then the facts that check reports."""

    status = serializers.CharField(
        help_text=", ".join(health.HEALTH_WORDS.values())
        + "; other fields (reason, latency_ms, free_bytes, …) depend on the check"
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The facts differ from check to check (each probe decides its own), so they pass
        # through as they are, beside the declared fields.
        return {**instance, **super().to_representation(instance)}


# Renders the body of ops.health.health().
class HealthOutputSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(help_text="healthy, degraded, or unhealthy (with 503)")
    version = serializers.CharField()
    timestamp = serializers.DateTimeField()
    checks = serializers.DictField(child=HealthCheckOutputSerializer())
