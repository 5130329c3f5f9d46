"""Every change of a Delivery's state, each with its processing-log entry.

The delivery service, the task, the worker-start resume and the watchdog move Delivery
rows through these functions only:

- ``deliveries_request``: a document is to be delivered (again) to some destinations;
- ``delivery_claim``: a run takes a delivery, with a conditional UPDATE, so two runs (a
  message delivered twice, a retry beside a redeliver) can never both have it;
- ``delivery_record``: a run ends; recorded only while the run still holds its claim;
- ``deliveries_release``: runs whose worker vanished (a claim that ran out, a worker that
  restarted, a run past its time limit) give their delivery back;
- ``DeliveryReceipts``: a run keeps the receipt of an upload its server finishes later.

Log entries go under the destination's ``upload_to_<kind>`` step, its name first. A
destination's health is written here too (``destination_health_record``), by a delivery's
end and by the credentials check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from destinations.kinds.base import Uploaded
from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from documents.models import Document, FailureKind, LogStatus
from documents.pipeline.claims import claim_expiry, claim_holder_gone
from documents.pipeline.runner import claim_token
from documents.pipeline.state import log_event

# What a delivery's end is called in the processing log (a step's words, which clients read).
LOG_STATUS = {
    DeliveryStatus.PENDING: LogStatus.PENDING,
    DeliveryStatus.IN_PROGRESS: LogStatus.IN_PROGRESS,
    DeliveryStatus.DELIVERED: LogStatus.SUCCESS,
    DeliveryStatus.FAILED: LogStatus.FAILURE,
    DeliveryStatus.SKIPPED: LogStatus.SKIPPED,
}
FINISHED = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


def delivery_log(
    delivery: Delivery, status: DeliveryStatus, message: str, task_id: str = "", *, kind: str = ""
) -> None:
    destination = delivery.destination
    log_event(
        delivery.document_id,
        destination.log_step,
        LOG_STATUS[status],
        f"{destination.name}: {message}",
        task_id,
        kind=kind,
    )


@transaction.atomic
def deliveries_request(*, document: Document, destinations: Iterable[Destination]) -> list[int]:
    """Ask for ``document`` to be delivered to each of ``destinations``; the ids to run.

    A new delivery starts pending. A finished one (delivered, failed, skipped) is pending
    again with a fresh attempts budget: new content, or a person asking, deserves a full
    set of retries. One in progress is left to its run, which sees the newer
    ``requested_at`` when it ends and goes round once more; pending ones just wait.
    """
    now = timezone.now()
    due = []
    for destination in destinations:
        delivery, created = Delivery.objects.select_for_update().get_or_create(
            document=document, destination=destination, defaults={"requested_at": now}
        )
        delivery.destination = destination
        if not created:
            changes: dict[str, object] = {"requested_at": now, "updated_at": now}
            if delivery.status in FINISHED:
                changes.update(status=DeliveryStatus.PENDING, attempts=0, error="", error_kind="")
            Delivery.objects.filter(pk=delivery.pk).update(**changes)
            if delivery.status == DeliveryStatus.IN_PROGRESS:
                delivery_log(delivery, DeliveryStatus.PENDING, "Asked again; after the delivery in progress.")
                continue
        delivery_log(delivery, DeliveryStatus.PENDING, "Waiting to be delivered.")
        due.append(delivery.pk)
    return due


def delivery_claim(*, delivery_id: int, task_id: str, worker_name: str = "") -> Delivery | None:
    """Take the delivery for a run: in progress, one more attempt. None when there is
    nothing to run: it is gone, finished, or in progress in a run that is still alive.

    A delivery in progress is taken over only when its run's claim ran out (its worker
    stopped renewing it, ``documents.pipeline.claims``) or its run was on this very
    worker node in a process that no longer exists (a worker process killed mid-upload,
    whose message came back): the upload it left is finished or absent, never half (see
    ``destinations.kinds.base``), and the check before writing sees which.
    """
    current = (
        Delivery.objects.filter(pk=delivery_id)
        .values_list("status", "claimed_by", "claim_expires_at")
        .first()
    )
    if current is None:
        return None
    status, previous_claim, previous_expiry = current
    now = timezone.now()
    claim = claim_token(worker_name)
    changes = {
        "status": DeliveryStatus.IN_PROGRESS,
        "attempts": F("attempts") + 1,
        "claimed_by": claim,
        "claim_expires_at": claim_expiry(now),
        "task_id": task_id,
        "started_at": now,
        "finished_at": None,
        "error": "",
        "error_kind": "",
        "updated_at": now,
    }
    taken_over = False
    if status == DeliveryStatus.PENDING:
        taken = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(**changes)
    elif status == DeliveryStatus.IN_PROGRESS and (
        (previous_expiry is not None and previous_expiry <= now) or claim_holder_gone(previous_claim, claim)
    ):
        taken = Delivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.IN_PROGRESS, claimed_by=previous_claim
        ).update(**changes)
        taken_over = True
    else:
        return None
    if not taken:
        return None  # another run was quicker
    delivery = Delivery.objects.select_related("destination", "document", "document__owner").get(
        pk=delivery_id
    )
    if taken_over:
        delivery_log(
            delivery,
            DeliveryStatus.PENDING,
            "The worker stopped during the delivery; delivering again.",
            task_id,
            kind=FailureKind.WORKER_LOST,
        )
    delivery_log(delivery, DeliveryStatus.IN_PROGRESS, f"Attempt {delivery.attempts}", task_id)
    return delivery


@transaction.atomic
def delivery_record(
    *,
    delivery: Delivery,
    status: DeliveryStatus,
    message: str,
    task_id: str,
    kind: FailureKind | None = None,
    uploaded: Uploaded | None = None,
    content_sha256: str = "",
    due_in: int = 0,
) -> bool | None:
    """Record how a run of ``delivery`` (as claimed) ended, and release the claim.

    ``status`` is DELIVERED (with ``uploaded`` and ``content_sha256``), SKIPPED, FAILED,
    or PENDING for a run that will come again (a retry); FAILED and PENDING keep
    ``message`` as the error and need ``kind``. Returns None when the claim was no longer
    this run's (the watchdog gave the delivery to another run, whose record counts);
    otherwise whether the delivery must run again at once, because it was asked for again
    after this run had started. A PENDING delivery is due again in ``due_in`` seconds.
    """
    has_error = status in {DeliveryStatus.FAILED, DeliveryStatus.PENDING}
    if has_error and kind is None:
        raise ValueError(f"a {status} delivery needs the kind of its failure")
    if status == DeliveryStatus.DELIVERED and uploaded is None:
        raise ValueError("a delivered delivery needs where it went")
    current = (
        Delivery.objects.select_for_update()
        .filter(pk=delivery.pk, status=DeliveryStatus.IN_PROGRESS, claimed_by=delivery.claimed_by)
        .first()
    )
    if current is None:
        return None
    now = timezone.now()
    again = current.started_at is not None and current.requested_at > current.started_at
    changes: dict[str, object] = {
        "status": status,
        "finished_at": None if status == DeliveryStatus.PENDING else now,
        "claimed_by": "",
        "claim_expires_at": None,
        "error": message if has_error else "",
        "error_kind": kind if has_error and kind is not None else "",
        "due_at": now + timedelta(seconds=due_in) if status == DeliveryStatus.PENDING else None,
        "updated_at": now,
    }
    if status == DeliveryStatus.DELIVERED and uploaded is not None:
        changes.update(
            remote_path=uploaded.path,
            remote_id=uploaded.remote_id,
            remote_version=uploaded.remote_version,
            content_sha256=content_sha256,
            delivered_at=now,
        )
    if again:
        # This run delivered what was current when it began; the newer request runs afresh.
        changes.update(status=DeliveryStatus.PENDING, attempts=0, finished_at=None, due_at=now)
    Delivery.objects.filter(pk=delivery.pk).update(**changes)
    delivery_log(delivery, status, message, task_id, kind=kind if has_error and kind is not None else "")
    _destination_health(delivery.destination, status=status, message=message, kind=kind)
    return again


# Failures of a delivery that say the destination itself does not work (not this file):
# its configuration is refused, or it stayed unreachable through every retry.
DESTINATION_FAULTS = frozenset({FailureKind.CONFIGURATION, FailureKind.TEMPORARY})


def _destination_health(
    destination: Destination, *, status: DeliveryStatus, message: str, kind: FailureKind | None
) -> None:
    """A delivery tells whether its destination works: a wrong configuration, or a server
    unreachable through all the retries, marks it failing (every other delivery there would
    fail too); a delivery marks it ok. A file the destination refuses says nothing about it."""
    if status == DeliveryStatus.FAILED and kind in DESTINATION_FAULTS:
        destination_health_record(destination_id=destination.pk, healthy=False, message=message, kind=kind)
    elif status == DeliveryStatus.DELIVERED:
        # Written only when it changes: a busy destination costs no write per delivery.
        destination_health_record(destination_id=destination.pk, healthy=True, only_if_changed=True)


def destination_health_record(
    *,
    destination_id: int,
    healthy: bool,
    message: str = "",
    kind: FailureKind | None = None,
    only_if_changed: bool = False,
) -> None:
    """Record whether a destination works, from a delivery or the credentials check
    (``destinations.health``): ok, or failing with the reason and its kind.
    ``only_if_changed`` leaves a destination that is ok already as it is, time and all."""
    if not healthy and kind is None:
        raise ValueError("a failing destination needs the kind of its failure")
    rows = Destination.objects.filter(pk=destination_id)
    if healthy and only_if_changed:
        rows = rows.exclude(health_status=HealthStatus.OK)
    rows.update(
        health_status=HealthStatus.OK if healthy else HealthStatus.FAILING,
        health_checked_at=timezone.now(),
        health_error="" if healthy else message,
        health_error_kind="" if healthy or kind is None else kind,
    )


@dataclass
class DeliveryReceipts:
    """The receipt book (``destinations.kinds.base.ReceiptBook``) of one run of ``delivery``.

    A receipt lives in ``remote_version``, which a delivered run overwrites with the
    version delivered: the kind tells its receipts from versions. It is written at once
    (the run waits on the server after it) and only under the run's claim, so a run that
    lost its delivery to another cannot write over that one's receipt.
    """

    delivery: Delivery

    def receipt(self) -> str:
        return self.delivery.remote_version

    def keep(self, receipt: str) -> None:
        Delivery.objects.filter(
            pk=self.delivery.pk, status=DeliveryStatus.IN_PROGRESS, claimed_by=self.delivery.claimed_by
        ).update(remote_version=receipt, updated_at=timezone.now())
        self.delivery.remote_version = receipt


def deliveries_release(*, abandoned: QuerySet[Delivery], message: str) -> list[int]:
    """Give back deliveries whose run vanished (its worker died): pending again with the
    kind WORKER_LOST, or failed once they have used up their attempts, so a file that kills
    its worker cannot loop forever. Returns the ids to run again."""
    due = []
    for delivery in abandoned.select_related("destination"):
        repeatedly = delivery.attempts > settings.TASK_RETRY_MAX_RETRIES
        status = DeliveryStatus.FAILED if repeatedly else DeliveryStatus.PENDING
        kind = FailureKind.WORKER_LOST_REPEATEDLY if repeatedly else FailureKind.WORKER_LOST
        text = "The worker stopped during the delivery too often." if repeatedly else message
        again = delivery_record(delivery=delivery, status=status, message=text, task_id="", kind=kind)
        if again is None:
            continue  # its run ended meanwhile after all
        if again or not repeatedly:
            due.append(delivery.pk)
    return due


def in_progress_since(cutoff: datetime) -> QuerySet[Delivery]:
    return Delivery.objects.filter(status=DeliveryStatus.IN_PROGRESS, started_at__lt=cutoff)


def deliveries_overdue(now: datetime) -> QuerySet[Delivery]:
    """Pending deliveries due longer ago than a worker would take to pick them up: their
    message never reached one (sent while the broker was away, or lost with its queue)."""
    cutoff = now - timedelta(seconds=settings.WORKER_CLAIM_TIMEOUT)
    return Delivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lt=cutoff).order_by("due_at")


def claims_expired(now: datetime) -> QuerySet[Delivery]:
    """Deliveries in progress whose run stopped renewing its claim (its worker is gone)."""
    return Delivery.objects.filter(status=DeliveryStatus.IN_PROGRESS, claim_expires_at__lt=now)


def claim_held(delivery: Delivery) -> QuerySet[Delivery]:
    """The delivery's row while this run holds it: what a renewal of its claim updates."""
    return Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.IN_PROGRESS, claimed_by=delivery.claimed_by
    )
