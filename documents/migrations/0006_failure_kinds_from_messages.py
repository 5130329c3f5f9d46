"""Give the steps and log entries written before 0005 their kind, read once from their words.

This is the one place that reads the wording of messages: the phrases below are the ones
the runner, the services and housekeeping wrote before they recorded kinds. From 0005 on
every failure and reset records its kind as it is written, and decisions read only that.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# The runner: a temporary failure it retried ("<reason> Retrying in <n> s.").
RETRYING = " Retrying in "
# The watchdog: a step in progress for longer than any run may take.
WORKER_VANISHED = "its worker may have stopped"
# The runner's own time limit (an engine's timeout inside a step was a plain, permanent failure).
STEP_TIMEOUT = "seconds (STEP_TIMEOUT)"
# A restarted worker: "... step; running it again." or, when it gave up, "... step too often."
WORKER_STOPPED = "The worker stopped during the "
TOO_OFTEN = " too often."
INTERNAL_ERROR = "Internal error in the "
# The runner's restart when a step's input file was gone.
STARTS_OVER = "processing starts over"
# documents.services.document_retry_step
RETRY_REQUESTED = "Retry requested"

RESETS = ("manual_retry", "reprocess", "retry_sweep")


def _failure_kind(message: str, *, retried: bool) -> str:
    """The kind of a failure from its message; ``retried``: the runner had retried it as temporary."""
    if WORKER_VANISHED in message:
        return "worker_lost"
    if STEP_TIMEOUT in message:
        return "timeout"
    if message.startswith(WORKER_STOPPED) and message.endswith(TOO_OFTEN):
        return "worker_lost_repeatedly"
    if message.startswith(INTERNAL_ERROR):
        return "internal_error"
    # A StepTemporarilyFailed out of retries and a StepFailed wrote the same words; the
    # retries logged before the failure (since the last fresh start) tell them apart.
    return "temporary" if retried else "permanent"


def _retried_before(log: Any, *, document_id: int, step_name: str, before_pk: int | None) -> bool:
    """Whether the runner retried ``step_name`` as temporary since the document's last fresh start."""
    entries = log.objects.filter(document_id=document_id)
    if before_pk is not None:
        entries = entries.filter(pk__lt=before_pk)
    fresh_start = entries.filter(kind__in=RESETS).order_by("-pk").values_list("pk", flat=True).first()
    retries = entries.filter(step_name=step_name, status="pending", kind="temporary")
    if fresh_start is not None:
        retries = retries.filter(pk__gt=fresh_start)
    return bool(retries.exists())


def forwards(apps: Any, schema_editor: Any) -> None:
    log = apps.get_model("documents", "ProcessingLog")
    step = apps.get_model("documents", "ProcessingStep")
    untagged = log.objects.filter(kind="")

    # Resets first: the failures' kinds below depend on where the last fresh start was.
    untagged.filter(step_name="reprocess").update(kind="reprocess")
    for sweep in log.objects.filter(step_name="retry_sweep").order_by("pk").iterator():
        # The sweep retried through the services, whose "Retry requested" came just before its mark.
        previous = log.objects.filter(document_id=sweep.document_id, pk__lt=sweep.pk).order_by("-pk").first()
        if (
            previous is not None
            and previous.status == "pending"
            and previous.message.startswith(RETRY_REQUESTED)
        ):
            log.objects.filter(pk=previous.pk).update(kind="retry_sweep")
    log.objects.filter(step_name="retry_sweep").update(kind="retry_sweep")
    untagged.filter(status="pending", message__startswith=RETRY_REQUESTED).update(kind="manual_retry")
    untagged.filter(status="pending", message__contains=STARTS_OVER).update(kind="input_missing")
    untagged.filter(status="pending", message__contains=RETRYING).update(kind="temporary")
    untagged.filter(status="pending", message__startswith=WORKER_STOPPED).update(kind="worker_lost")

    for entry in untagged.filter(status="failure").order_by("pk").iterator():
        retried = _retried_before(
            log, document_id=entry.document_id, step_name=entry.step_name, before_pk=entry.pk
        )
        log.objects.filter(pk=entry.pk).update(kind=_failure_kind(entry.message, retried=retried))

    for row in step.objects.exclude(error="").filter(failure_kind="").iterator():
        if row.status == "pending":
            # Waiting for its next run: the runner's retry or a restarted worker's.
            kind = "worker_lost" if row.error.startswith(WORKER_STOPPED) else "temporary"
        else:
            retried = _retried_before(log, document_id=row.document_id, step_name=row.name, before_pk=None)
            kind = _failure_kind(row.error, retried=retried)
        step.objects.filter(pk=row.pk).update(failure_kind=kind)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0005_step_failure_kinds"),
    ]

    # Backwards there is nothing to undo: reversing 0005 drops the kinds.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
