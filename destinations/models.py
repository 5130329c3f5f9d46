"""Where documents go: destinations (a user's own, or system-wide) and one delivery per
document and destination."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from docuelevate.encryption import EncryptedJSONField
from documents.models import Document, FailureKind


class DestinationKind(models.TextChoices):
    """The protocols a destination speaks; each is one module in ``destinations.kinds``."""

    S3 = "s3", "S3 and compatible"
    FTP = "ftp", "FTP / FTPS"
    SFTP = "sftp", "SFTP"
    WEBDAV = "webdav", "WebDAV"
    NEXTCLOUD = "nextcloud", "Nextcloud"
    EMAIL = "email", "E-mail"
    PAPERLESS = "paperless", "Paperless-ngx"
    DROPBOX = "dropbox", "Dropbox"
    GOOGLE_DRIVE = "google_drive", "Google Drive"
    ONEDRIVE = "onedrive", "OneDrive"


class CollisionPolicy(models.TextChoices):
    """What a delivery does when another file already has the remote name.

    The document's own earlier delivery (same path as last time) is always replaced, and a
    file with the very same content is always taken as delivered: the policy is only about
    someone else's file.
    """

    RENAME = "rename", "Keep both: add a number to the new file's name"
    REPLACE = "replace", "Replace the file that is there"
    SKIP = "skip", "Keep the file that is there; skip the delivery"


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown"
    OK = "ok"
    FAILING = "failing"


class Destination(models.Model):
    """One place to deliver to: a kind, where (non-secret settings), how to sign in (sealed
    secrets), the folder template for the remote path and what to do on a name collision.

    ``owner`` is the user whose documents go here; None makes it system-wide (every
    document goes there), either made by an operator or defined by the environment
    (``system_key`` set, kept in step with ``<KIND>_*`` by ``system_destinations_sync``).
    """

    kind = models.CharField(max_length=32, choices=DestinationKind.choices)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="destinations",
    )
    # "env:<kind>" for the destination the environment defines; never set otherwise.
    system_key = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    # Non-secret settings, checked by the kind (destinations.kinds): bucket, folder, host…
    settings = models.JSONField(default=dict, blank=True)
    # Passwords, keys and tokens: sealed with SESSION_SECRET, never shown back.
    secrets = EncryptedJSONField()
    folder_template = models.CharField(max_length=500, blank=True)
    collision_policy = models.CharField(
        max_length=16, choices=CollisionPolicy.choices, default=CollisionPolicy.RENAME
    )
    # Whether the destination works, from its last delivery or credentials check.
    health_status = models.CharField(
        max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN
    )
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_error = models.TextField(blank=True)
    health_error_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(owner__isnull=False), name="destination_name_per_owner"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="system_destination_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_system(self) -> bool:
        return self.owner_id is None

    @property
    def log_step(self) -> str:
        """The processing-log step its deliveries write under (``upload_to_<kind>``)."""
        return f"upload_to_{self.kind}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"


class Delivery(models.Model):
    """The state of one document's delivery to one destination.

    Changed only by ``destinations.state``. ``requested_at`` is the latest request to
    deliver (processing finished, a redeliver); a run that began before it delivered an
    older version, so the delivery goes round once more. ``remote_path`` and
    ``content_sha256`` describe what was last delivered, kept through later attempts so a
    new name can remove the old file.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    remote_path = models.CharField(max_length=1024, blank=True)
    remote_id = models.CharField(max_length=1024, blank=True)
    remote_version = models.CharField(max_length=255, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # Set exactly when ``error`` is: what kind of failure it describes (decisions read this).
    error_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # "<worker> <pid> <claim>" of the run in progress; a run records its end only under it.
    claimed_by = models.CharField(max_length=255, blank=True)
    # Until when that run holds the delivery, renewed while it goes on (documents.pipeline.claims).
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    # When a pending delivery's message is due at a worker: when it was sent, or when its
    # retry comes. One long overdue was lost with the broker; the watchdog sends it again.
    due_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["document_id", "id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["document", "destination"], name="one_delivery_per_destination")
        ]
        indexes = [
            # The watchdog's question: which deliveries have been in progress for too long?
            models.Index(
                fields=["started_at"], condition=Q(status="in_progress"), name="delivery_in_progress_since"
            ),
            # ... and which pending ones are overdue (their message was lost)?
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="delivery_pending_due"),
        ]

    def __str__(self) -> str:
        return f"document {self.document_id} to destination {self.destination_id}: {self.status}"
