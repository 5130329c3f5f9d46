"""Backups and beat heartbeats in the operators' admin, to read only.

Both are written by the system (the backup command, the beat process); an edit here would
only make productioncheck lie, so nothing can be added, changed or deleted.
"""

from __future__ import annotations

from django.contrib import admin

from docuelevate.admin import ReadOnlyForOperatorsAdmin
from ops.models import BackupRecord, BeatHeartbeat, BeatLease


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


@admin.register(BeatLease)
class BeatLeaseAdmin(ReadOnlyForOperatorsAdmin):
    """Which beat sends the periodic tasks, and until when unless it renews (ops.beat)."""

    list_display = ["name", "holder", "expires_at"]
