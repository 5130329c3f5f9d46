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
from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus

logger = logging.getLogger(__name__)

SCRATCH_MAX_AGE = timedelta(days=1)
PRUNE_BATCH = 5000  # rows per DELETE, so pruning a big backlog never holds long locks

# The failed-documents retry: how it recognises a passing failure, and when it acts.
RETRY_SWEEP_STEP = "retry_sweep"  # step_name of its own log entries
RETRY_MIN_AGE = timedelta(hours=1)  # let an outage end before spending the one retry
RETRY_MAX_AGE = timedelta(days=7)  # older failures are left to a person (and to upgrades)
RETRY_LIMIT = 500  # documents per run; the rest wait for the next run
# The runner's words for the two failures worth another run: a StepTemporarilyFailed it had
# retried (documents.pipeline.runner.pipeline_step_run) and a step whose worker vanished
# (pipeline_fail_stuck_steps). A step that timed out or kept killing its worker is not.
TEMPORARY_RETRY_MARK = " Retrying in "
WORKER_VANISHED_MARK = "its worker may have stopped"
# Log entries that start a step afresh by hand (documents.services): they reset the count.
MANUAL_RESTART_STEP = "reprocess"
MANUAL_RETRY_MESSAGE = "Retry requested"


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
                    os.rmdir(entry.path)
            elif stat.st_mtime < cutoff:
                os.unlink(entry.path)
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


def failure_is_temporary(step: ProcessingStep) -> bool:
    """Whether ``step`` failed for a passing reason in its latest run.

    Its log since it was last started afresh (by hand, or by this sweep) must show either
    that the runner retried a temporary error before giving up, or that the watchdog
    failed it because its worker vanished. Errors that would repeat (a broken file, a
    timeout, a document that keeps killing its worker) do not count.
    """
    if step.status != StepStatus.FAILURE:
        return False
    if WORKER_VANISHED_MARK in step.error:
        return True
    since = _last_fresh_start(step.document_id)
    entries = ProcessingLog.objects.filter(
        document_id=step.document_id,
        step_name=step.name,
        status=StepStatus.PENDING,
        message__contains=TEMPORARY_RETRY_MARK,
    )
    if since is not None:
        entries = entries.filter(pk__gt=since)
    return entries.exists()


def _last_fresh_start(document_id: int) -> int | None:
    """Id of the newest log entry that restarted the document's steps by hand or by the sweep."""
    pk: int | None = (
        ProcessingLog.objects.filter(document_id=document_id)
        .filter(
            models.Q(step_name__in=[MANUAL_RESTART_STEP, RETRY_SWEEP_STEP])
            | models.Q(status=StepStatus.PENDING, message__startswith=MANUAL_RETRY_MESSAGE)
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return pk


def _swept_since_last_manual_start(document_id: int) -> bool:
    """Whether this sweep already gave the document its one more run since a person last
    (re)started it."""
    entries = ProcessingLog.objects.filter(document_id=document_id)
    last_sweep = (
        entries.filter(step_name=RETRY_SWEEP_STEP).order_by("-pk").values_list("pk", flat=True).first()
    )
    if last_sweep is None:
        return False
    # The sweep's own retry writes "Retry requested" just before its mark; a later one is a person's.
    manual = entries.filter(pk__gt=last_sweep).filter(
        models.Q(step_name=MANUAL_RESTART_STEP)
        | models.Q(status=StepStatus.PENDING, message__startswith=MANUAL_RETRY_MESSAGE)
    )
    return not manual.exists()


def failed_documents_retry(*, now: datetime.datetime | None = None, limit: int = RETRY_LIMIT) -> list[int]:
    """Give each document that failed for a temporary reason one more run of its failed step.

    Only failures between RETRY_MIN_AGE and RETRY_MAX_AGE old count, and each document gets
    one such run until a person retries or reprocesses it. Returns the ids retried.
    """
    from documents.pipeline.runner import log_event
    from documents.services import document_retry_step

    now = now or timezone.now()
    failed_steps = (
        ProcessingStep.objects.filter(
            status=StepStatus.FAILURE,
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
        if not failure_is_temporary(step) or _swept_since_last_manual_start(step.document_id):
            continue
        try:
            with transaction.atomic():
                document_retry_step(document=step.document, step_name=step.name)
                log_event(
                    step.document_id,
                    RETRY_SWEEP_STEP,
                    StepStatus.PENDING,
                    f"One more run of the {step.name} step after a temporary failure: {step.error}",
                )
        except ApplicationError as exc:
            # Changed meanwhile (deleted, reprocessed by hand): nothing to do for it.
            logger.info("document %s not retried: %s", step.document_id, exc)
            continue
        retried.append(step.document_id)
    if retried:
        logger.info("gave %d document(s) one more run after a temporary failure", len(retried))
    return retried
