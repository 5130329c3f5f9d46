"""Sources, their ledger and their cursors in the operators' admin.

A source shows its settings and the names of its secrets, never a secret's value; what an
operator changes here (name, enabled, interval, whose documents a system-wide source makes)
goes through ``source_update`` and ``source_document_owner_set``, checked as everywhere.
Sources are added, and their settings and passwords changed, on /sources, whose form each
kind describes field by field. The ledger and the cursors are the pollers' record and
read-only: an edit there would make a mail or a file come in twice, or never.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from docuelevate.admin import ReadOnlyForOperatorsAdmin
from docuelevate.errors import ApplicationError
from sources.models import Source, SourceCursor, SourceItem
from sources.selectors import source_secret_names
from sources.services import source_document_owner_set, source_update


def _is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class SourceForm(forms.ModelForm[Source]):
    class Meta:
        model = Source
        fields = ["name", "enabled", "poll_interval_minutes", "document_owner"]

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        # The rules are the services'; asked here so the reason shows on the form.
        if self.instance.pk and not self.errors and data is not None:
            if data.get("document_owner") is not None and self.instance.owner_id is not None:
                raise forms.ValidationError("A user's own source makes that user's documents.")
            interval = data.get("poll_interval_minutes")
            if interval is not None and not 1 <= interval <= 24 * 60:
                raise forms.ValidationError("The poll interval is from 1 to 1440 minutes.")
        return data


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    form = SourceForm
    list_display = ["name", "kind", "owner", "enabled", "last_poll_at", "last_error_kind"]
    list_filter = ["kind", "enabled", "last_error_kind"]
    search_fields = ["name", "owner__username"]
    readonly_fields = [
        "kind", "owner", "system_key", "settings", "stored_secrets", "next_poll_at", "last_poll_at",
        "last_success_at", "last_error", "last_error_kind", "lease_holder", "lease_until", "created_at",
        "updated_at",
    ]  # fmt: skip

    @admin.display(description="secrets")
    def stored_secrets(self, source: Source) -> str:
        """The names of the stored secrets: enough to see what is set, nothing to steal."""
        names = source_secret_names(source)
        if names is None:
            return "stored, but unreadable with the current SESSION_SECRET"
        return ", ".join(names) or "none"

    def get_readonly_fields(self, request: HttpRequest, obj: Source | None = None) -> list[str]:
        readonly = list(self.readonly_fields)
        if obj is not None and obj.system_key:
            # The environment's variables decide whether it is on and how often it looks.
            readonly += ["enabled", "poll_interval_minutes"]
        if obj is not None and obj.owner_id is not None:
            readonly.append("document_owner")  # a user's source makes that user's documents
        return readonly

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # on /sources, whose form asks for each kind's settings

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request) and not (obj is not None and obj.system_key)

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        data = form.cleaned_data
        current = Source.objects.get(pk=obj.pk)
        try:
            source_update(
                source=current,
                name=data["name"],
                enabled=None if current.system_key else data["enabled"],
                poll_interval_minutes=None if current.system_key else data["poll_interval_minutes"],
            )
            if current.is_system:
                source_document_owner_set(source=current, document_owner=data.get("document_owner"))
        except ApplicationError as exc:
            # Checked by the form first; a name taken meanwhile ends here.
            self.message_user(request, exc.message, level="error")


@admin.register(SourceItem)
class SourceItemAdmin(ReadOnlyForOperatorsAdmin):
    list_display = ["ref", "source", "state", "document", "claimed_at", "finished_at"]
    list_filter = ["state", "source"]
    search_fields = ["ref", "key", "detail"]
    list_select_related = ["source", "document"]
    date_hierarchy = "claimed_at"


@admin.register(SourceCursor)
class SourceCursorAdmin(ReadOnlyForOperatorsAdmin):
    list_display = ["source", "folder", "validity", "position", "updated_at"]
    list_filter = ["source"]
    list_select_related = ["source"]
