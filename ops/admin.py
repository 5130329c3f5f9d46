"""Backups and beat heartbeats in the operators' admin, to read only.

Both are written by the system (the backup command, the beat process); an edit here would
only make productioncheck lie, so nothing can be added, changed or deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ops.models import BackupRecord, BeatHeartbeat


class ReadOnlyForOperatorsAdmin(admin.ModelAdmin):
    """Visible to every operator (staff), changeable by nobody."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BackupRecord)
class BackupRecordAdmin(ReadOnlyForOperatorsAdmin):
    list_display = ["started_at", "tier", "status", "finished_at", "size", "path"]
    list_filter = ["status", "tier"]
    search_fields = ["path", "sha256", "error"]
    date_hierarchy = "started_at"


@admin.register(BeatHeartbeat)
class BeatHeartbeatAdmin(ReadOnlyForOperatorsAdmin):
    list_display = ["identity", "started_at", "last_seen"]
    search_fields = ["identity"]
