"""Saved searches in the operators' admin (read mostly: they belong to their users)."""

from __future__ import annotations

from django.contrib import admin

from search.models import SavedSearch


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin[SavedSearch]):
    list_display = ["name", "owner", "query", "updated_at"]
    list_filter = ["owner"]
    search_fields = ["name", "query", "owner__username"]
