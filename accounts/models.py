"""The custom user model, in place from the first migration so it can grow safely, and API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """A person or an operator (``is_staff``) of this DocuElevate installation."""

    # Shown in the app and the API instead of the login name when set (e.g. from OIDC).
    display_name = models.CharField(max_length=150, blank=True)
    avatar_url = models.URLField(blank=True)
    preferred_language = models.CharField(max_length=16, default="en")
    # The identity provider's "sub" claim: who this account is there, even when the person
    # changes their address or name at the provider.
    oidc_subject = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        db_table = "accounts_user"
        constraints = [
            models.UniqueConstraint(
                fields=["oidc_subject"], condition=~models.Q(oidc_subject=""), name="unique_oidc_subject"
            )
        ]


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        """Tokens that still open the API: not revoked and not past their expiry."""
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A credential for the API, for the CLI, the mobile app and scripts.

    Only the SHA-256 of the token is kept: a leaked database or backup opens nothing. The
    prefix lets a person tell their tokens apart without the secret.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=150)
    token_prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Even a staff user's token opens operator routes only when made for that purpose.
    operator_scope = models.BooleanField(default=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuditAction(models.TextChoices):
    LOGIN = "login", "signed in"
    LOGIN_FAILED = "login_failed", "sign-in failed"
    LOGOUT = "logout", "signed out"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    ROLE_CHANGED = "role_changed", "role changed"
    DOCUMENT_DELETED = "document_deleted", "document deleted"
    DOCUMENT_CHANGED = "document_changed", "document changed"
    DOCUMENT_TRASHED = "document_trashed", "document moved to the trash"
    DOCUMENT_RESTORED = "document_restored", "document restored from the trash"
    ADMIN_CHANGE = "admin_change", "changed in the admin"


class AuditLog(models.Model):
    """Who did what that matters for security, from where: append-only (accounts.audit).

    ``actor_name`` keeps the name when the account is gone, and holds the name that was
    tried when a sign-in failed. Nothing secret is ever stored: no passwords, no tokens
    (a token appears by its visible prefix).
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    target = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.get_action_display()} {self.target}"
        )
