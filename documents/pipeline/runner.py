"""Runs one pipeline step of one document and records everything about it.

The runner owns the bookkeeping so steps stay small: it claims the ProcessingStep row,
turns every error into a readable reason and a FailureKind, and says what comes next. The
state changes themselves (and the log and document status that go with them) are
``documents.pipeline.state``'s. It never talks to Celery itself; the task (or
``pipeline_run_sync``) decides how the next step is run.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from docuelevate import diskspace
from docuelevate.errors import InsufficientStorage
from documents import storage
from documents.models import Document, DocumentStatus, FailureKind, ProcessingStep, ResetKind, StepStatus
from documents.pipeline.base import StepContext, StepFailed, StepInputMissing, StepTemporarilyFailed
from documents.pipeline.claims import claim_kept
from documents.pipeline.state import step_claim, step_pause, step_record, steps_reset
from documents.pipeline.steps import PIPELINE, STEP_NAMES
from search.services import index_document

logger = logging.getLogger(__name__)

# Beyond the task's hard time limit (STEP_TIMEOUT + 60 s), before a step counts as stuck.
STUCK_GRACE_SECONDS = 120
# How often a step paused for disk space (below MIN_FREE_DISK_MB) looks again.
DISK_PAUSE_SECONDS = 60
# What the database driver raises when the server cannot be reached or the connection broke
# (a restart, a failover, a network cut): passing, and no fault of the document.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


class Outcome(StrEnum):
    """How one run of a step ended, for the caller deciding what to send next."""

    SUCCESS = "success"  # done; go on with next_step
    SKIPPED = "skipped"  # nothing to do; go on with next_step
    FAILURE = "failure"  # the document failed; the chain ends
    RETRY = "retry"  # a temporary failure; run the same step again in retry_in seconds
    RESTART = "restart"  # an input was gone; every step is pending again, from next_step
    NOOP = "noop"  # already done (a message delivered twice); next_step if it still waits
    # The database was away, so nothing could be recorded; run the same step again shortly,
    # taking over resume_claim, the claim this run may have left behind.
    DATABASE_UNAVAILABLE = "database_unavailable"


@dataclass(frozen=True)
class StepRun:
    """What happened and what the caller should do next."""

    outcome: Outcome
    next_step: str | None = None
    retry_in: int | None = None  # seconds, when outcome is RETRY
    message: str = ""
    resume_claim: str = ""  # when outcome is DATABASE_UNAVAILABLE


def claimant(worker_name: str = "") -> str:
    """Who runs a step ("<celery node name> <pid>"), so a restarted worker can recognise
    what it left unfinished."""
    return f"{worker_name or socket.gethostname()} {os.getpid()}"


def claim_token(worker_name: str = "") -> str:
    """A run's own claim: "<worker node> <pid> <run>". The node and pid let a restarted
    worker (or a redelivered message on the same node) see that the run is gone; the run
    part makes each run's claim its own, so a run that lost it cannot record over its
    successor."""
    return f"{claimant(worker_name)} {uuid.uuid4().hex[:12]}"


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
    resume_claim: str = "",
) -> StepRun:
    """Run ``step_name`` for the document, unless it already succeeded (then a no-op).

    Idempotent: a message delivered twice finds the step done and only passes the chain
    on. Temporary failures ask for a retry while attempts remain; everything else ends
    the document as ``failed`` with the reason, and the original file stays untouched.
    A database that went away ends the run with DATABASE_UNAVAILABLE, recording nothing
    (it cannot): the caller runs the step again with ``resume_claim``, the claim this run
    may have left on it (``state.step_claim``), so the document neither fails nor waits
    for the claim to run out.
    """
    token = claim_token(worker_name)
    try:
        return _step_run(
            document_id=document_id,
            step_name=step_name,
            task_id=task_id,
            claimed_by=token,
            resume_claim=resume_claim,
            force_ocr=force_ocr,
            retries_allowed=retries_allowed,
        )
    except DATABASE_UNAVAILABLE:
        logger.warning(
            "step %s of document %s: the database is unavailable; it will run again",
            step_name,
            document_id,
            exc_info=True,
        )
        # The broken connection is closed after the task (Celery's Django fixup), so the
        # next run connects afresh.
        return StepRun(
            Outcome.DATABASE_UNAVAILABLE, message="The database is unavailable.", resume_claim=token
        )


def _step_run(
    *,
    document_id: int,
    step_name: str,
    task_id: str,
    claimed_by: str,
    resume_claim: str,
    force_ocr: bool,
    retries_allowed: bool,
) -> StepRun:
    if not diskspace.has_room():
        delay = disk_pause_delay()
        message = diskspace.pause_reason()
        if step_pause(
            document_id=document_id, step_name=step_name, message=message, task_id=task_id, due_in=delay
        ):
            # Below the free-space floor a step would only fail half-written: it waits instead.
            return StepRun(Outcome.RETRY, retry_in=delay, message=message)
    claimed = step_claim(
        document_id=document_id,
        step_name=step_name,
        task_id=task_id,
        claimed_by=claimed_by,
        resume_claim=resume_claim,
    )
    if claimed is None:
        return StepRun(Outcome.NOOP, next_step=_pending_successor(document_id, step_name))
    document, step = claimed
    run = _step_run_claimed(
        document, step, task_id=task_id, force_ocr=force_ocr, retries_allowed=retries_allowed
    )
    if run is None:
        # The claim ran out under this run (its worker was taken for dead) and another run has
        # the step now, or a person reset it: that one's outcome counts, not this one's.
        logger.warning("step %s of document %s lost its claim while running", step_name, document_id)
        return StepRun(Outcome.NOOP)
    return run


class _ClaimLost(Exception):
    """The run's claim is gone (``_step_run_claimed``)."""


def _claim_held(step: ProcessingStep) -> QuerySet[ProcessingStep]:
    """The step's row while this run holds it: what a renewal updates, what a record needs."""
    return ProcessingStep.objects.filter(
        pk=step.pk, status=StepStatus.IN_PROGRESS, claimed_by=step.claimed_by
    )


def _step_run_claimed(
    document: Document, step: ProcessingStep, *, task_id: str, force_ocr: bool, retries_allowed: bool
) -> StepRun | None:
    """Run a step this run has claimed and record how it ended; None when the claim was lost."""
    document_id, step_name = document.pk, step.name
    step_impl = PIPELINE[STEP_NAMES.index(step_name)]
    try:
        with claim_kept(_claim_held(step)):
            try:
                with storage.scratch_dir() as scratch:
                    context = StepContext(document=document, scratch=scratch, force_ocr=force_ocr)
                    result = step_impl.run(context)
            except Exception as exc:
                # The scratch folder and any partial file are gone by now (scratch_dir, store_file).
                if not _out_of_room(exc):
                    raise
                result = None  # out of room: paused below, once the claim is known to be held
            finally:
                # Whatever the step did or raised, a run that lost its claim records nothing.
                if not _claim_held(step).exists():
                    raise _ClaimLost
    except _ClaimLost:
        return None
    except DATABASE_UNAVAILABLE:
        raise  # nothing can be recorded now; pipeline_step_run has the step run again
    except StepInputMissing as exc:
        if step_name == STEP_NAMES[0]:
            # The first step reads only the original: starting over cannot bring it back.
            return _fail(step, exc.message, task_id, FailureKind.PERMANENT)
        steps_reset(
            document_id=document_id,
            from_step=STEP_NAMES[0],
            reason=ResetKind.INPUT_MISSING,
            log_step_name=step_name,
            message=exc.message,
            task_id=task_id,
        )
        return StepRun(Outcome.RESTART, next_step=STEP_NAMES[0], message=exc.message)
    except StepTemporarilyFailed as exc:
        if retries_allowed and step.attempts <= settings.TASK_RETRY_MAX_RETRIES:
            delay = retry_delay(step.attempts)
            step_record(
                step=step,
                status=StepStatus.PENDING,
                message=f"{exc.message} Retrying in {delay} s.",
                task_id=task_id,
                kind=exc.kind,
                due_in=delay,
            )
            return StepRun(Outcome.RETRY, retry_in=delay, message=exc.message)
        # Out of retries here, still a passing problem: housekeeping may give it one more run.
        return _fail(step, exc.message, task_id, exc.kind)
    except StepFailed as exc:
        return _fail(step, exc.message, task_id, exc.kind)
    except SoftTimeLimitExceeded:
        message = (
            f"The {step_name} step did not finish within {settings.STEP_TIMEOUT} seconds (STEP_TIMEOUT)."
        )
        return _fail(step, message, task_id, FailureKind.TIMEOUT)
    except Exception as exc:
        # A bug or an unforeseen input: the document fails visibly, the worker carries on.
        logger.exception("step %s of document %s crashed", step_name, document_id)
        message = f"Internal error in the {step_name} step ({exc.__class__.__name__}); see the server log."
        return _fail(step, message, task_id, FailureKind.INTERNAL_ERROR)
    if result is None:
        return _pause(step, task_id)
    status = StepStatus.SKIPPED if result.skipped else StepStatus.SUCCESS
    step_record(step=step, status=status, message=result.message, task_id=task_id)
    return StepRun(
        Outcome.SKIPPED if result.skipped else Outcome.SUCCESS,
        next_step=next_step_after(step_name),
        message=result.message,
    )


def _out_of_room(exc: Exception) -> bool:
    """Whether a step's error came from a full disk: the write said so (its errno), or the
    step failed while WORKDIR is below its floor, as a program (OCR, conversion) that ran
    out of space does, whatever words it printed."""
    if diskspace.is_disk_full(exc) or isinstance(exc, InsufficientStorage):
        return True
    return not isinstance(exc, StepInputMissing | SoftTimeLimitExceeded) and not diskspace.has_room()


def _pause(step: ProcessingStep, task_id: str) -> StepRun:
    message = diskspace.pause_reason()
    delay = disk_pause_delay()
    step_pause(
        document_id=step.document_id,
        step_name=step.name,
        message=message,
        task_id=task_id,
        due_in=delay,
        was_claimed=True,
    )
    return StepRun(Outcome.RETRY, retry_in=delay, message=message)


def disk_pause_delay() -> int:
    """Seconds before a step paused for disk space looks again, with jitter so that many
    paused documents do not all wake at once."""
    return max(1, round(DISK_PAUSE_SECONDS * random.uniform(0.75, 1.25)))  # noqa: S311 - not security relevant


def _fail(step: ProcessingStep, message: str, task_id: str, kind: FailureKind) -> StepRun:
    step_record(step=step, status=StepStatus.FAILURE, message=message, task_id=task_id, kind=kind)
    return StepRun(Outcome.FAILURE, message=message)


def pipeline_run_sync(*, document_id: int, force_ocr: bool = False) -> Document:
    """Run the remaining steps in this process, one after another (``ingest --sync``)."""
    step_name: str | None = _first_unfinished(document_id)
    while step_name is not None:
        run = pipeline_step_run(
            document_id=document_id, step_name=step_name, force_ocr=force_ocr, retries_allowed=False
        )
        if run.outcome == Outcome.FAILURE:
            break
        step_name = run.next_step
    try:
        index_document(document_id=document_id)  # adds it when done, removes it when it failed
    except Exception:
        # The document is done whatever the index says; the hourly reconcile repairs it.
        logger.warning("document %s could not be indexed now", document_id, exc_info=True)
    document = Document.objects.get(pk=document_id)
    if document.status == DocumentStatus.COMPLETED:
        # Imported here: the delivery service builds on this module (claimant, retry_delay).
        from destinations.services import deliveries_run_sync

        try:
            deliveries_run_sync(document_id=document_id)  # each records its own outcome
        except Exception:
            # The document is done whatever its deliveries say; the error is in the log.
            logger.exception("the deliveries of document %s could not be run", document_id)
    return document


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
        step_record(
            step=step,
            status=StepStatus.FAILURE,
            message=message,
            task_id=step.task_id,
            kind=FailureKind.WORKER_LOST,
        )
        count += 1
    return count


def pipeline_resume_abandoned(*, worker_name: str) -> list[tuple[int, str]]:
    """Steps a worker of this name left in progress when it died; they are due again.

    Called when the worker starts, before it takes any task, so every step claimed under
    its name belongs to its previous, dead incarnation. Returns (document id, step name)
    of the steps to enqueue (``_steps_resume``).
    """
    return _steps_resume(
        ProcessingStep.objects.filter(
            status=StepStatus.IN_PROGRESS, claimed_by__startswith=f"{worker_name} "
        ),
        message="The worker stopped during the {step} step; running it again.",
    )


def pipeline_resume_expired(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Steps whose claim ran out: their worker stopped renewing it (killed, its pod or host
    gone), whatever name it comes back with, if any. They are due again; returns (document
    id, step name) of the steps to enqueue (``_steps_resume``).

    Run by the watchdog every minute and by every worker start, so a step whose worker died
    runs again within WORKER_CLAIM_TIMEOUT and a minute. Idempotent: a step given back is no
    longer in progress, and a message sent twice finds the step claimed or done.
    """
    return _steps_resume(
        ProcessingStep.objects.filter(
            status=StepStatus.IN_PROGRESS, claim_expires_at__lt=now or timezone.now()
        ),
        message="The worker stopped renewing its claim on the {step} step; running it again.",
    )


def _steps_resume(abandoned: QuerySet[ProcessingStep], *, message: str) -> list[tuple[int, str]]:
    """Give back steps whose run is gone: pending again (WORKER_LOST), or failed once they
    have used all their attempts, so a document that kills its worker cannot loop forever.
    Each is asked again under its row lock, so a run that ended or renewed its claim
    meanwhile, or another sweep that was quicker, is left alone."""
    due: list[tuple[int, str]] = []
    for candidate in abandoned.only("pk", "claimed_by"):
        with transaction.atomic():
            step = (
                abandoned.select_for_update().filter(pk=candidate.pk, claimed_by=candidate.claimed_by).first()
            )
            if step is None:
                continue
            if step.attempts > settings.TASK_RETRY_MAX_RETRIES:
                step_record(
                    step=step,
                    status=StepStatus.FAILURE,
                    message=f"The worker stopped during the {step.name} step too often.",
                    task_id="",
                    kind=FailureKind.WORKER_LOST_REPEATEDLY,
                )
                if step.name == "finalize":
                    processed_folder_repair(document_id=step.document_id)
                continue
            step_record(
                step=step,
                status=StepStatus.PENDING,
                message=message.format(step=step.name),
                task_id="",
                kind=FailureKind.WORKER_LOST,
            )
            due.append((step.document_id, step.name))
    return due


# The most steps one watchdog sweep sends again; a longer list is sent over several minutes.
RESEND_BATCH = 500


def pipeline_stalled_steps(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Pending steps whose message is overdue by more than WORKER_CLAIM_TIMEOUT: it never
    reached a worker (its send failed while the broker was away, or the broker restarted
    without its queue). Returns (document id, step name), the longest overdue first.

    Only the head of a document's chain has a due time (``due_at``, set when it is handed
    to the broker or told to wait for a retry), so a step waiting behind another is never
    taken for lost. The caller decides whether the queue is drained enough for the list to
    mean lost messages (``documents.tasks.steps_resend_stalled_enqueue``).
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WORKER_CLAIM_TIMEOUT)
    stalled = ProcessingStep.objects.filter(status=StepStatus.PENDING, due_at__lt=cutoff).order_by("due_at")
    return list(stalled.values_list("document_id", "name")[:RESEND_BATCH])


def processed_folder_repair(*, document_id: int) -> list[str]:
    """A finalize that will not run again (its worker died in it too often) may have left a
    move half done: the document's folder keeps what the database names, and the rest (a new
    name the database never got to, a ``.partial-`` file) goes. Returns what went.

    Only for a step whose worker is known dead: tidying under a live move would delete the
    new file just before the database names it.
    """
    document = Document.objects.filter(pk=document_id).only("uuid", "processed_file").first()
    if document is None:
        return []
    keep = {storage.thumbnail_name(document.uuid)}
    if document.processed_file:
        keep |= {document.processed_file, storage.sidecar_name(document.processed_file)}
    return storage.processed_tidy(document.uuid, keep=keep)


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


def retry_delay(attempt: int) -> int:
    """Seconds before retry ``attempt`` (1, 2, …) of a temporary failure: TASK_RETRY_DELAYS,
    the last one repeating, with jitter. Steps and deliveries share it."""
    delays = settings.TASK_RETRY_DELAYS or [60]
    base = delays[min(attempt - 1, len(delays) - 1)]
    # Jitter spreads retries of many documents that failed together (a service outage).
    return max(1, round(base * random.uniform(0.9, 1.1)))  # noqa: S311 - not security relevant
