from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, AuditLog, User
from accounts.services import token_revoke_all
from docuelevate.admin import ReadOnlyForOperatorsAdmin

# Everything but the hash, and nothing editable: a token is changed only by revoking it.
TOKEN_FIELDS = (
    "owner",
    "name",
    "token_prefix",
    "operator_scope",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "revoked_at",
)


@admin.register(User)
class DocuElevateUserAdmin(UserAdmin[User]):
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("Profile", {"fields": ("display_name", "avatar_url", "preferred_language")}),
    )
    # A scheme-less avatar address means https; Django 6 makes that the default anyway.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Operators can see and revoke tokens; the hash is never shown and tokens are not made here.

    Tokens are created only through the API or the token page, which show the token once to
    the person who will use it; an operator has no business holding someone else's token.
    """

    list_display = ["token_prefix", "name", "owner", "created_at", "last_used_at", "last_used_ip", "revoked"]
    list_filter = ["operator_scope", "revoked_at", "created_at"]
    search_fields = ["name", "token_prefix", "owner__username", "owner__email"]
    list_select_related = ["owner"]
    fields = readonly_fields = TOKEN_FIELDS
    actions = ["revoke"]

    @admin.display(boolean=True, description="revoked", ordering="revoked_at")
    def revoked(self, token: ApiToken) -> bool:
        return token.is_revoked

    @admin.action(description="Revoke selected API tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = token_revoke_all(tokens=queryset)
        self.message_user(request, f"Revoked {count} API token(s).", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyForOperatorsAdmin):
    """The audit trail, for operators to read; nobody edits or deletes it here."""

    list_display = ("at", "action", "actor_name", "ip", "target")
    list_filter = ("action",)
    search_fields = ("actor_name", "target", "ip")
    date_hierarchy = "at"
    readonly_fields = ("at", "action", "actor", "actor_name", "ip", "target", "detail")
