"""The backup probe: has a backup succeeded, and recently enough to restore from."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from ops.models import BackupRecord, BackupStatus
from ops.probes.result import CheckResult, error_text, not_configured, passed, unreachable, warned

logger = logging.getLogger(__name__)

BACKUP_MAX_AGE_HOURS = 26  # a daily backup, plus slack for a slow night
BACKUP_MAX_AGE = datetime.timedelta(hours=BACKUP_MAX_AGE_HOURS)
RUN_A_BACKUP = "run python manage.py backup and check that beat schedules it"


def newest_successful_backup() -> BackupRecord | None:
    """The backup that finished last among those that succeeded (a newer failed run is none)."""
    return (
        BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .first()
    )


def probe_backup(*, now: datetime.datetime | None = None) -> CheckResult:
    """The newest successful backup (``last_success``, ``age_seconds``).

    WARN when none succeeded or the newest is older than BACKUP_MAX_AGE: the installation
    serves, but a restore would lose data. NOT_CONFIGURED with BACKUP_ENABLED=false.
    """
    now = now or timezone.now()
    if not getattr(settings, "BACKUP_ENABLED", True):
        return not_configured(
            "backup",
            "BACKUP_ENABLED=false: DocuElevate makes no backups",
            "back up the database and WORKDIR by other means, or set BACKUP_ENABLED=true",
        )
    try:
        newest = newest_successful_backup()
    except DatabaseError as exc:
        reason = f"the backup records cannot be read ({error_text(exc)})"
        logger.warning("backup probe: %s", reason)
        return unreachable("backup", reason, "check DATABASE_URL")
    if newest is None or newest.finished_at is None:
        return warned(
            "backup",
            "no successful backup is recorded",
            RUN_A_BACKUP,
            last_success=None,
            reason="no backup has succeeded yet",
        )
    age = now - newest.finished_at
    hours = age.total_seconds() / 3600
    facts = {"last_success": newest.finished_at.isoformat(), "age_seconds": int(age.total_seconds())}
    if age > BACKUP_MAX_AGE:
        return warned(
            "backup",
            f"the newest successful backup is {hours:.0f} hours old (limit {BACKUP_MAX_AGE_HOURS})",
            RUN_A_BACKUP,
            **facts,
            reason="the newest backup is too old",
        )
    return passed(
        "backup", f"newest successful backup ({newest.tier}) finished {hours:.1f} hours ago", **facts
    )
