"""Models of operations: records of backups, the heartbeat of each beat process, and the lease
that lets only one of them send the periodic tasks."""

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


class BeatLease(models.Model):
    """Which beat process sends the periodic tasks: the ``holder`` of this one row's lease.

    Written by ``ops.beat`` with conditional updates on the database's own clock: a beat
    takes the lease when it is free or expired and renews it while it runs; any other beat
    stands by, sending nothing, and takes over once the lease of a beat that died runs out.
    """

    name = models.CharField(max_length=32, unique=True)
    holder = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} lease of {self.holder or 'nobody'}"
