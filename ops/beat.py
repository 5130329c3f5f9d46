"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler plus a heartbeat.

Beat must run exactly once: two beats send every periodic task twice, none sends nothing,
and neither shows in any log. Each beat process therefore writes a ``BeatHeartbeat`` row
named after itself every ``HEARTBEAT_INTERVAL`` seconds, and removes it when it stops
cleanly, so ``productioncheck`` can count the beats alive in the last two minutes.
Enabled by ``CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"``.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
from typing import Any

from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from ops.models import BeatHeartbeat

logger = logging.getLogger(__name__)

# Well inside the two minutes within which productioncheck expects to have seen a beat.
HEARTBEAT_INTERVAL = 30.0
# Rows of beats that died without cleaning up (a crash, SIGKILL) are removed after this.
FORGET_AFTER = datetime.timedelta(days=1)


def beat_identity() -> str:
    """What tells this beat process from any other, on this machine or another."""
    return f"{socket.gethostname()} {os.getpid()}"


def heartbeat_record(*, identity: str, now: datetime.datetime | None = None) -> None:
    """Note that beat ``identity`` is alive now, and forget beats silent for a day."""
    now = now or timezone.now()
    BeatHeartbeat.objects.update_or_create(identity=identity, defaults={"last_seen": now})
    BeatHeartbeat.objects.filter(last_seen__lt=now - FORGET_AFTER).delete()


class HeartbeatScheduler(DatabaseScheduler):  # type: ignore[misc]  # django-celery-beat ships no types
    """DatabaseScheduler that also writes this process's heartbeat while it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.identity = beat_identity()
        self._last_heartbeat: float | None = None
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._heartbeat()
        delay: float = super().tick(*args, **kwargs)
        # Wake up in time for the next heartbeat even if no task is due for a long while.
        return min(delay, HEARTBEAT_INTERVAL)

    def close(self) -> None:
        super().close()
        # A clean stop (a deploy, Ctrl-C) is not a second beat for the next two minutes.
        try:
            BeatHeartbeat.objects.filter(identity=self.identity).delete()
        except DatabaseError:
            logger.warning("beat could not remove its heartbeat row", exc_info=True)

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
