"""Probes of the task machinery: the Celery broker, the workers and the queues they drain.

Here, not in the documents selectors, because they ask processes, not the archive: the
status page, /api/health, /metrics and /api/queue/stats all read them from one place.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from django.conf import settings

from ops.probes.redis import redis_ping
from ops.probes.result import PROBE_TIMEOUT, CheckResult, error_text, failed, passed, warned

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

# Seconds workers are given to answer a ping: long enough for a busy worker, short enough
# for /api/health and the status page.
WORKER_PING_TIMEOUT = 1.0
NO_WORKER = "no worker answered"


def _celery_app() -> Celery:
    from docuelevate.celery import app  # imported late: the Celery app imports every tasks module

    return app


def _queues() -> tuple[str, ...]:
    from docuelevate.celery import QUEUES

    return tuple(QUEUES)


def probe_broker(*, timeout: float = PROBE_TIMEOUT) -> CheckResult:
    """Whether the broker takes messages: its folder (embedded) or its server answers."""
    url = str(settings.CELERY_BROKER_URL)
    transport = url.split("://", 1)[0]
    if transport == "filesystem":
        # The embedded broker is a folder: it works when the folder can be written.
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".health-", suffix=".probe"):
            pass
    elif transport in ("redis", "rediss"):
        redis_ping(url, timeout=timeout)
    else:
        with _celery_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=round(timeout))
    return passed("broker", f"the {transport} broker takes messages", transport=transport)


def probe_workers(
    *, app: Celery | None = None, timeout: float = WORKER_PING_TIMEOUT, thorough: bool = False
) -> CheckResult:
    """How many Celery workers answer a ping (``online``); FAIL when none does.

    ``thorough`` also asks what matters before going live: whether every queue has a worker
    consuming it, and whether there is more than one (a busy or restarting worker then
    stalls nothing).
    """
    app = app or _celery_app()
    start = "start workers: celery -A docuelevate worker -Q " + ",".join(_queues())
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # kombu raises each transport's own errors
        # A status page must answer even when the broker is down; that is what it reports.
        reason = f"the broker does not answer ({error_text(exc)})"
        logger.warning("workers probe: %s", reason)
        return failed("workers", reason, "check REDIS_URL", online=0, reason=NO_WORKER)
    hostnames = sorted({hostname for reply in replies for hostname in reply})
    if not hostnames:
        reason = f"no Celery worker answered ping within {timeout:g} s"
        return failed("workers", reason, start, online=0, reason=NO_WORKER)
    online = len(hostnames)
    answering = f"{online} worker(s) answer: {', '.join(hostnames)}"
    if not thorough:
        return passed("workers", answering, online=online)
    inspector = app.control.inspect(destination=hostnames, timeout=timeout, limit=online)
    queues = inspector.active_queues() or {}
    consumed = {queue["name"] for worker_queues in queues.values() for queue in worker_queues}
    if missing := [queue for queue in _queues() if queue not in consumed]:
        return failed(
            "workers",
            f"no worker consumes queue(s) {', '.join(missing)}: their tasks wait forever",
            f"start a worker with -Q {','.join(missing)}",
            online=online,
        )
    if online == 1:
        return warned(
            "workers",
            f"one worker answers ({hostnames[0]}): a busy or restarting worker stalls every document",
            "run at least two workers, e.g. docker compose up --scale worker=2",
            online=online,
        )
    return passed("workers", f"{online} workers answer: {', '.join(hostnames)}", online=online)


def workers_online() -> int:
    """Celery workers answering a ping within a second; 0 when the broker cannot be asked."""
    return int(probe_workers().facts["online"])


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue; None where the broker cannot tell.

    Only a Redis broker is asked (one LLEN per queue, the list kombu keeps per queue). The
    embedded file broker is not counted: its folder is the storage's business, and the
    counts would be guesses.
    """
    queues = _queues()
    lengths: dict[str, int | None] = dict.fromkeys(queues, None)
    broker_url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if not broker_url.startswith(("redis://", "rediss://")):
        return lengths
    try:
        client = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            counts = pipe.execute()
    except redis.RedisError:
        logger.warning("could not read the queue lengths from the broker", exc_info=True)
        return lengths
    return {queue: int(count) for queue, count in zip(queues, counts, strict=True)}
