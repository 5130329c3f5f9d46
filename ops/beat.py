"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler, a heartbeat, and a lease.

Beat must run exactly once: two beats send every periodic task twice, none sends nothing,
and neither shows in any log. So:

- Each beat process writes a ``BeatHeartbeat`` row named after itself every
  ``HEARTBEAT_INTERVAL`` seconds, and removes it when it stops cleanly, so ``productioncheck``
  and /api/health count the beats alive in the last two minutes.
- Only the holder of the ``BeatLease`` sends anything. A beat takes the lease when it is free
  or expired (a conditional update, on the database's clock so hosts' clocks need not agree),
  renews it every quarter of ``BEAT_LEASE_SECONDS``, and stops sending if it could not renew
  within half of it. A second beat logs that it stands by, sends nothing, and takes over once
  the lease of a beat that died runs out; a beat that stops cleanly hands it over at once.
- The holder records each entry's run in the database before sending it, so a beat that
  takes over reads where the one before stopped and never sends a run again (at most one
  run is lost if the first dies between the two).

Enabled by ``CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"``.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, models, transaction
from django.db.models import ExpressionWrapper, Q
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from ops.models import BeatHeartbeat, BeatLease

logger = logging.getLogger(__name__)

# Well inside the two minutes within which productioncheck expects to have seen a beat.
HEARTBEAT_INTERVAL = 30.0
# Rows of beats that died without cleaning up (a crash, SIGKILL) are removed after this.
FORGET_AFTER = datetime.timedelta(days=1)
LEASE_NAME = "beat"


def beat_identity() -> str:
    """What tells this beat process from any other, on this machine or another."""
    return f"{socket.gethostname()} {os.getpid()}"


def heartbeat_record(*, identity: str, now: datetime.datetime | None = None) -> None:
    """Note that beat ``identity`` is alive now, and forget beats silent for a day."""
    now = now or timezone.now()
    BeatHeartbeat.objects.update_or_create(identity=identity, defaults={"last_seen": now})
    BeatHeartbeat.objects.filter(last_seen__lt=now - FORGET_AFTER).delete()


def _in_seconds(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + datetime.timedelta(seconds=seconds), output_field=models.DateTimeField())


def beat_lease_take(*, identity: str, seconds: float) -> str:
    """Take or renew the lease for ``seconds`` if it is free, expired or already this beat's.

    Returns who holds it now: ``identity`` when this beat may send the periodic tasks.
    """
    free = Q(holder=identity) | Q(holder="") | Q(expires_at__lt=Now())
    if BeatLease.objects.filter(free, name=LEASE_NAME).update(
        holder=identity, expires_at=_in_seconds(seconds)
    ):
        return identity
    try:
        with transaction.atomic():
            BeatLease.objects.create(name=LEASE_NAME, holder=identity, expires_at=_in_seconds(seconds))
        return identity
    except IntegrityError:
        pass  # the row exists and another beat holds it
    holder = BeatLease.objects.filter(name=LEASE_NAME).values_list("holder", flat=True).first()
    return holder or ""


def beat_lease_release(*, identity: str) -> None:
    """Hand the lease over at once (a clean stop), if this beat holds it."""
    BeatLease.objects.filter(name=LEASE_NAME, holder=identity).update(holder="", expires_at=Now())


def beat_lease_holder() -> str:
    """The beat holding an unexpired lease, or "" when none does."""
    holder = (
        BeatLease.objects.filter(name=LEASE_NAME, expires_at__gte=Now())
        .values_list("holder", flat=True)
        .first()
    )
    return holder or ""


class HeartbeatScheduler(DatabaseScheduler):  # type: ignore[misc]  # django-celery-beat ships no types
    """DatabaseScheduler that writes this process's heartbeat, and sends only while it holds
    the beat lease (the module docstring says why)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.identity = beat_identity()
        self.lease_seconds = float(settings.BEAT_LEASE_SECONDS)
        self._last_heartbeat: float | None = None
        self._leading = False
        self._renewed_at: float | None = None  # monotonic time of the last renewal that held
        self._looked_at: float | None = None  # monotonic time the lease was last asked for
        self._standing_by_for: str | None = None  # the holder last logged, to log each change once
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._heartbeat()
        look_again = self.lease_seconds / 4
        if not self._lead():
            return min(look_again, HEARTBEAT_INTERVAL)  # standing by: nothing is sent
        delay: float = super().tick(*args, **kwargs)
        # Wake up in time to renew the lease and write the heartbeat, even if no task is due
        # for a long while.
        return min(delay, look_again, HEARTBEAT_INTERVAL)

    def reserve(self, entry: Any) -> Any:
        new_entry = super().reserve(entry)
        # The run is recorded before it is sent (tick sends right after this), so a beat that
        # takes over after this one died never sends it again.
        self.sync()
        return new_entry

    def close(self) -> None:
        super().close()
        # A clean stop (a deploy, Ctrl-C) is not a second beat for the next two minutes, and a
        # standing-by beat takes over at its next look instead of when the lease runs out.
        try:
            if self._leading:
                beat_lease_release(identity=self.identity)
            BeatHeartbeat.objects.filter(identity=self.identity).delete()
        except DatabaseError:
            logger.warning("beat could not remove its heartbeat row or hand over its lease", exc_info=True)

    def _lead(self) -> bool:
        """Whether this beat may send now: it holds the lease, renewed in time."""
        now = time.monotonic()
        if self._looked_at is None or now - self._looked_at >= self.lease_seconds / 4:
            self._looked_at = now
            close_old_connections()
            try:
                holder = beat_lease_take(identity=self.identity, seconds=self.lease_seconds)
            except DatabaseError:
                # Unknown: keep leading only while the last renewal still covers us (below).
                logger.warning("beat could not renew its lease", exc_info=True)
            else:
                if holder == self.identity:
                    self._renewed_at = now
                    if not self._leading:
                        self._take_over()
                else:
                    self._stand_by(holder)
        if (
            self._leading
            and self._renewed_at is not None
            and now - self._renewed_at >= self.lease_seconds / 2
        ):
            # Not renewed for half the lease: another beat may take over soon, so stop first.
            logger.warning("beat %s lost its lease (not renewed in time); it stops sending", self.identity)
            self._leading = False
        return self._leading

    def _take_over(self) -> None:
        if self._standing_by_for is not None:
            # Worth a warning: the beat before died or stopped, and this one carries on.
            logger.warning("beat %s takes over from %s: it sends the periodic tasks now", self.identity,
                           self._standing_by_for)  # fmt: skip
        else:
            logger.info("beat %s holds the lease: it sends the periodic tasks", self.identity)
        self._leading = True
        self._standing_by_for = None
        # Read the schedule afresh: the runs the beat before sent are in the database, not in
        # what this one read when it started.
        self._initial_read = True
        self._heap = None

    def _stand_by(self, holder: str) -> None:
        if self._leading:
            logger.warning("beat %s lost its lease to %s; it stops sending", self.identity, holder)
        self._leading = False
        if holder != self._standing_by_for:
            self._standing_by_for = holder
            logger.warning(
                "another beat (%s) is running and sends the periodic tasks; this one (%s) stands by, "
                "sending nothing, and takes over if that one stops. Run exactly one beat.",
                holder,
                self.identity,
            )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self._last_heartbeat is not None and now - self._last_heartbeat < HEARTBEAT_INTERVAL:
            return
        self._last_heartbeat = now
        # Beat holds one connection for days; drop it if the database closed it meanwhile.
        close_old_connections()
        try:
            heartbeat_record(identity=self.identity)
        except DatabaseError:
            # Missing a heartbeat must never stop the schedule; productioncheck will notice.
            logger.warning("beat could not write its heartbeat", exc_info=True)
