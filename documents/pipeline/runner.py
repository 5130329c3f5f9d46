"""Runs one pipeline step of one document and records everything about it.

The runner owns the bookkeeping so steps stay small: it claims the ProcessingStep row,
writes the log, keeps the document's status consistent with its steps, turns every error
into a readable reason, and says what comes next. It never talks to Celery itself; the
task (or ``pipeline_run_sync``) decides how the next step is run.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from documents import storage
from documents.models import Document, DocumentStatus, ProcessingLog, ProcessingStep, StepStatus
from documents.pipeline.base import StepContext, StepFailed, StepInputMissing, StepTemporarilyFailed
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from search.services import index_document

logger = logging.getLogger(__name__)

# Beyond the task's hard time limit (STEP_TIMEOUT + 60 s), before a step counts as stuck.
STUCK_GRACE_SECONDS = 120

Outcome = Literal["success", "skipped", "failure", "retry", "restart", "noop"]


@dataclass(frozen=True)
class StepRun:
    """What happened and what the caller should do next."""

    outcome: Outcome
    next_step: str | None = None
    retry_in: int | None = None  # seconds, when outcome is "retry"
    message: str = ""


def claimant(worker_name: str = "") -> str:
    """Who runs a step ("<celery node name> <pid>"), so a restarted worker can recognise
    what it left unfinished."""
    return f"{worker_name or socket.gethostname()} {os.getpid()}"


def next_step_after(step_name: str) -> str | None:
    index = STEP_NAMES.index(step_name)
    return STEP_NAMES[index + 1] if index + 1 < len(STEP_NAMES) else None


def pipeline_step_run(
    *,
    document_id: int,
    step_name: str,
    task_id: str = "",
    worker_name: str = "",
    force_ocr: bool = False,
    retries_allowed: bool = True,
) -> StepRun:
    """Run ``step_name`` for the document, unless it already succeeded (then a no-op).

    Idempotent: a message delivered twice finds the step done and only passes the chain
    on. Temporary failures ask for a retry while attempts remain; everything else ends
    the document as ``failed`` with the reason, and the original file stays untouched.
    """
    claimed = _claim(document_id, step_name, task_id, claimant(worker_name))
    if claimed is None:
        return StepRun("noop", next_step=_pending_successor(document_id, step_name))
    document, step = claimed
    step_impl = PIPELINE[STEP_NAMES.index(step_name)]
    try:
        with storage.scratch_dir() as scratch:
            result = step_impl.run(StepContext(document=document, scratch=scratch, force_ocr=force_ocr))
    except StepInputMissing as exc:
        if step_name == STEP_NAMES[0]:
            # The first step reads only the original: starting over cannot bring it back.
            _record(step, StepStatus.FAILURE, exc.message, task_id)
            return StepRun("failure", message=exc.message)
        _restart_from_beginning(document_id, step, exc.message, task_id)
        return StepRun("restart", next_step=STEP_NAMES[0], message=exc.message)
    except StepTemporarilyFailed as exc:
        if retries_allowed and step.attempts <= settings.TASK_RETRY_MAX_RETRIES:
            delay = _retry_delay(step.attempts)
            _record(step, StepStatus.PENDING, f"{exc.message} Retrying in {delay} s.", task_id)
            return StepRun("retry", retry_in=delay, message=exc.message)
        _record(step, StepStatus.FAILURE, exc.message, task_id)
        return StepRun("failure", message=exc.message)
    except StepFailed as exc:
        _record(step, StepStatus.FAILURE, exc.message, task_id)
        return StepRun("failure", message=exc.message)
    except SoftTimeLimitExceeded:
        message = (
            f"The {step_name} step did not finish within {settings.STEP_TIMEOUT} seconds (STEP_TIMEOUT)."
        )
        _record(step, StepStatus.FAILURE, message, task_id)
        return StepRun("failure", message=message)
    except Exception as exc:
        # A bug or an unforeseen input: the document fails visibly, the worker carries on.
        logger.exception("step %s of document %s crashed", step_name, document_id)
        message = f"Internal error in the {step_name} step ({exc.__class__.__name__}); see the server log."
        _record(step, StepStatus.FAILURE, message, task_id)
        return StepRun("failure", message=message)
    status = StepStatus.SKIPPED if result.skipped else StepStatus.SUCCESS
    _record(step, status, result.message, task_id)
    return StepRun(
        "skipped" if result.skipped else "success",
        next_step=next_step_after(step_name),
        message=result.message,
    )


def pipeline_run_sync(*, document_id: int, force_ocr: bool = False) -> Document:
    """Run the remaining steps in this process, one after another (``ingest --sync``)."""
    step_name: str | None = _first_unfinished(document_id)
    while step_name is not None:
        run = pipeline_step_run(
            document_id=document_id, step_name=step_name, force_ocr=force_ocr, retries_allowed=False
        )
        if run.outcome == "failure":
            break
        step_name = run.next_step
    try:
        index_document(document_id=document_id)  # adds it when done, removes it when it failed
    except Exception:
        # The document is done whatever the index says; the hourly reconcile repairs it.
        logger.warning("document %s could not be indexed now", document_id, exc_info=True)
    return Document.objects.get(pk=document_id)


def document_refresh_status(document: Document) -> None:
    """Derive the document's status from its steps, the one place this rule lives."""
    if document.status == DocumentStatus.DUPLICATE:
        return
    steps = list(document.steps.all())
    statuses = {step.status for step in steps}
    if StepStatus.FAILURE in statuses:
        status = DocumentStatus.FAILED
        document.error = next(step.error for step in steps if step.status == StepStatus.FAILURE)
    elif statuses <= {StepStatus.SUCCESS, StepStatus.SKIPPED}:
        status = DocumentStatus.COMPLETED
        document.error = ""
    elif statuses & {StepStatus.IN_PROGRESS, StepStatus.SUCCESS, StepStatus.SKIPPED}:
        status = DocumentStatus.PROCESSING
        document.error = ""
    else:
        status = DocumentStatus.PENDING
        document.error = ""
    document.status = status
    document.save(update_fields=["status", "error", "updated_at"])


def log_event(document_id: int, step_name: str, status: str, message: str, task_id: str = "") -> None:
    ProcessingLog.objects.create(
        document_id=document_id, step_name=step_name, status=status, message=message[:5000], task_id=task_id
    )


def pipeline_fail_stuck_steps() -> int:
    """Fail steps that have been in progress for longer than any run may take.

    The task's hard time limit ends every run after STEP_TIMEOUT (plus a minute), so a
    step still in progress after that lost its worker without a word. Returns how many.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.STEP_TIMEOUT + STUCK_GRACE_SECONDS)
    stuck = ProcessingStep.objects.filter(status=StepStatus.IN_PROGRESS, started_at__lt=cutoff)
    count = 0
    for step in stuck:
        message = (
            f"The {step.name} step did not finish within {settings.STEP_TIMEOUT} seconds (STEP_TIMEOUT); "
            "its worker may have stopped. Retry the step to run it again."
        )
        _record(step, StepStatus.FAILURE, message, step.task_id)
        count += 1
    return count


def pipeline_resume_abandoned(*, worker_name: str) -> list[tuple[int, str]]:
    """Steps a worker of this name left in progress when it died; they are due again.

    Called when the worker starts, before it takes any task, so every step claimed under
    its name belongs to its previous, dead incarnation. A step that has already used all
    its attempts fails instead, so a document that kills the worker cannot loop forever.
    Returns (document id, step name) of the steps to enqueue.
    """
    due: list[tuple[int, str]] = []
    abandoned = ProcessingStep.objects.filter(
        status=StepStatus.IN_PROGRESS, claimed_by__startswith=f"{worker_name} "
    )
    for step in abandoned:
        if step.attempts > settings.TASK_RETRY_MAX_RETRIES:
            _record(
                step, StepStatus.FAILURE, f"The worker stopped during the {step.name} step too often.", ""
            )
            continue
        _record(
            step, StepStatus.PENDING, f"The worker stopped during the {step.name} step; running it again.", ""
        )
        due.append((step.document_id, step.name))
    return due


@transaction.atomic
def _claim(
    document_id: int, step_name: str, task_id: str, claimed_by: str
) -> tuple[Document, ProcessingStep] | None:
    step = ProcessingStep.objects.select_for_update().filter(document_id=document_id, name=step_name).first()
    # Deleted meanwhile, or already done by an earlier delivery of the same message.
    if step is None or step.status in {StepStatus.SUCCESS, StepStatus.SKIPPED}:
        return None
    step.status = StepStatus.IN_PROGRESS
    step.attempts += 1
    step.started_at = timezone.now()
    step.finished_at = None
    step.error = ""
    step.task_id = task_id
    step.claimed_by = claimed_by
    step.save()
    document = Document.objects.get(pk=document_id)
    log_event(document_id, step_name, StepStatus.IN_PROGRESS, f"Attempt {step.attempts}", task_id)
    document_refresh_status(document)
    return document, step


@transaction.atomic
def _record(step: ProcessingStep, status: StepStatus, message: str, task_id: str) -> None:
    step.status = status
    step.finished_at = timezone.now() if status != StepStatus.PENDING else None
    step.error = message if status in {StepStatus.FAILURE, StepStatus.PENDING} else ""
    step.claimed_by = ""
    step.save()
    log_event(step.document_id, step.name, status, message, task_id)
    document_refresh_status(Document.objects.get(pk=step.document_id))


@transaction.atomic
def _restart_from_beginning(document_id: int, step: ProcessingStep, message: str, task_id: str) -> None:
    ProcessingStep.objects.filter(document_id=document_id).update(
        status=StepStatus.PENDING, error="", started_at=None, finished_at=None, claimed_by=""
    )
    Document.objects.filter(pk=document_id).update(working_file="")
    log_event(document_id, step.name, StepStatus.PENDING, message, task_id)
    document_refresh_status(Document.objects.get(pk=document_id))


def _first_unfinished(document_id: int) -> str | None:
    pending = (
        ProcessingStep.objects.filter(document_id=document_id)
        .exclude(status__in=[StepStatus.SUCCESS, StepStatus.SKIPPED])
        .order_by("position")
        .values_list("name", flat=True)
        .first()
    )
    return pending


def _pending_successor(document_id: int, step_name: str) -> str | None:
    """After a no-op, the next step if it still waits (the chain may have been cut)."""
    successor = next_step_after(step_name)
    if successor is None:
        return None
    waiting = ProcessingStep.objects.filter(
        document_id=document_id, name=successor, status=StepStatus.PENDING
    ).exists()
    return successor if waiting else None


def _retry_delay(attempt: int) -> int:
    delays = settings.TASK_RETRY_DELAYS or [60]
    base = delays[min(attempt - 1, len(delays) - 1)]
    # Jitter spreads retries of many documents that failed together (a service outage).
    return max(1, round(base * random.uniform(0.9, 1.1)))  # noqa: S311 - not security relevant
