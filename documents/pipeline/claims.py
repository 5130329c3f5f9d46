"""Claims that run out unless the worker holding them renews them.

A run of a pipeline step or of a delivery claims its row: ``claimed_by`` says who
("<worker node> <pid> <run>"), ``claim_expires_at`` until when. While the run goes on, a
thread in its process pushes ``claim_expires_at`` forward every sixth of
WORKER_CLAIM_TIMEOUT (``claim_kept``). A worker killed outright (SIGKILL, out of memory, its
pod or host gone) renews nothing, so its claims run out within WORKER_CLAIM_TIMEOUT,
whatever name the worker comes back with, or if it never comes back; the watchdog (every
minute) and every worker start then give the work to a new run
(``runner.pipeline_resume_expired``, ``deliveries_resume_expired``).

A thread rather than the task's own progress: the long steps wait for a program (ocrmypdf,
LibreOffice, an upload), during which the task's own code does not run but a thread does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.models import QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

# Renewals per WORKER_CLAIM_TIMEOUT: a run survives five missed ones (a database blip, a
# long stretch of Python holding the interpreter) before its claim runs out.
RENEWALS_PER_TIMEOUT = 6


def claim_expiry(now: datetime | None = None) -> datetime:
    """When a claim taken or renewed now runs out."""
    return (now or timezone.now()) + timedelta(seconds=settings.WORKER_CLAIM_TIMEOUT)


def claim_holder_gone(previous: str, mine: str) -> bool:
    """Whether the run that holds the claim ``previous`` is certainly gone: on the same node
    as ours (``mine``), in another process, and that process no longer exists (a worker
    process killed, whose message came back). Anything less certain waits for the claim to
    run out."""
    try:
        node, pid_text, _run = previous.rsplit(" ", 2)
        my_node, my_pid, _mine = mine.rsplit(" ", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if node != my_node or pid_text == my_pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # a process of another user has that pid now: alive, as far as we know
    return False


class ClaimRenewal(threading.Thread):
    """Renews the claim on the rows of ``claimed`` (a queryset that names the row only while
    this run holds it: its pk, in progress, its ``claimed_by``) until stopped. ``lost`` says
    a renewal found the claim gone: another run has the work now."""

    def __init__(self, claimed: QuerySet[Any], interval: float) -> None:
        super().__init__(name="claim-renewal", daemon=True)
        self.claimed = claimed
        self.interval = interval
        self.lost = False
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    renewed = self.claimed.update(claim_expires_at=claim_expiry())
                except DatabaseError:
                    # The next renewal may get through; a claim survives several missed ones.
                    logger.warning("could not renew a claim", exc_info=True)
                    continue
                if not renewed:
                    self.lost = True
                    return
        finally:
            connections.close_all()  # this thread's own connections

    def stop(self) -> None:
        self._stopped.set()
        self.join()


@contextmanager
def claim_kept(claimed: QuerySet[Any]) -> Iterator[ClaimRenewal | None]:
    """Keep the claim on ``claimed`` alive while the block runs.

    Yields None, renewing nothing, inside a transaction the caller has not committed: the
    claim is invisible to other connections until then, and a renewal from one would wait
    for the caller's lock. Such a run (``--sync`` in a caller's transaction, a test) is
    nobody else's to take over anyway.
    """
    if connection.in_atomic_block:
        yield None
        return
    renewal = ClaimRenewal(claimed, settings.WORKER_CLAIM_TIMEOUT / RENEWALS_PER_TIMEOUT)
    renewal.start()
    try:
        yield renewal
    finally:
        renewal.stop()
