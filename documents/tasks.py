"""Celery tasks of the document pipeline: thin wrappers around the runner and services."""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError

from destinations.services import (
    deliveries_resend_overdue,
    deliveries_resume_expired,
    deliveries_resume_stale,
    deliveries_schedule,
)
from docuelevate.celery import QUEUE_DEFAULT, QUEUE_DOCUMENT_PROCESSOR
from documents.integrations.url_fetcher import TOTAL_TIMEOUT as URL_TOTAL_TIMEOUT
from documents.organise.bulk import bulk_edit_run
from documents.organise.editing import document_refile
from documents.organise.matching import matcher_train_owner, matchers_retrain_due
from documents.organise.trash import trash_empty
from documents.pipeline.runner import (
    DATABASE_UNAVAILABLE,
    Outcome,
    StepRun,
    pipeline_fail_stuck_steps,
    pipeline_resume_abandoned,
    pipeline_resume_expired,
    pipeline_stalled_steps,
    pipeline_step_run,
)
from documents.services import (
    URL_TASK_TIME_LIMIT,
    document_fetch_resume_stale,
    document_fetch_url,
    pipeline_enqueue,
)
from ops.probes.broker import queue_lengths
from search.services import index_document_enqueue

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="documents.tasks.pipeline_step_task",
    acks_late=True,
    max_retries=None,  # the runner counts attempts per step and decides
    soft_time_limit=settings.STEP_TIMEOUT,
    time_limit=settings.STEP_TIMEOUT + 60,
)
def pipeline_step_task(
    self: Task[Any, Any],
    document_id: int,
    step_name: str,
    force_ocr: bool = False,
    resume_claim: str = "",
    hand_off: dict[str, str] | None = None,
) -> str:
    """Run one step of one document, then hand the next step to the queue.

    One task per step, so a crash loses at most one step's work, each step is visible
    and retried on its own, and a long OCR never blocks the queue for the short steps.
    While the database is away the task is retried, with a growing wait, for as long as
    the outage lasts: an outage fails no document. ``hand_off`` is a recorded run whose
    hand-off (the next step, or the search and deliveries) met no database: only that is
    done again, since running the step again would find it done and hand nothing on.
    """
    if hand_off is not None:
        run = StepRun(Outcome(hand_off["outcome"]), next_step=hand_off.get("next_step") or None)
        _hand_off_or_retry(self, run, document_id=document_id, force_ocr=force_ocr)
        return run.outcome.value
    run = pipeline_step_run(
        document_id=document_id,
        step_name=step_name,
        task_id=self.request.id or "",
        worker_name=self.request.hostname or "",
        force_ocr=force_ocr,
        resume_claim=resume_claim,
    )
    if run.outcome == Outcome.DATABASE_UNAVAILABLE:
        kwargs = {"force_ocr": force_ocr, "resume_claim": run.resume_claim}
        raise self.retry(countdown=database_retry_delay(self.request.retries), kwargs=kwargs)
    if run.outcome == Outcome.RETRY and run.retry_in is not None:
        raise self.retry(countdown=run.retry_in, kwargs={"force_ocr": force_ocr})
    _hand_off_or_retry(self, run, document_id=document_id, force_ocr=force_ocr)
    return run.outcome.value


def _hand_off_or_retry(task: Task[Any, Any], run: StepRun, *, document_id: int, force_ocr: bool) -> None:
    """Hand the chain on after a recorded run; while the database is away, try the hand-off
    alone again later (the step itself is done)."""
    try:
        _pass_on(run, document_id=document_id, force_ocr=force_ocr)
    except DATABASE_UNAVAILABLE:
        hand_off = {"outcome": run.outcome.value, "next_step": run.next_step or ""}
        delay = database_retry_delay(task.request.retries)
        raise task.retry(countdown=delay, kwargs={"force_ocr": force_ocr, "hand_off": hand_off}) from None


def _pass_on(run: StepRun, *, document_id: int, force_ocr: bool) -> None:
    """After a step: the next one to the queue, or, at the end, the search and deliveries."""
    if run.next_step is not None:
        pipeline_enqueue(
            document_id=document_id, step_name=run.next_step, task_id=str(uuid.uuid4()), force_ocr=force_ocr
        )
    elif run.outcome in (Outcome.SUCCESS, Outcome.SKIPPED, Outcome.FAILURE):
        # Processing ended: the search follows (findable when done; when a reprocessing
        # failed, no longer found by the text it had before), and a finished document
        # goes to its destinations.
        index_document_enqueue(document_id=document_id)
        if run.outcome != Outcome.FAILURE:
            deliveries_schedule(document_id=document_id)


# The longest wait between two tries of a step while the database is away.
DATABASE_RETRY_MAX_SECONDS = 30


def database_retry_delay(retries: int) -> float:
    """Seconds before the next try of a step that met no database: 1, 2, 4 … up to
    DATABASE_RETRY_MAX_SECONDS, with jitter, so a restarted database is used again within
    seconds and many waiting steps do not all come back in the same instant."""
    base: float = min(DATABASE_RETRY_MAX_SECONDS, 2 ** min(retries, 8))
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - not security relevant


@shared_task(
    name="documents.tasks.document_fetch_url_task",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=int(URL_TOTAL_TIMEOUT) + 60,
    time_limit=URL_TASK_TIME_LIMIT,
)
def document_fetch_url_task(document_id: int) -> str:
    """Download a document given by URL, then queue its processing.

    A task, not part of the request: a slow server may take up to the fetcher's
    TOTAL_TIMEOUT and must not hold a web worker that long. Idempotent (a document that
    has its file is left alone), so a redelivery after a lost worker downloads at most
    once more and never ingests twice; a download whose worker vanished is sent again by
    the watchdog. A failed download fails the document with the reason; submitting the
    URL again is the retry.
    """
    return document_fetch_url(document_id=document_id).status


@shared_task(name="documents.tasks.stuck_steps_watchdog_task", acks_late=True, ignore_result=True)
def stuck_steps_watchdog_task() -> int:
    """Send again the steps and deliveries whose worker stopped renewing their claim (it
    died, whatever name it comes back with), fail steps in progress past STEP_TIMEOUT, and
    send again the URL downloads and the deliveries whose worker vanished, so no document
    stays "processing" for long. Returns how many it acted on.

    Runs every minute from beat; idempotent (a step or delivery given back is no longer in
    progress, a failed step neither, a download or delivery sent again is not stale until
    its own claim or time limit has run out).
    """
    resumed = steps_resume_expired_enqueue()
    resumed += steps_resend_stalled_enqueue()
    failed = pipeline_fail_stuck_steps()
    if failed:
        logger.warning("watchdog failed %d stuck step(s)", failed)
    resent = document_fetch_resume_stale()
    if resent:
        logger.warning("watchdog sent %d stalled download(s) again", len(resent))
    redelivered = deliveries_resume_stale()
    redelivered += deliveries_resume_expired()
    redelivered += deliveries_resend_lost()
    if redelivered:
        logger.warning("watchdog sent %d stalled deliveries again", len(redelivered))
    return resumed + failed + len(resent) + len(redelivered)


def steps_resume_expired_enqueue() -> int:
    """Queue again the steps whose claim ran out (their worker died, whatever its name);
    how many."""
    due = pipeline_resume_expired()
    for document_id, step_name in due:
        logger.warning("resuming %s of document %s: its worker's claim ran out", step_name, document_id)
        pipeline_enqueue(document_id=document_id, step_name=step_name, task_id=str(uuid.uuid4()))
    return len(due)


def deliveries_resend_lost() -> list[int]:
    """Send again the pending deliveries whose message was lost with the broker, while the
    queue they go through is empty (as for steps: ``steps_resend_stalled_enqueue``)."""
    if queue_lengths().get(QUEUE_DEFAULT) != 0:
        return []
    return deliveries_resend_overdue()


def steps_resend_stalled_enqueue() -> int:
    """Send again the pending steps whose message never reached a worker (sent while the
    broker was away, or lost with a broker restarted without its queue); how many.

    Only while the pipeline's queue is empty: the workers then have nothing left to take,
    so a step still overdue cannot be waiting behind a backlog, and a long queue is never
    doubled. A message sent twice is harmless (the second finds the step claimed or done),
    and a step sent again is due from now, so it is sent at most once per
    WORKER_CLAIM_TIMEOUT. A broker that cannot say how long its queue is (the embedded file
    broker, which keeps its messages on disk and loses none) is left alone.
    """
    if queue_lengths().get(QUEUE_DOCUMENT_PROCESSOR) != 0:
        return 0
    due = pipeline_stalled_steps()
    for document_id, step_name in due:
        logger.warning("sending %s of document %s again: its message was lost", step_name, document_id)
        pipeline_enqueue(document_id=document_id, step_name=step_name, task_id=str(uuid.uuid4()))
    return len(due)


@shared_task(name="documents.tasks.trash_empty_task", acks_late=True, ignore_result=True)
def trash_empty_task() -> int:
    """Daily: the trash keeps a document EMPTY_TRASH_DELAY days, then it goes for good;
    idempotent, as a document deleted once is not in the trash any more."""
    return trash_empty()


@shared_task(
    name="documents.tasks.bulk_edit_task",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def bulk_edit_task(operation_id: str) -> str:
    """Run a bulk edit to its end, chunk by chunk, its progress recorded after each.

    A task, not the request: 10,000 documents take longer than any web worker may wait.
    Resumable and idempotent: each chunk commits with the progress that counts it, so a
    redelivery (acks_late, a worker killed) continues from ``done`` and never does a
    document twice; a finished operation is left alone. A database that is briefly away
    is retried with backoff.
    """
    operation = bulk_edit_run(operation_id=operation_id)
    return operation.status if operation is not None else "gone"


@shared_task(
    name="documents.tasks.documents_refile_task",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=5,
)
def documents_refile_task(document_ids: list[int], from_step: str, message: str) -> int:
    """File documents again from ``from_step`` after something their stored name or PDF
    depends on changed outside the document itself (a storage path's template, a renamed or
    merged correspondent, type or tag). Returns how many were sent.

    Idempotent: a document sent twice is reset and filed twice, to the same name. A task,
    not part of the request, because a template may be used by thousands of documents.
    """
    return sum(
        document_refile(document_id=document_id, from_step=from_step, message=message)
        for document_id in document_ids
    )


@shared_task(name="documents.tasks.matchers_retrain_due_task", acks_late=True, ignore_result=True)
def matchers_retrain_due_task() -> int:
    """Every half hour: one training task per owner whose matcher is due (new owners with
    enough documents, or enough new and corrected documents since the last training), so
    no owner waits behind another's training. Idempotent: training twice costs time only."""
    due = matchers_retrain_due()
    for owner_id in due:
        matcher_train_owner_task.delay(owner_id)
    return len(due)


@shared_task(name="documents.tasks.matcher_train_owner_task", acks_late=True, ignore_result=True)
def matcher_train_owner_task(owner_id: int) -> int:
    """Train one owner's matcher (seconds, CPU-bound); idempotent, the newest training wins.
    Returns the documents it learnt from (0 below MATCHING_MIN_DOCUMENTS)."""
    stored = matcher_train_owner(owner_id=owner_id)
    return stored.documents_trained if stored else 0


@worker_ready.connect
def resume_abandoned_steps(sender: Any = None, **_: Any) -> None:
    """When a worker starts, requeue the steps its previous incarnation died in.

    A worker killed outright (out of memory, SIGKILL, a node lost) cannot acknowledge or
    record anything; the broker may hold the message back for hours. Its successor, under
    the same node name, knows that whatever is claimed under that name is abandoned, at
    once; under any name, it takes whatever claim has run out (as the watchdog does).
    """
    worker_name = getattr(sender, "hostname", "") or ""
    if not worker_name:
        return
    try:
        due = pipeline_resume_abandoned(worker_name=worker_name)
    except DatabaseError:
        logger.exception("could not look for steps abandoned by %s", worker_name)
        return
    for document_id, step_name in due:
        logger.warning("resuming %s of document %s after a worker restart", step_name, document_id)
        pipeline_enqueue(document_id=document_id, step_name=step_name, task_id=str(uuid.uuid4()))
    try:
        # And what any worker left whose claim has run out: a worker that comes back under
        # another name (a new pod, another host) finds its predecessor's work here.
        steps_resume_expired_enqueue()
    except DatabaseError:
        logger.exception("could not look for steps whose claim ran out")
