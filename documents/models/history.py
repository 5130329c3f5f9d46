"""What people add to and change on a document: notes, and the history of its fields."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Note(models.Model):
    """A remark someone wrote on a document; searchable with the document's text."""

    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on document {self.document_id}"


class ChangeOrigin(models.TextChoices):
    """Where a change came from: a person's page or API edit, a bulk edit, or the machine."""

    PAGE = "page"
    API = "api", "API"
    BULK = "bulk"
    MERGE = "merge"  # a list entry was merged into another, or deleted with a replacement
    MATCHING = "matching"  # the owner's learned matching set it
    SYSTEM = "system"


class DocumentChange(models.Model):
    """One field of one document changed: who, when, from what to what. Append-only.

    ``old`` and ``new`` are what a person reads (names, ISO dates, lists of tag names),
    so the history stays true after a tag is renamed or deleted.
    """

    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept when the account is gone
    origin = models.CharField(max_length=16, choices=ChangeOrigin.choices)
    field = models.CharField(max_length=64)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["document", "at"], name="change_document_time")]

    def __str__(self) -> str:
        return f"{self.field} of document {self.document_id} at {self.at:%Y-%m-%d %H:%M:%S}"
