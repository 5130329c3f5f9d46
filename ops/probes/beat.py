"""The beat probe: exactly one Celery beat must run, or periodic tasks stop or repeat.

Beat's scheduler (ops.beat) writes a heartbeat row every 30 seconds; the rows seen within
BEAT_WINDOW are the beats running now.
"""

from __future__ import annotations

import datetime

from django.db import DatabaseError
from django.utils import timezone

from ops.models import BeatHeartbeat
from ops.probes.result import CheckResult, error_text, failed, passed

BEAT_WINDOW = datetime.timedelta(minutes=2)


def probe_beat(*, now: datetime.datetime | None = None) -> CheckResult:
    """PASS with one beat running, FAIL with none or several (each task is then sent as often)."""
    now = now or timezone.now()
    try:
        recent = list(
            BeatHeartbeat.objects.filter(last_seen__gte=now - BEAT_WINDOW).values_list("identity", flat=True)
        )
        last = BeatHeartbeat.objects.order_by("-last_seen").first()
    except DatabaseError as exc:
        return failed("beat", f"the heartbeats cannot be read ({error_text(exc)})", "check DATABASE_URL")
    if len(recent) == 1:
        return passed("beat", f"one beat runs ({recent[0]})", running=1)
    if len(recent) > 1:
        return failed(
            "beat",
            f"beat runs {len(recent)} times ({', '.join(sorted(recent))}); every periodic task is sent "
            f"{len(recent)} times",
            "run exactly one beat: stop the others",
            running=len(recent),
        )
    seen = f"; last heartbeat {timezone.localtime(last.last_seen):%Y-%m-%d %H:%M %Z}" if last else ""
    return failed(
        "beat",
        f"beat is not running (no heartbeat in the last {BEAT_WINDOW.seconds // 60} minutes{seen})",
        "start exactly one celery -A docuelevate beat; only its default scheduler writes the heartbeat",
        running=0,
    )
