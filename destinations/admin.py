"""Destinations and deliveries in the operators' admin.

Secrets are never shown: the admin names the stored keys only, and has no way to read or
enter their values (that is the destinations page's and API's job, write-only). What an
operator may change here (name, enabled, folder template, collision policy) goes through
``destination_update``, the same checks as everywhere. Deliveries are the system's record
and read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from destinations.models import Delivery, Destination
from destinations.paths import folder_template_validate
from destinations.services import destination_update
from docuelevate.admin import ReadOnlyForOperatorsAdmin
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import ApplicationError


def _is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class DestinationForm(forms.ModelForm[Destination]):
    class Meta:
        model = Destination
        fields = ["name", "enabled", "folder_template", "collision_policy"]

    def clean_folder_template(self) -> str:
        template = str(self.cleaned_data.get("folder_template") or "").strip()
        try:
            folder_template_validate(template)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        return template


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin[Destination]):
    form = DestinationForm
    list_display = ["name", "kind", "owner", "enabled", "health_status", "health_checked_at"]
    list_filter = ["kind", "enabled", "health_status"]
    search_fields = ["name", "owner__username"]
    readonly_fields = [
        "kind", "owner", "system_key", "settings", "stored_secrets", "health_status", "health_checked_at",
        "health_error", "health_error_kind", "created_at", "updated_at",
    ]  # fmt: skip

    @admin.display(description="secrets")
    def stored_secrets(self, destination: Destination) -> str:
        """The names of the stored secrets: enough to see what is set, nothing to steal."""
        try:
            names = sorted(destination.secrets)
        except SecretsUnreadable:
            return "stored, but unreadable with the current SESSION_SECRET"
        return ", ".join(names) or "none"

    def get_readonly_fields(self, request: HttpRequest, obj: Destination | None = None) -> list[str]:
        # The environment decides whether its destinations are on (S3_ENABLED and friends).
        extra = ["enabled"] if obj is not None and obj.system_key else []
        return [*self.readonly_fields, *extra]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a new destination needs its secrets, which this admin never takes

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request) and not (obj is not None and obj.system_key)

    def save_model(self, request: HttpRequest, obj: Destination, form: Any, change: bool) -> None:
        data = form.cleaned_data
        current = Destination.objects.get(pk=obj.pk)
        destination_update(
            destination=current,
            name=data["name"],
            folder_template=data["folder_template"],
            collision_policy=data["collision_policy"],
            enabled=None if current.system_key else data["enabled"],
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyForOperatorsAdmin):
    list_display = [
        "document",
        "destination",
        "kind",
        "status",
        "attempts",
        "remote_path",
        "delivered_at",
        "error_kind",
    ]
    list_filter = ["status", "destination__kind", "error_kind", "destination"]
    search_fields = ["remote_path", "error", "document__original_filename"]
    list_select_related = ["document", "destination"]
    date_hierarchy = "created_at"

    @admin.display(description="kind", ordering="destination__kind")
    def kind(self, delivery: Delivery) -> str:
        return delivery.destination.get_kind_display()
