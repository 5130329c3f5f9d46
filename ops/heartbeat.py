"""The Uptime Kuma heartbeat: push this installation's health to a push monitor.

Uptime Kuma's push monitor expects ``GET <push url>?status=up|down&msg=…&ping=…`` at least
once per heartbeat interval and raises the alarm when a push says ``down`` or none comes.
Beat sends ``ops.tasks.heartbeat_push_task`` every UPTIME_KUMA_PING_INTERVAL minutes, so a
push that arrives at all proves beat, the broker and a worker alive; what it says comes
from the full health report (``ops.health.health``): ``down`` when that is "unhealthy"
(the database does not answer), else ``up``, with the checks in trouble in the message.

The push URL carries the monitor's secret token, so it is never logged here, and neither
is an exception's text, which would quote it; the log says only what went wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings

from ops.health import health

logger = logging.getLogger(__name__)

PUSH_TIMEOUT = 10.0  # seconds; well inside the shortest interval of one minute
MESSAGE_LIMIT = 200  # characters; Uptime Kuma shows the message in a list
PUSH_PARAMETERS = ("status", "msg", "ping")


@dataclass(frozen=True)
class Heartbeat:
    """What one push says: up or down, why, and the database's round trip in ms."""

    status: Literal["up", "down"]
    message: str
    ping_ms: float | None = None


def heartbeat_assess() -> Heartbeat:
    """This installation's heartbeat, from the full health report.

    ``ping`` is the database's round trip, the one latency every request pays; the report
    as a whole takes at least the second workers are given to answer, which says nothing.
    """
    report = health()
    checks = report.body["checks"]
    troubled = sorted(name for name, check in checks.items() if check["status"] in ("error", "warning"))
    latency = checks.get("database", {}).get("latency_ms")
    if report.status == "unhealthy":
        return Heartbeat("down", _short(f"unhealthy: {', '.join(troubled) or 'database'}"))
    if report.status == "degraded":
        return Heartbeat("up", _short(f"degraded: {', '.join(troubled)}"), latency)
    return Heartbeat("up", "OK", latency)


def push_url(url: str, heartbeat: Heartbeat) -> str:
    """``url`` with the heartbeat's parameters, replacing those already in it.

    Uptime Kuma shows the push URL as ``…/api/push/<token>?status=up&msg=OK&ping=``, and
    operators paste it as shown; any other parameter in it is kept.
    """
    parts = urlsplit(url)
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in PUSH_PARAMETERS
    ]
    ping = "" if heartbeat.ping_ms is None else f"{heartbeat.ping_ms:g}"
    query = urlencode([*kept, ("status", heartbeat.status), ("msg", heartbeat.message), ("ping", ping)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def heartbeat_push(*, url: str | None = None, timeout: float = PUSH_TIMEOUT) -> str:
    """Assess the health and push it to ``url`` (default UPTIME_KUMA_URL).

    Returns what happened: "up" or "down" (pushed), "not_configured", or "failed" (the
    monitor did not take it; it alarms by itself when pushes stop arriving).
    """
    url = url if url is not None else settings.UPTIME_KUMA_URL
    if not url:
        return "not_configured"
    heartbeat = heartbeat_assess()
    try:
        response = requests.get(push_url(url, heartbeat), timeout=timeout)
    except requests.RequestException as exc:
        # The exception's text quotes the URL with its token: name the kind of failure only.
        logger.warning(
            "Uptime Kuma push failed (%s); the monitor will alarm if this persists", type(exc).__name__
        )
        return "failed"
    if not response.ok:
        logger.warning(
            "Uptime Kuma refused the push with HTTP %s; check UPTIME_KUMA_URL", response.status_code
        )
        return "failed"
    if heartbeat.status == "down":
        logger.warning("pushed 'down' to Uptime Kuma: %s", heartbeat.message)
    else:
        logger.info("pushed %r to Uptime Kuma: %s", heartbeat.status, heartbeat.message)
    return heartbeat.status


def _short(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
