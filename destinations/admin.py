"""Destinations and deliveries in the operators' admin.

Operators make and change system-wide destinations here: a field for each of the kind's
settings and a write-only one for each secret (never showing what is stored; empty keeps
it), checked by the kind as everywhere, saved through ``destination_create`` and
``destination_update``. A user's own destination shows its secrets by name only and
offers its name, enabled, folder template and collision policy; one the environment
defines, everything but its kind, settings, secrets and enabled. Deliveries are the
system's record and read-only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from destinations.kinds import KINDS, kind_class
from destinations.models import Delivery, Destination, DestinationKind
from destinations.pages.forms import KindFieldsMixin, kind_fields
from destinations.paths import folder_template_validate
from destinations.services import (
    destination_create,
    destination_secrets_merged,
    destination_settings_validate,
    destination_update,
)
from docuelevate.admin import ReadOnlyForOperatorsAdmin
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import ApplicationError

BASE_FIELDS = ["name", "enabled", "folder_template", "collision_policy"]


def _is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class DestinationForm(KindFieldsMixin, forms.ModelForm[Destination]):
    # Set on the class ``DestinationAdmin.get_form`` makes per request: the kind whose
    # settings and secrets the form asks for, None when it asks for none.
    kind_name: ClassVar[str | None] = None

    class Meta:
        model = Destination
        fields = BASE_FIELDS

    def clean_folder_template(self) -> str:
        template = str(self.cleaned_data.get("folder_template") or "").strip()
        try:
            folder_template_validate(template)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        return template

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.kind_name is not None and not self.errors:
            self.kind = kind_class(self.kind_name)
            given = self.secrets_given()
            existing = self.instance if self.instance.pk else None
            secrets = (
                given if existing is None else destination_secrets_merged(destination=existing, given=given)
            )
            try:
                destination_settings_validate(
                    kind=self.kind_name, settings=self.settings_values(), secrets=secrets, system_wide=True
                )
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return data


def _asks_for_settings(destination: Destination | None) -> bool:
    """Whether the admin takes this destination's settings and secrets: a new one (always
    system-wide here) or an operator's system-wide one; not the environment's, nor a user's."""
    return destination is None or (destination.owner_id is None and not destination.system_key)


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

    def get_form(
        self, request: HttpRequest, obj: Destination | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The form for this destination, with its kind's fields where the admin takes them.

        A new destination's kind is the one chosen (``?kind=`` or the form's own choice,
        else the first kind); choosing another and saving brings that kind's fields."""
        attributes: dict[str, Any] = {}
        kind_name: str | None = None
        if obj is None:
            chosen = request.POST.get("kind") or request.GET.get("kind") or ""
            kind_name = chosen if chosen in KINDS else next(iter(KINDS))
            attributes["kind"] = forms.ChoiceField(
                choices=[(kind, DestinationKind(kind).label) for kind in KINDS],
                initial=kind_name,
                help_text="Choose another kind and save to see its settings.",
            )
        elif _asks_for_settings(obj):
            kind_name = obj.kind
        if kind_name is not None:
            attributes.update(kind_fields(kind_class(kind_name), obj))
        attributes["kind_name"] = kind_name
        kwargs["form"] = type("DestinationForm", (self.form,), attributes)
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Destination | None = None) -> list[str]:
        if obj is None:
            return []
        readonly = list(self.readonly_fields)
        if _asks_for_settings(obj):
            readonly.remove("settings")  # asked for field by field
        if obj.system_key:
            # The environment decides whether its destinations are on (S3_ENABLED and friends).
            readonly.append("enabled")
        return readonly

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)  # always system-wide: a user makes their own on /destinations

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request) and not (obj is not None and obj.system_key)

    def save_model(self, request: HttpRequest, obj: Destination, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = destination_create(
                kind=form.kind_name,
                name=data["name"],
                owner=None,
                settings=form.settings_values(),
                secrets=form.secrets_given(),
                folder_template=data["folder_template"],
                collision_policy=data["collision_policy"],
                enabled=data["enabled"],
            )
            obj.pk = created.pk  # the admin's log entry and redirect name the saved row
            return
        current = Destination.objects.get(pk=obj.pk)
        changes: dict[str, Any] = {}
        if form.kind_name is not None:
            changes.update(settings=form.settings_values(), secrets=form.secrets_given())
        destination_update(
            destination=current,
            name=data["name"],
            folder_template=data["folder_template"],
            collision_policy=data["collision_policy"],
            enabled=None if current.system_key else data["enabled"],
            **changes,
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
