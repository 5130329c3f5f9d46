"""Every change of a pipeline step's state, and the document status that follows from it.

The runner, the services (reprocess, retry), housekeeping and the watchdogs all move
ProcessingStep rows through these functions only, so each rule is written once:

- ``step_claim``: a run takes a step (``in_progress``, one more attempt, a claim that
  runs out unless the run renews it: ``documents.pipeline.claims``).
- ``step_record``: a run ends (success, skipped, failure, or pending again for a retry);
  every error comes with its FailureKind.
- ``steps_reset``: steps go back to pending from a position; the ResetKind says why and
  decides the attempts count (see ``steps_reset``).
- ``document_refresh_status``: the document's status derived from its steps.

Each writes its log entry (``log_event``) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from documents.models import (
    Document,
    DocumentStatus,
    FailureKind,
    ProcessingLog,
    ProcessingStep,
    ResetKind,
    StepStatus,
)
from documents.pipeline.claims import claim_expiry, claim_holder_gone
from documents.pipeline.steps import STEP_NAMES

# Resets that give the steps a fresh attempts budget (their automatic retries, their
# worker-restart resumes): a person's decision, or housekeeping's one more run, starts
# the count over. The runner's own restart (INPUT_MISSING) keeps the count, so a loop the
# runner starts by itself still runs into TASK_RETRY_MAX_RETRIES and ends.
FRESH_ATTEMPTS: frozenset[ResetKind] = frozenset(
    {ResetKind.MANUAL_RETRY, ResetKind.REPROCESS, ResetKind.RETRY_SWEEP, ResetKind.EDIT}
)


def log_event(
    document_id: int, step_name: str, status: str, message: str, task_id: str = "", *, kind: str = ""
) -> None:
    """Append one entry to the document's processing log (message cut at 5,000 characters)."""
    ProcessingLog.objects.create(
        document_id=document_id,
        step_name=step_name,
        status=status,
        message=message[:5000],
        task_id=task_id,
        kind=kind,
    )


def document_refresh_status(document: Document) -> None:
    """Derive the document's status from its steps (``document_status_from_steps``)."""
    if document.status == DocumentStatus.DUPLICATE:
        return
    document.status, document.error = document_status_from_steps(list(document.steps.all()))
    document.save(update_fields=["status", "error", "updated_at"])


def document_status_from_steps(steps: Sequence[ProcessingStep]) -> tuple[str, str]:
    """The status and error a document's steps give it, the one place this rule lives."""
    statuses = {step.status for step in steps}
    if StepStatus.FAILURE in statuses:
        return DocumentStatus.FAILED, next(step.error for step in steps if step.status == StepStatus.FAILURE)
    if statuses <= {StepStatus.SUCCESS, StepStatus.SKIPPED}:
        return DocumentStatus.COMPLETED, ""
    if statuses & {StepStatus.IN_PROGRESS, StepStatus.SUCCESS, StepStatus.SKIPPED}:
        return DocumentStatus.PROCESSING, ""
    return DocumentStatus.PENDING, ""


@transaction.atomic
def step_claim(
    *, document_id: int, step_name: str, task_id: str, claimed_by: str, resume_claim: str = ""
) -> tuple[Document, ProcessingStep] | None:
    """Take ``step_name`` for a run: in progress, one more attempt, claimed by this worker.

    None when there is nothing to run: the step is gone (document deleted), already done
    (a message delivered twice), or in progress in a run that is still alive (a message
    that came back, e.g. after Redis's visibility timeout, while the step's claim is renewed
    by its run). A step in progress is taken over only when its claim ran out or its holder
    is certainly gone (``claims.claim_holder_gone``). The row is locked, so two deliveries
    cannot both claim.

    ``resume_claim`` is the claim of an earlier run of the same task that ended because the
    database went away (``runner.pipeline_step_run``): that run is over, so a step still
    held under it is taken over at once, and without counting an attempt, since an outage
    of the database is no fault of the document.
    """
    step = ProcessingStep.objects.select_for_update().filter(document_id=document_id, name=step_name).first()
    if step is None or step.status in {StepStatus.SUCCESS, StepStatus.SKIPPED}:
        return None
    now = timezone.now()
    resumed = bool(resume_claim) and step.status == StepStatus.IN_PROGRESS and step.claimed_by == resume_claim
    if step.status == StepStatus.IN_PROGRESS and not resumed and _claim_alive(step, claimed_by, now):
        return None
    step.status = StepStatus.IN_PROGRESS
    if not resumed:
        step.attempts += 1
    step.started_at = now
    step.finished_at = None
    step.error = ""
    step.failure_kind = ""
    step.task_id = task_id
    step.claimed_by = claimed_by
    step.claim_expires_at = claim_expiry(now)
    step.save()
    document = Document.objects.get(pk=document_id)
    if resumed:
        message = f"Attempt {step.attempts} again: the database was unavailable during its last run."
        kind = FailureKind.TEMPORARY
        log_event(document_id, step_name, StepStatus.IN_PROGRESS, message, task_id, kind=kind)
    else:
        log_event(document_id, step_name, StepStatus.IN_PROGRESS, f"Attempt {step.attempts}", task_id)
    document_refresh_status(document)
    return document, step


def _claim_alive(step: ProcessingStep, claimed_by: str, now: datetime) -> bool:
    """Whether another run holds ``step`` still. A claim with no expiry (taken before claims
    had one) counts as run out, as it did then."""
    if step.claim_expires_at is None or step.claim_expires_at <= now:
        return False
    return not claim_holder_gone(step.claimed_by, claimed_by)


@transaction.atomic
def step_record(
    *,
    step: ProcessingStep,
    status: StepStatus,
    message: str,
    task_id: str,
    kind: FailureKind | None = None,
    due_in: int = 0,
) -> None:
    """Record how a run of ``step`` ended, and release its claim.

    ``status`` is SUCCESS or SKIPPED (``message`` is the log's), FAILURE, or PENDING for a
    run that will come again (a retry, whose message is due in ``due_in`` seconds). A
    FAILURE or PENDING keeps ``message`` as the step's error and needs ``kind``, what kind
    of failure it was.
    """
    has_error = status in {StepStatus.FAILURE, StepStatus.PENDING}
    if has_error and kind is None:
        raise ValueError(f"a {status} step needs the kind of its failure")
    step.status = status
    step.finished_at = timezone.now() if status != StepStatus.PENDING else None
    step.error = message if has_error else ""
    step.failure_kind = kind if has_error and kind is not None else ""
    step.claimed_by = ""
    step.claim_expires_at = None
    if status == StepStatus.PENDING:
        step.due_at = timezone.now() + timedelta(seconds=due_in)
    step.save()
    log_event(step.document_id, step.name, status, message, task_id, kind=step.failure_kind)
    document_refresh_status(Document.objects.get(pk=step.document_id))


@transaction.atomic
def step_pause(
    *, document_id: int, step_name: str, message: str, task_id: str, due_in: int, was_claimed: bool = False
) -> bool:
    """Leave ``step_name`` pending for want of disk space, ``message`` as its reason, to
    look again in ``due_in`` seconds.

    A pause is not a failure: it uses up no attempt (a run that was claimed and then found
    the disk full gives its attempt back, ``was_claimed``) and the housekeeping retry never
    sees it. Logged once per pause, not at every look. False when the step does not wait
    (gone, done, or run by another worker just now): the caller carries on as usual.
    """
    step = ProcessingStep.objects.select_for_update().filter(document_id=document_id, name=step_name).first()
    if step is None or step.status != (StepStatus.IN_PROGRESS if was_claimed else StepStatus.PENDING):
        return False
    already_paused = step.failure_kind == FailureKind.DISK_FULL
    if was_claimed:
        step.attempts = max(step.attempts - 1, 0)
    step.status = StepStatus.PENDING
    step.started_at = None
    step.finished_at = None
    step.error = message
    step.failure_kind = FailureKind.DISK_FULL
    step.claimed_by = ""
    step.claim_expires_at = None
    step.due_at = timezone.now() + timedelta(seconds=due_in)
    step.save()
    if not already_paused:
        log_event(document_id, step_name, StepStatus.PENDING, message, task_id, kind=FailureKind.DISK_FULL)
    document_refresh_status(Document.objects.get(pk=document_id))
    return True


@transaction.atomic
def steps_reset(
    *,
    document_id: int,
    from_step: str,
    reason: ResetKind,
    log_step_name: str,
    message: str,
    task_id: str = "",
) -> None:
    """Set ``from_step`` and every step after it back to pending, errors cleared.

    The one rule per reason:

    - attempts start over for MANUAL_RETRY, REPROCESS and RETRY_SWEEP (``FRESH_ATTEMPTS``)
      and are kept for the runner's own INPUT_MISSING restart;
    - starting from the first step starts from the original, so the document's working
      file is forgotten; from a later step, it stays, as that step's input.

    The log entry goes under ``log_step_name`` with ``reason`` as its kind.
    """
    position = STEP_NAMES.index(from_step)
    ProcessingStep.objects.filter(document_id=document_id, position__gte=position).update(
        **_reset_changes(reason)
    )
    if position == 0:
        Document.objects.filter(pk=document_id).update(working_file="")
    log_event(document_id, log_step_name, StepStatus.PENDING, message, task_id, kind=reason)
    document_refresh_status(Document.objects.get(pk=document_id))


def _reset_changes(reason: ResetKind) -> dict[str, object]:
    changes: dict[str, object] = {
        "status": StepStatus.PENDING,
        "error": "",
        "failure_kind": "",
        "started_at": None,
        "finished_at": None,
        "claimed_by": "",
        "claim_expires_at": None,
        # Nothing is due until the caller hands the first of them to the workers again.
        "due_at": None,
    }
    if reason in FRESH_ATTEMPTS:
        changes["attempts"] = 0
    return changes


def steps_reset_many(
    *, document_ids: Sequence[int], from_step: str, reason: ResetKind, log_step_name: str, message: str
) -> None:
    """``steps_reset`` for many documents at once (a bulk edit's chunk): the same rules and
    log entries, in a few queries whatever their number."""
    if not document_ids:
        return
    position = STEP_NAMES.index(from_step)
    ids = list(document_ids)
    ProcessingStep.objects.filter(document_id__in=ids, position__gte=position).update(
        **_reset_changes(reason)
    )
    if position == 0:
        Document.objects.filter(pk__in=ids).update(working_file="")
    ProcessingLog.objects.bulk_create(
        ProcessingLog(
            document_id=document_id, step_name=log_step_name, status=StepStatus.PENDING,
            message=message[:5000], kind=reason,
        )
        for document_id in ids
    )  # fmt: skip
    steps: dict[int, list[ProcessingStep]] = defaultdict(list)
    for step in ProcessingStep.objects.filter(document_id__in=ids).only("document_id", "status", "error"):
        steps[step.document_id].append(step)
    # One UPDATE per resulting status (nearly always one), not one save per document.
    by_status: dict[tuple[str, str], list[int]] = defaultdict(list)
    for document_id in (
        Document.objects.filter(pk__in=ids)
        .exclude(status=DocumentStatus.DUPLICATE)
        .values_list("pk", flat=True)
    ):
        by_status[document_status_from_steps(steps[document_id])].append(document_id)
    now = timezone.now()
    for (status, error), same in by_status.items():
        Document.objects.filter(pk__in=same).update(status=status, error=error, updated_at=now)
