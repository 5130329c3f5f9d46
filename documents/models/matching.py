"""One owner's trained matcher, kept as signed bytes (documents.matching.storage)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OwnerMatcher(models.Model):
    """The matcher last trained on one owner's documents, and what it was trained on.

    ``blob`` is ``matcher_dumps`` output, refused on load when its signature or versions do
    not match (then it is trained again). ``trained_at`` is also how a worker knows that
    the matcher it holds in memory is out of date, and where counting the owner's new and
    corrected documents starts (documents.organise.matching: no counter to keep in step
    with every edit); None asks beat for a training as soon as it looks.
    """

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="matcher")
    # Empty when the owner's documents taught nothing yet (too few, one value per field).
    blob = models.BinaryField(blank=True, default=b"")
    trained_at = models.DateTimeField(null=True, blank=True)
    documents_trained = models.PositiveIntegerField(default=0)
    sklearn_version = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"matcher of user {self.owner_id}"
