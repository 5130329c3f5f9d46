"""Celery tasks of the deliveries: thin wrappers around destinations.services."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django.db import DatabaseError

from destinations.health import destinations_check_credentials
from destinations.services import (
    DELIVERY_SOFT_TIME_LIMIT,
    DELIVERY_TIME_LIMIT,
    DeliveryOutcome,
    deliveries_resume_abandoned,
    deliveries_resume_expired,
    delivery_enqueue,
    delivery_run,
    system_destinations_sync,
)

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="destinations.tasks.delivery_run_task",
    acks_late=True,
    ignore_result=True,
    max_retries=None,  # the service counts attempts per delivery and decides
    soft_time_limit=DELIVERY_SOFT_TIME_LIMIT,
    time_limit=DELIVERY_TIME_LIMIT,
)
def delivery_run_task(self: Task[Any, Any], delivery_id: int) -> str:
    """Deliver one document to one destination.

    A task per delivery, so each destination is retried on its own and a slow or broken
    one holds up nothing else. Idempotent: a message delivered twice, or one for a
    delivery already delivered, finds nothing to do (``delivery_run``).
    """
    run = delivery_run(
        delivery_id=delivery_id, task_id=self.request.id or "", worker_name=self.request.hostname or ""
    )
    if run.again:
        delivery_enqueue(delivery_id=delivery_id)
    if run.outcome == DeliveryOutcome.RETRY and run.retry_in is not None:
        raise self.retry(countdown=run.retry_in)
    return run.outcome.value


@shared_task(
    name="destinations.tasks.destinations_check_credentials_task",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=3,
)
def destinations_check_credentials_task() -> dict[str, int]:
    """Check that every enabled destination still signs in and can write; beat sends it
    every 15 minutes (``check-credentials``), so broken credentials show before documents
    wait behind them.

    A task, not a step of each delivery: it runs when no document comes, too. Idempotent
    (each run records the destinations' health as found); no check holds up another
    (``destinations.health``).
    """
    outcomes = destinations_check_credentials()
    failing = sum(not outcome.healthy for outcome in outcomes)
    return {"checked": len(outcomes), "failing": failing}


@worker_ready.connect
def resume_abandoned_deliveries(sender: Any = None, **_: Any) -> None:
    """When a worker starts: bring the environment's destinations up to date (so pages
    show them before the first document), and queue again the deliveries its previous
    incarnation died in (see ``documents.tasks.resume_abandoned_steps``)."""
    worker_name = getattr(sender, "hostname", "") or ""
    try:
        system_destinations_sync()
        if worker_name:
            for delivery_id in deliveries_resume_abandoned(worker_name=worker_name):
                logger.warning("resuming delivery %s after a worker restart", delivery_id)
        # Under any name: what a worker that died left, once its claim has run out.
        for delivery_id in deliveries_resume_expired():
            logger.warning("resuming delivery %s: its worker's claim ran out", delivery_id)
    except DatabaseError:
        logger.exception("could not look for deliveries abandoned by %s", worker_name)
