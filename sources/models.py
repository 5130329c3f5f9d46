"""The doors that run by themselves: mailboxes, watched folders and remote folders (each a
Source), the position a source has read up to, and the ledger of every item taken, which
makes each file or attachment enter exactly once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from docuelevate.encryption import EncryptedJSONField
from documents.models import Document, FailureKind


class SourceKind(models.TextChoices):
    """What a source reads; each is one module in ``sources.kinds``. The value is also what
    a document taken from it records as its ``source``."""

    IMAP = "imap", "E-mail (IMAP)"
    WATCH = "watch", "Watched folder"
    FTP = "ftp", "FTP folder"
    SFTP = "sftp", "SFTP folder"
    S3 = "s3", "S3 prefix"
    WEBDAV = "webdav", "WebDAV folder"
    NEXTCLOUD = "nextcloud", "Nextcloud folder"
    DROPBOX = "dropbox", "Dropbox folder"
    ONEDRIVE = "onedrive", "OneDrive folder"
    GOOGLE_DRIVE = "google_drive", "Google Drive folder"


class Source(models.Model):
    """One door: a kind, where (non-secret settings), how to sign in (sealed secrets), when
    to look (``poll_interval_minutes``) and whose documents it makes.

    ``owner`` is the user who manages it and whose documents it makes; None makes it
    system-wide (an operator's, or the environment's with ``system_key`` set), whose
    documents belong to ``document_owner``, or to the first operator when that is unset.
    """

    kind = models.CharField(max_length=32, choices=SourceKind.choices)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="sources"
    )
    document_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "env:imap1", "env:watch:<folder>" for the sources the environment defines; never set otherwise.
    system_key = models.CharField(max_length=600, unique=True, null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    # Non-secret settings, checked by the kind (sources.kinds): host, folder, filters, after…
    settings = models.JSONField(default=dict, blank=True)
    # Passwords and tokens: sealed with SESSION_SECRET, never shown back.
    secrets = EncryptedJSONField()
    poll_interval_minutes = models.PositiveIntegerField(default=5)

    # When beat next hands it to a worker; moved on by sources.polling when it does.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # The poller at work on it: one at a time, a lease so a killed poller's turn runs out.
    lease_holder = models.CharField(max_length=255, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # How its last poll went: shown on /sources and in the health report.
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Set exactly when ``last_error`` is: what kind of failure it describes.
    last_error_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(owner__isnull=False), name="source_name_per_owner"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="system_source_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_system(self) -> bool:
        return self.owner_id is None

    @property
    def failing(self) -> bool:
        return bool(self.last_error)


class SourceCursor(models.Model):
    """How far a source has read one of its folders: for IMAP the folder's UIDVALIDITY and
    the highest UID taken. A new UIDVALIDITY means the server renumbered the folder: the
    cursor starts again (the ledger keeps already-taken mail from coming in twice)."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="cursors")
    folder = models.CharField(max_length=500)
    validity = models.BigIntegerField(null=True, blank=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "folder"], name="one_cursor_per_folder")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.folder}: {self.validity}/{self.position}"


class ItemState(models.TextChoices):
    CLAIMED = "claimed"  # a poller is taking it in; until it records the outcome
    INGESTED = "ingested"  # a document was made from it
    SKIPPED = "skipped"  # filtered out (type, size, rule); never taken
    FAILED = "failed"  # refused by ingest (unsupported, too large, empty): ``detail`` says why


class SourceItem(models.Model):
    """One thing a source has taken or decided about: an attachment of a mail, a file.

    ``key`` is what makes the item itself, unique per source (a mail's Message-ID and the
    attachment's SHA-256; a file's path, size and modification time): a second look at the
    same item finds this row and takes nothing. ``ref`` is the human-readable place it came
    from, also the document's ``source_ref``.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=1024)
    ref = models.CharField(max_length=2048)
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.CLAIMED)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    detail = models.TextField(blank=True)
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="one_item_per_key")]
        indexes = [models.Index(fields=["source", "finished_at"], name="source_item_finished")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.ref}: {self.state}"
