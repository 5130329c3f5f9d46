"""Celery tasks of the sources: thin wrappers around sources.polling."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from sources.polling import source_poll, source_poll_enqueue, sources_due
from sources.services import system_sources_sync


@shared_task(
    bind=True,
    name="sources.tasks.source_poll_task",
    ignore_result=True,
    # A poll that outlives its lease could meet a second poller; the lease is renewed per
    # item, so only one item's work has to fit in it.
    soft_time_limit=settings.SOURCES_POLL_LEASE_SECONDS * 6,
    time_limit=settings.SOURCES_POLL_LEASE_SECONDS * 6 + 60,
)
def source_poll_task(self: Task[Any, Any], source_id: int) -> str:
    """Poll one source: take what is new, exactly once. A message delivered twice, or a
    poll while another runs, finds the source's lease taken and does nothing."""
    return source_poll(source_id=source_id, worker_name=self.request.hostname or "").status.value


@shared_task(name="sources.tasks.sources_poll_due_task", ignore_result=True)
def sources_poll_due_task() -> int:
    """Beat's minute: the environment's sources brought in step, then every source whose
    interval has passed handed to a worker."""
    system_sources_sync()
    due = sources_due()
    for source_id in due:
        source_poll_enqueue(source_id=source_id)
    return len(due)
