"""Housekeeping tasks: thin wrappers that beat sends on the schedule of ops/schedule.py."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from ops.backup import backup_create
from ops.backup_engines import BackupFailed
from ops.heartbeat import heartbeat_push
from ops.housekeeping import failed_documents_retry, logs_prune, scratch_sweep

logger = logging.getLogger(__name__)

# Housekeeping is idempotent: a run that met a database hiccup simply runs again, later.
RETRY_ON_DATABASE_ERROR: dict[str, Any] = {
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 3,
}


@shared_task(name="ops.tasks.ping_task", acks_late=True, ignore_result=False)
def ping_task() -> dict[str, Any]:
    """Answer with the worker's identity.

    A full round trip through broker, worker and result backend: the cheapest proof that
    documents sent to the queue will really be picked up, for health checks and tests.
    """
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name="ops.tasks.heartbeat_push_task", acks_late=True, ignore_result=True)
def heartbeat_push_task() -> str:
    """Push up/down to Uptime Kuma (UPTIME_KUMA_URL), every UPTIME_KUMA_PING_INTERVAL minutes.

    Never retried: a late push would report a past state, and the next one is minutes away.
    Never raises either, so no traceback can carry the push URL and its token into a log.
    """
    return heartbeat_push()


@shared_task(name="ops.tasks.backup_task", acks_late=True, ignore_result=True)
def backup_task(tier: str) -> int | None:
    """Make one backup of ``tier`` (hourly, daily, weekly), which decides how long it is kept.

    Returns the BackupRecord's id; None when BACKUP_ENABLED is false or the backup failed.
    Not retried: a failed backup is recorded (BackupRecord) and logged by ``backup_create``,
    productioncheck and /api/health report a backup that is too old, and the next run of the
    tier comes soon.
    """
    if not settings.BACKUP_ENABLED:
        logger.debug("backups are off (BACKUP_ENABLED=false); %s backup skipped", tier)
        return None
    try:
        return backup_create(tier=tier).pk
    except BackupFailed:
        return None  # recorded and logged with its reason already; a traceback adds nothing


@shared_task(
    name="ops.tasks.scratch_sweep_task", acks_late=True, ignore_result=True, **RETRY_ON_DATABASE_ERROR
)
def scratch_sweep_task() -> int:
    """Delete files a day old under WORKDIR/tmp (left by killed workers); daily. Idempotent."""
    return scratch_sweep()


@shared_task(name="ops.tasks.logs_prune_task", acks_late=True, ignore_result=True, **RETRY_ON_DATABASE_ERROR)
def logs_prune_task() -> dict[str, int]:
    """Delete log entries older than LOG_RETENTION_DAYS; weekly. Idempotent."""
    return logs_prune()


@shared_task(
    name="ops.tasks.failed_documents_retry_task",
    acks_late=True,
    ignore_result=True,
    **RETRY_ON_DATABASE_ERROR,
)
def failed_documents_retry_task() -> list[int]:
    """Give documents that failed for a temporary reason one more run; every 6 hours.

    Idempotent: a document it retried is marked in its log and not retried again by it.
    """
    return failed_documents_retry()
