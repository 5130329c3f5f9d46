"""Whether destinations work: the periodic credentials check, and its record.

Deliveries record their destination's health as they end (``destinations.state``), but
only once a document comes. ``destinations_check_credentials`` (beat's
``check-credentials`` entry) asks every enabled destination's kind to sign in and prove it
can write (``Kind.check``, which leaves no file behind) and records the answer, so a
destination whose password was changed or whose bucket went away shows as failing on
/status, /api/health and the destinations page before documents pile up behind it.

Each check runs in a thread of its own, a few at a time, and is waited for at most
DESTINATION_CHECK_TIMEOUT seconds: a server that takes the connection and never answers
costs its own destination a ``timeout`` and nobody else anything. Python cannot stop such
a thread; it ends when the kind's own socket timeouts do. Until then the next run does not
start another check of that destination, so a hung server never holds more than one
thread of a worker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from django.conf import settings

from destinations.kinds import kind_for
from destinations.kinds.base import DeliveryFailed
from destinations.models import Destination
from destinations.services import system_destinations_sync
from destinations.state import destination_health_record
from documents.models import FailureKind

logger = logging.getLogger(__name__)

# Checks in flight at once: they wait on the network, not the CPU, but each holds a client.
CHECK_CONCURRENCY = 4
# How long a person's Test waits: gunicorn gives up on a request (and its worker) after 30 s.
TEST_WAIT_SECONDS = 20


@dataclass(frozen=True)
class CheckOutcome:
    """One destination's answer: it works, or the readable reason and its failure kind."""

    destination_id: int
    healthy: bool
    message: str = ""
    kind: FailureKind | None = None


def destination_check(*, destination: Destination) -> CheckOutcome:
    """Ask ``destination`` whether it works, recording nothing: connect, sign in, write a
    test file in its folder and remove it (``Kind.check``). Never raises; touches no
    database, so it may run in any thread."""
    try:
        with kind_for(destination) as kind:
            kind.check(folder=str(destination.settings.get("folder", "")))
    except DeliveryFailed as exc:
        return CheckOutcome(destination.pk, healthy=False, message=exc.message, kind=exc.kind)
    except Exception as exc:
        # A bug or an unforeseen answer: the destination is reported, the run goes on.
        logger.exception("the check of destination %s crashed", destination.pk)
        message = (
            f"Internal error while checking {destination.name} ({exc.__class__.__name__}); "
            "see the server log."
        )
        return CheckOutcome(destination.pk, healthy=False, message=message, kind=FailureKind.INTERNAL_ERROR)
    return CheckOutcome(destination.pk, healthy=True)


# Destination id -> the thread still checking it in this process (one that outlived its wait).
_checking: dict[int, threading.Thread] = {}
_checking_lock = threading.Lock()


def _start(destination: Destination, answers: queue.Queue[CheckOutcome]) -> bool:
    """Start checking ``destination`` in a thread of its own; False while an earlier check
    of it is still running."""

    def run() -> None:
        try:
            answers.put(destination_check(destination=destination))
        finally:
            with _checking_lock:
                if _checking.get(destination.pk) is threading.current_thread():
                    del _checking[destination.pk]

    with _checking_lock:
        earlier = _checking.get(destination.pk)
        if earlier is not None and earlier.is_alive():
            return False
        # A daemon: a check hung on a dead server must not keep the worker from stopping.
        thread = threading.Thread(target=run, name=f"destination-check-{destination.pk}", daemon=True)
        _checking[destination.pk] = thread
    thread.start()
    return True


def _record(destination: Destination, outcome: CheckOutcome) -> None:
    destination_health_record(
        destination_id=outcome.destination_id,
        healthy=outcome.healthy,
        message=outcome.message,
        kind=outcome.kind,
    )
    if not outcome.healthy:
        logger.warning(
            "destination %s (%s, %s) fails its check: %s",
            destination.pk,
            destination.name,
            destination.kind,
            outcome.message,
        )


def destination_test(*, destination: Destination) -> CheckOutcome:
    """Check ``destination`` now for a person waiting on the answer (the Test button,
    ``POST /api/destinations/{id}/test``) and record its health, as the periodic check does.

    Waited for at most TEST_WAIT_SECONDS (or DESTINATION_CHECK_TIMEOUT, if shorter): the
    request must end before the web server gives up on it. A check of the destination still
    running from before is not doubled; it is reported as not answering.
    """
    timeout = min(TEST_WAIT_SECONDS, settings.DESTINATION_CHECK_TIMEOUT)
    answers: queue.Queue[CheckOutcome] = queue.Queue()
    if not _start(destination, answers):
        message = f"{destination.name} has not answered the previous check yet."
        outcome = CheckOutcome(destination.pk, False, message, FailureKind.TIMEOUT)
    else:
        try:
            outcome = answers.get(timeout=timeout)
        except queue.Empty:
            message = f"{destination.name} did not answer the check within {timeout} seconds."
            outcome = CheckOutcome(destination.pk, False, message, FailureKind.TIMEOUT)
    _record(destination, outcome)
    if outcome.healthy and not outcome.message:
        folder = str(destination.settings.get("folder", ""))
        where = f"in {folder}" if folder else "at the top"
        outcome = replace(
            outcome, message=f"{destination.name} works: a test file was written {where} and removed."
        )
    return outcome


def destinations_check_credentials() -> list[CheckOutcome]:
    """Check every enabled destination and record its health; the outcomes, by destination.

    The environment's destinations are brought up to date first, so a changed variable is
    what gets checked. A destination that does not answer within DESTINATION_CHECK_TIMEOUT
    is recorded failing (``timeout``) while the others go on.
    """
    system_destinations_sync()
    timeout = settings.DESTINATION_CHECK_TIMEOUT
    waiting = deque(Destination.objects.filter(enabled=True).order_by("pk"))
    answers: queue.Queue[CheckOutcome] = queue.Queue()
    running: dict[int, tuple[Destination, float]] = {}  # id -> (destination, deadline)
    outcomes: list[CheckOutcome] = []

    def finish(destination: Destination, outcome: CheckOutcome) -> None:
        _record(destination, outcome)
        outcomes.append(outcome)

    while waiting or running:
        while waiting and len(running) < CHECK_CONCURRENCY:
            destination = waiting.popleft()
            if _start(destination, answers):
                running[destination.pk] = (destination, time.monotonic() + timeout)
            else:
                message = f"{destination.name} has not answered the previous check yet."
                finish(destination, CheckOutcome(destination.pk, False, message, FailureKind.TIMEOUT))
        if not running:
            continue
        next_deadline = min(deadline for _destination, deadline in running.values())
        try:
            outcome = answers.get(timeout=max(0.0, next_deadline - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for destination_id, (destination, deadline) in list(running.items()):
                if deadline <= now:
                    del running[destination_id]
                    message = f"{destination.name} did not answer the check within {timeout} seconds."
                    finish(destination, CheckOutcome(destination_id, False, message, FailureKind.TIMEOUT))
            continue
        # An answer that comes after its wait ended is no longer awaited: dropped.
        if outcome.destination_id in running:
            destination, _deadline = running.pop(outcome.destination_id)
            finish(destination, outcome)
    return sorted(outcomes, key=lambda outcome: outcome.destination_id)
