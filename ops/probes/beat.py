"""The beat probe: exactly one Celery beat should run, or periodic tasks stop.

Beat's scheduler (ops.beat) writes a heartbeat row every 30 seconds; the rows seen within
BEAT_WINDOW are the beats running now. Of several, only the holder of the beat lease sends
anything: the others stand by, so a second beat is a warning, not a task sent twice.
"""

from __future__ import annotations

import datetime

from django.db import DatabaseError
from django.utils import timezone

from ops.beat import beat_lease_holder
from ops.models import BeatHeartbeat
from ops.probes.result import CheckResult, error_text, failed, passed, warned

BEAT_WINDOW = datetime.timedelta(minutes=2)


def probe_beat(*, now: datetime.datetime | None = None) -> CheckResult:
    """PASS with one beat running, WARN with several (one sends, the others stand by), FAIL
    with none."""
    now = now or timezone.now()
    try:
        recent = list(
            BeatHeartbeat.objects.filter(last_seen__gte=now - BEAT_WINDOW).values_list("identity", flat=True)
        )
        last = BeatHeartbeat.objects.order_by("-last_seen").first()
        holder = beat_lease_holder()
    except DatabaseError as exc:
        return failed("beat", f"the heartbeats cannot be read ({error_text(exc)})", "check DATABASE_URL")
    if len(recent) == 1:
        return passed("beat", f"one beat runs ({recent[0]})", running=1, sending=holder)
    if len(recent) > 1:
        standing_by = sorted(identity for identity in recent if identity != holder)
        sender = f"{holder} sends the periodic tasks" if holder else "none holds the lease yet"
        return warned(
            "beat",
            f"beat runs {len(recent)} times: {sender}; {', '.join(standing_by)} "
            f"{'stands' if len(standing_by) == 1 else 'stand'} by, sending nothing until it stops",
            "run exactly one beat: stop the others",
            running=len(recent),
            sending=holder,
        )
    seen = f"; last heartbeat {timezone.localtime(last.last_seen):%Y-%m-%d %H:%M %Z}" if last else ""
    return failed(
        "beat",
        f"beat is not running (no heartbeat in the last {BEAT_WINDOW.seconds // 60} minutes{seen})",
        "start exactly one celery -A docuelevate beat; only its default scheduler writes the heartbeat",
        running=0,
    )
