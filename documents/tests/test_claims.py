"""Claims that run out unless their run renews them (documents.pipeline.claims)."""

from __future__ import annotations

import pytest
from django.db import transaction

from conftest import wait_until
from documents.models import ProcessingStep, StepStatus
from documents.pipeline.base import StepContext, StepResult
from documents.pipeline.claims import claim_kept
from documents.pipeline.runner import Outcome, pipeline_step_run
from documents.pipeline.steps import PIPELINE, STEP_NAMES


@pytest.mark.usefixtures("transactional_db")  # the renewal thread writes through its own connection
def test_a_running_step_keeps_its_claim_alive_and_a_run_that_lost_it_records_nothing(
    ingest, trivial, settings, monkeypatch
):
    settings.WORKER_CLAIM_TIMEOUT = 3  # renewed every half second
    document = ingest(trivial)
    first = STEP_NAMES[0]
    step = ProcessingStep.objects.filter(document=document, name=first)

    def slow_step(context: StepContext) -> StepResult:
        first_expiry = step.get().claim_expires_at
        assert first_expiry is not None
        wait_until(
            lambda: (step.get().claim_expires_at or first_expiry) > first_expiry, timeout=10, what="a renewal"
        )
        # Its worker was taken for dead meanwhile, and another run has the step now.
        step.update(claimed_by="celery@pod-b 1 other-run")
        return StepResult(message="done by a run that no longer counts")

    monkeypatch.setattr(PIPELINE[0], "run", slow_step)

    run = pipeline_step_run(document_id=document.pk, step_name=first, worker_name="celery@pod-a")

    assert run.outcome == Outcome.NOOP
    assert run.next_step is None
    row = step.get()
    assert (row.status, row.claimed_by) == (StepStatus.IN_PROGRESS, "celery@pod-b 1 other-run")
    assert not document.logs.filter(message="done by a run that no longer counts").exists()


@pytest.mark.django_db
def test_a_claim_taken_in_a_transaction_not_yet_committed_is_not_renewed_from_another_connection(
    ingest, trivial
):
    document = ingest(trivial)
    with transaction.atomic(), claim_kept(ProcessingStep.objects.filter(document=document)) as renewal:
        assert renewal is None  # it would wait for this transaction's lock
