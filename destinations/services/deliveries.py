"""Writes of deliveries: documents delivered exactly once.

After processing, ``deliveries_schedule`` makes one Delivery per enabled destination that
applies to the document (the system-wide ones and the owner's own) and queues each on its
own once the transaction commits: one destination's trouble never holds up or fails
another, nor the document. ``delivery_run`` delivers one of them:

1. claim it with a conditional update (``destinations.state``): a message delivered
   twice, or a delivery already delivered, finds nothing to do;
2. work out the remote path from the destination's folder and template;
3. check before writing: the same content already there counts as delivered, with
   nothing uploaded, which is what makes a run after a crash (upload done, record not)
   harmless;
4. upload (atomically: see ``destinations.kinds.base``), the collision policy deciding
   about somebody else's file under the name;
5. remove the copy an earlier delivery left under an older name (new metadata, new name);
6. record the outcome, still under the claim.

Temporary failures are retried after TASK_RETRY_DELAYS (with jitter) up to
TASK_RETRY_MAX_RETRIES times; permanent and configuration failures end at once with a
readable reason. A run killed outright leaves its delivery in progress, its claim no
longer renewed; the next worker start on that node, a redelivered message there, or, once
the claim has run out (WORKER_CLAIM_TIMEOUT), the watchdog or any worker start gives it
back.

Steps 2 to 5 are ``destinations.services.placement``; this module claims, records and
decides about retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from destinations.kinds.base import DeliveryFailed, DeliveryTemporarilyFailed
from destinations.models import Delivery, DeliveryStatus
from destinations.selectors import destinations_for_document
from destinations.services.destinations import system_destinations_sync
from destinations.services.placement import delivery_place
from destinations.state import (
    claim_held,
    claims_expired,
    deliveries_overdue,
    deliveries_release,
    deliveries_request,
    delivery_claim,
    delivery_record,
    in_progress_since,
)
from docuelevate.errors import Conflict, NotFound
from documents.models import Document, DocumentStatus, FailureKind
from documents.pipeline.claims import claim_kept
from documents.pipeline.runner import retry_delay

logger = logging.getLogger(__name__)

# A delivery's hard time limit: a 1 GiB file at a slow 2.5 Mbit/s. Past it (and a grace),
# a delivery still in progress has lost its worker.
DELIVERY_TIME_LIMIT = 3600
DELIVERY_SOFT_TIME_LIMIT = DELIVERY_TIME_LIMIT - 60
DELIVERY_STALE_GRACE_SECONDS = 120
# A request that came in during the run makes the run go round again; with --sync, at most so often.
SYNC_ROUNDS = 3


class DeliveryOutcome(StrEnum):
    """How one run of a delivery ended, for the caller deciding what to do next."""

    DELIVERED = "delivered"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"  # a temporary failure; run again in retry_in seconds
    NOOP = "noop"  # nothing to do: finished already, or another run has it


@dataclass(frozen=True)
class DeliveryRun:
    outcome: DeliveryOutcome
    retry_in: int | None = None
    message: str = ""
    # Asked for again while this run was going: run it again now (its new content may differ).
    again: bool = False


def deliveries_schedule(*, document_id: int, enqueue: bool = True) -> list[int]:
    """Deliver a processed document to every enabled destination that applies to it: the
    system-wide ones and its owner's own. Returns the deliveries due.

    Called explicitly once processing has finished (the pipeline task, ``pipeline_run_sync``)
    and by a redeliver. Each delivery is queued on its own after the transaction commits;
    ``enqueue=False`` leaves running them to the caller (``--sync``).
    """
    system_destinations_sync()
    document = Document.objects.select_related("owner").get(pk=document_id)
    if document.status != DocumentStatus.COMPLETED:
        return []
    due = deliveries_request(document=document, destinations=destinations_for_document(document))
    if enqueue:
        for delivery_id in due:
            delivery_enqueue(delivery_id=delivery_id)
    return due


def deliveries_redeliver(*, document: Document, destination_id: int | None = None) -> list[int]:
    """Deliver ``document`` again, now: to every enabled destination it goes to, or to the
    one ``destination_id`` names. Returns the deliveries queued.

    Finished deliveries (delivered, failed, skipped) start over with a fresh set of
    attempts; one in progress goes round once more when it ends (``deliveries_request``).
    A delivered file whose content is still the same there costs one look and no upload.
    The caller has checked that the person may see ``document`` (``document_get_for_user``).
    Conflict for a document whose processing has not finished; NotFound for a destination
    it does not go to.
    """
    if document.status != DocumentStatus.COMPLETED:
        raise Conflict(
            "Only a processed document can be delivered; it goes out once its processing has finished."
        )
    destinations = destinations_for_document(document)
    if destination_id is not None:
        destinations = destinations.filter(pk=destination_id)
        if not destinations.exists():
            raise NotFound("This document does not go to that destination (or it is disabled).")
    due = deliveries_request(document=document, destinations=destinations)
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


def delivery_enqueue(*, delivery_id: int) -> None:
    """Hand one delivery to the workers once the current transaction (if any) has committed.

    The delivery is due from now (``Delivery.due_at``). A broker that does not take the
    message (Redis away) fails nothing: the delivery stays pending, and once it is overdue
    the watchdog sends it again (``deliveries_resend_overdue``).
    """
    from destinations.tasks import delivery_run_task

    Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(due_at=timezone.now())

    def send() -> None:
        try:
            delivery_run_task.delay(delivery_id)
        except BrokerUnavailable:
            logger.warning(
                "the broker did not take delivery %s; the watchdog sends it again", delivery_id, exc_info=True
            )

    transaction.on_commit(send)


def delivery_run(
    *, delivery_id: int, task_id: str = "", worker_name: str = "", retries_allowed: bool = True
) -> DeliveryRun:
    """Deliver one document to one destination, unless that is done or under way (a no-op).

    Whatever goes wrong is recorded on the delivery (reason and kind) and in the
    document's log, never raised: the document and its other deliveries are not affected.
    """
    delivery = delivery_claim(delivery_id=delivery_id, task_id=task_id, worker_name=worker_name)
    if delivery is None:
        return DeliveryRun(DeliveryOutcome.NOOP)
    name = delivery.destination.name
    try:
        with claim_kept(claim_held(delivery)):
            placed, sha256 = delivery_place(delivery=delivery)
    except DeliveryTemporarilyFailed as exc:
        if retries_allowed and delivery.attempts <= settings.TASK_RETRY_MAX_RETRIES:
            delay = retry_delay(delivery.attempts)
            again = delivery_record(
                delivery=delivery,
                status=DeliveryStatus.PENDING,
                message=f"{exc.message} Retrying in {delay} s.",
                task_id=task_id,
                kind=exc.kind,
                due_in=delay,
            )
            return DeliveryRun(DeliveryOutcome.RETRY, retry_in=delay, message=exc.message, again=bool(again))
        return _failed(delivery, exc.message, exc.kind, task_id)
    except DeliveryFailed as exc:
        return _failed(delivery, exc.message, exc.kind, task_id)
    except SoftTimeLimitExceeded:
        message = f"The delivery to {name} did not finish within {DELIVERY_SOFT_TIME_LIMIT} seconds."
        return _failed(delivery, message, FailureKind.TIMEOUT, task_id)
    except Exception as exc:
        # A bug or an unforeseen answer: this delivery fails visibly, the worker carries on.
        logger.exception("delivery %s to destination %s crashed", delivery_id, delivery.destination_id)
        message = f"Internal error while delivering to {name} ({exc.__class__.__name__}); see the server log."
        return _failed(delivery, message, FailureKind.INTERNAL_ERROR, task_id)
    again = delivery_record(
        delivery=delivery,
        status=placed.status,
        message=placed.message,
        task_id=task_id,
        uploaded=placed.uploaded,
        content_sha256=sha256,
    )
    return DeliveryRun(DeliveryOutcome(placed.status.value), message=placed.message, again=bool(again))


def _failed(delivery: Delivery, message: str, kind: FailureKind, task_id: str) -> DeliveryRun:
    again = delivery_record(
        delivery=delivery, status=DeliveryStatus.FAILED, message=message, task_id=task_id, kind=kind
    )
    return DeliveryRun(DeliveryOutcome.FAILED, message=message, again=bool(again))


def deliveries_run_sync(*, document_id: int) -> list[Delivery]:
    """Deliver a processed document in this process, one destination after another
    (``ingest --sync``, ``reprocess --sync``); a temporary failure fails at once."""
    due = deliveries_schedule(document_id=document_id, enqueue=False)
    for delivery_id in due:
        for _round in range(SYNC_ROUNDS):
            if not delivery_run(delivery_id=delivery_id, retries_allowed=False).again:
                break
    return list(Delivery.objects.filter(pk__in=due).select_related("destination"))


def deliveries_resume_abandoned(*, worker_name: str) -> list[int]:
    """Deliveries a worker of this name left in progress when it died; due again now.

    Called when the worker starts, before it takes any task, so whatever is claimed under
    its name belongs to its previous, dead incarnation. Queues them; returns their ids.
    """
    abandoned = Delivery.objects.filter(
        status=DeliveryStatus.IN_PROGRESS, claimed_by__startswith=f"{worker_name} "
    )
    due = deliveries_release(
        abandoned=abandoned, message="The worker stopped during the delivery; delivering again."
    )
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


def deliveries_resume_stale(*, now: datetime | None = None) -> list[int]:
    """Send again the deliveries in progress for longer than any run may take (their worker
    vanished without a word), and return their ids. Run every minute by the watchdog."""
    cutoff = (now or timezone.now()) - timedelta(seconds=DELIVERY_TIME_LIMIT + DELIVERY_STALE_GRACE_SECONDS)
    due = deliveries_release(
        abandoned=in_progress_since(cutoff),
        message=f"The delivery did not finish within {DELIVERY_TIME_LIMIT} seconds; delivering again.",
    )
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


# At most this many lost deliveries are sent again by one watchdog run; the rest by the next.
RESEND_BATCH = 500


def deliveries_resend_overdue(*, now: datetime | None = None) -> list[int]:
    """Send again the pending deliveries whose message never reached a worker (sent while
    the broker was away, or lost with a broker restarted without its queue), and return
    their ids. The caller (the watchdog) calls this only while the queue the deliveries go
    through is empty, so an overdue one cannot be waiting behind a backlog; a message sent
    twice is harmless (the second run finds the delivery claimed or done)."""
    due = list(deliveries_overdue(now or timezone.now()).values_list("pk", flat=True)[:RESEND_BATCH])
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


def deliveries_resume_expired(*, now: datetime | None = None) -> list[int]:
    """Send again the deliveries whose run stopped renewing its claim (its worker died,
    whatever name it comes back with), and return their ids. Run every minute by the
    watchdog and at every worker start."""
    due = deliveries_release(
        abandoned=claims_expired(now or timezone.now()),
        message="The worker stopped renewing its claim on the delivery; delivering again.",
    )
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due
