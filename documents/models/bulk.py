"""Bulk operations: one change asked for many documents, done by a worker in chunks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class BulkAction(models.TextChoices):
    """What a bulk operation does to each document of its selection."""

    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    SET_DOCUMENT_TYPE = "set_document_type"
    SET_CORRESPONDENT = "set_correspondent"
    SET_STORAGE_PATH = "set_storage_path"
    SET_CUSTOM_FIELD = "set_custom_field"
    SET_OWNER = "set_owner"  # operators only
    REPROCESS = "reprocess"
    TRASH = "trash"


class BulkStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the operation itself broke off; refusals per document are ``errors``


class BulkOperation(models.Model):
    """One bulk edit: what was asked, on which documents, and how far it has come.

    The selection is resolved to ids when the operation is made (``document_ids``), so a
    redelivered task works through the same list and continues from ``done``; ``done``
    counts the documents handled, changed or refused (``failed`` of them, with the first
    ``errors``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The rights the request carried (operator rights come with the credential, not the
    # person): the worker acts with these, not with whatever the account has later.
    operator = models.BooleanField(default=False)
    action = models.CharField(max_length=32, choices=BulkAction.choices)
    parameters = models.JSONField(default=dict, blank=True)
    selection = models.JSONField(default=dict, blank=True)  # as asked: {"documents": […]} or {"query": {…}}
    document_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=BulkStatus.choices, default=BulkStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"document_id", "detail"}], bounded
    detail = models.TextField(blank=True)  # why the operation itself failed
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["actor", "-created_at"], name="bulk_actor_recent")]

    def __str__(self) -> str:
        return f"{self.action} on {self.total} documents ({self.status})"
