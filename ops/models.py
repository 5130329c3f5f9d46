"""Models of operations: records of backups and the heartbeat of the one beat process."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BackupTier(models.TextChoices):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class BackupStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BackupRecord(models.Model):
    """One run of the backup command: what it wrote, where, and whether it worked.

    A row is created as ``running`` before the work starts, so a backup that died half-way
    stays visible as such instead of vanishing; ``productioncheck`` reads the newest
    succeeded one.
    """

    tier = models.CharField(max_length=10, choices=BackupTier.choices)
    status = models.CharField(max_length=10, choices=BackupStatus.choices, default=BackupStatus.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Where the archive lies (a path under BACKUP_DIR or an object key), its size and checksum,
    # so a restore can verify it before trusting it.
    path = models.CharField(max_length=1024, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "-finished_at"], name="ops_backup_status_finished")]

    def __str__(self) -> str:
        return f"{self.tier} backup of {self.started_at:%Y-%m-%d %H:%M} ({self.status})"


class BeatHeartbeat(models.Model):
    """The last sign of life of one Celery beat process, written by ``ops.beat``.

    One row per process (``"<hostname> <pid>"``): more than one recent row means beat runs
    more than once, and every periodic task is then sent as many times.
    """

    identity = models.CharField(max_length=255, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"beat {self.identity}"
