"""Housekeeping that beat runs on schedule (ops/schedule.py): scratch files, old log entries,
and one more run for documents that failed for a passing reason.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from accounts.models import AuditLog
from docuelevate.errors import ApplicationError
from documents.models import (
    Document,
    DocumentStatus,
    FailureKind,
    LogStep,
    ProcessingLog,
    ProcessingStep,
    ResetKind,
    StepStatus,
)

logger = logging.getLogger(__name__)

SCRATCH_MAX_AGE = timedelta(days=1)
PRUNE_BATCH = 5000  # rows per DELETE, so pruning a big backlog never holds long locks

# The failed-documents retry: which failures it gives one more run, and when it acts.
RETRY_SWEEP_STEP = LogStep.RETRY_SWEEP  # step_name of its own log entries
RETRY_MIN_AGE = timedelta(hours=1)  # let an outage end before spending the one retry
RETRY_MAX_AGE = timedelta(days=7)  # older failures are left to a person (and to upgrades)
RETRY_LIMIT = 500  # documents per run; the rest wait for the next run
# The failures worth another run: a passing problem (StepTemporarilyFailed, out of the
# runner's own retries) and a step whose worker vanished. A timeout, a broken file, a bug
# or a document that keeps killing its worker would fail the same way again.
RETRYABLE_KINDS = frozenset({FailureKind.TEMPORARY, FailureKind.WORKER_LOST})
# The resets by a person: after one, a document may earn the sweep's one more run again.
PERSON_RESETS = frozenset({ResetKind.MANUAL_RETRY, ResetKind.REPROCESS})


# --- Scratch files -------------------------------------------------------------------------------


def scratch_sweep(*, max_age: timedelta = SCRATCH_MAX_AGE, now: float | None = None) -> int:
    """Delete files under SCRATCH_DIR unchanged for ``max_age``; returns how many.

    Steps and uploads remove their own files; what is left a day later belongs to a worker
    that was killed or an upload that was cut off. Folders are removed once empty and old.
    The working files (``tmp/<document uuid>/``) of documents still pending or processing
    are kept: they are the input of their next step. A failed document loses them, and a
    retried step then starts the pipeline over from the original (the runner does that).
    """
    root = Path(settings.SCRATCH_DIR)
    if not root.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - max_age.total_seconds()
    in_flight = {
        value.hex
        for value in Document.objects.filter(
            status__in=[DocumentStatus.PENDING, DocumentStatus.PROCESSING]
        ).values_list("uuid", flat=True)
    }
    removed = _sweep_folder(root, cutoff, keep=in_flight)
    if removed:
        logger.info("scratch sweep removed %d file(s) older than %s", removed, max_age)
    return removed


def _sweep_folder(folder: Path, cutoff: float, keep: Collection[str] = ()) -> int:
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name in keep:
            continue
        try:
            # Never follow a link: the sweep stays inside SCRATCH_DIR whatever a link points at.
            stat = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                # Its age before its content goes: removing files makes a folder look new.
                was_old = stat.st_mtime < cutoff
                removed += _sweep_folder(Path(entry.path), cutoff)
                if was_old:
                    Path(entry.path).rmdir()
            elif stat.st_mtime < cutoff:
                Path(entry.path).unlink()
                removed += 1
        except FileNotFoundError:
            continue  # removed meanwhile by its owner
        except OSError as exc:
            # A folder still in use (not empty) or not ours to remove: leave it.
            logger.debug("scratch sweep left %s (%s)", entry.path, exc.strerror)
    return removed


# --- Old log entries ---------------------------------------------------------------------------


def logs_prune(*, retention_days: int | None = None, now: datetime.datetime | None = None) -> dict[str, int]:
    """Delete processing-log and audit-log entries older than LOG_RETENTION_DAYS.

    Returns how many of each went. ``0`` days keeps everything. Runs in batches, each its
    own transaction, so the web keeps writing log entries meanwhile.
    """
    days = settings.LOG_RETENTION_DAYS if retention_days is None else retention_days
    if days <= 0:
        return {"processing_log": 0, "audit_log": 0}
    cutoff = (now or timezone.now()) - timedelta(days=days)
    counts = {
        "processing_log": _delete_in_batches(
            ProcessingLog, ProcessingLog.objects.filter(timestamp__lt=cutoff)
        ),
        "audit_log": _delete_in_batches(AuditLog, AuditLog.objects.filter(at__lt=cutoff)),
    }
    if any(counts.values()):
        logger.info(
            "pruned %d processing-log and %d audit-log entries older than %d days",
            counts["processing_log"],
            counts["audit_log"],
            days,
        )
    return counts


def _delete_in_batches(model: type[models.Model], queryset: models.QuerySet[models.Model]) -> int:
    total = 0
    while ids := list(queryset.order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH]):
        deleted, _ = model._default_manager.filter(pk__in=ids).delete()
        total += deleted
    return total


# --- One more run for passing failures -----------------------------------------------------------


def _swept_since_last_manual_start(document_id: int) -> bool:
    """Whether this sweep already gave the document its one more run since a person last
    (re)started it."""
    entries = ProcessingLog.objects.filter(document_id=document_id)
    last_sweep = (
        entries.filter(kind=ResetKind.RETRY_SWEEP).order_by("-pk").values_list("pk", flat=True).first()
    )
    if last_sweep is None:
        return False
    return not entries.filter(pk__gt=last_sweep, kind__in=PERSON_RESETS).exists()


def failed_documents_retry(*, now: datetime.datetime | None = None, limit: int = RETRY_LIMIT) -> list[int]:
    """Give each document that failed for a temporary reason one more run of its failed step.

    The reason is the step's recorded FailureKind (RETRYABLE_KINDS), never its message.
    Only failures between RETRY_MIN_AGE and RETRY_MAX_AGE old count, and each document gets
    one such run until a person retries or reprocesses it. Returns the ids retried.
    """
    from documents.pipeline.state import log_event
    from documents.services import document_retry_step

    now = now or timezone.now()
    failed_steps = (
        ProcessingStep.objects.filter(
            status=StepStatus.FAILURE,
            failure_kind__in=RETRYABLE_KINDS,
            document__status=DocumentStatus.FAILED,
            finished_at__lte=now - RETRY_MIN_AGE,
            finished_at__gte=now - RETRY_MAX_AGE,
        )
        .select_related("document")
        .order_by("finished_at", "pk")
    )
    retried: list[int] = []
    seen: set[int] = set()
    # A list, not a cursor: the loop writes to the tables it reads.
    for step in list(failed_steps):
        if len(retried) >= limit:
            break
        if step.document_id in seen:
            continue
        seen.add(step.document_id)
        if _swept_since_last_manual_start(step.document_id):
            continue
        try:
            with transaction.atomic():
                document_retry_step(document=step.document, step_name=step.name, reason=ResetKind.RETRY_SWEEP)
                log_event(
                    step.document_id,
                    RETRY_SWEEP_STEP,
                    StepStatus.PENDING,
                    f"One more run of the {step.name} step after a temporary failure: {step.error}",
                    kind=ResetKind.RETRY_SWEEP,
                )
        except ApplicationError as exc:
            # Changed meanwhile (deleted, reprocessed by hand): nothing to do for it.
            logger.info("document %s not retried: %s", step.document_id, exc)
            continue
        retried.append(step.document_id)
    if retried:
        logger.info("gave %d document(s) one more run after a temporary failure", len(retried))
    return retried
