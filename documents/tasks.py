"""Celery tasks of the document pipeline: thin wrappers around the runner and services."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from documents.pipeline.runner import pipeline_step_run
from documents.services import pipeline_enqueue

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
    self: Task[Any, Any], document_id: int, step_name: str, force_ocr: bool = False
) -> str:
    """Run one step of one document, then hand the next step to the queue.

    One task per step, so a crash loses at most one step's work, each step is visible
    and retried on its own, and a long OCR never blocks the queue for the short steps.
    """
    run = pipeline_step_run(
        document_id=document_id, step_name=step_name, task_id=self.request.id or "", force_ocr=force_ocr
    )
    if run.outcome == "retry" and run.retry_in is not None:
        raise self.retry(countdown=run.retry_in)
    if run.next_step is not None:
        pipeline_enqueue(
            document_id=document_id, step_name=run.next_step, task_id=str(uuid.uuid4()), force_ocr=force_ocr
        )
    return run.outcome
