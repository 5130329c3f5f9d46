"""Readiness and /api/health: the probes (ops.probes) run side by side within a deadline.

Each probe runs in a thread of its own kind and is waited for at most CHECK_TIMEOUT
seconds, so a database or Redis that stops answering (a dropped packet, not a refused
connection) makes a probe say "error" in time instead of holding a web worker for the
minutes a TCP connect can take. At most CHECK_THREADS threads per kind ever wait on a
hung service; later checks of that kind queue behind them and time out. No answer ever
carries exception text: only a probe's public facts are shown, its reason goes to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from ops.probes.backup import probe_backup
from ops.probes.broker import probe_broker, probe_workers
from ops.probes.database import probe_database, probe_migrations
from ops.probes.destinations import probe_destinations
from ops.probes.redis import probe_redis
from ops.probes.result import UNREACHABLE, CheckResult, Status, failed, passed
from ops.probes.search import probe_search
from ops.probes.sources import probe_sources
from ops.probes.workdir import probe_disk_space, probe_workdir

__all__ = [
    "CHECK_THREADS", "CHECK_TIMEOUT", "HEALTH_CHECKS", "HEALTH_WORDS", "NEEDS_DATABASE", "READY_CHECKS",
    "READY_FACTS", "CheckResult", "Report", "Status", "health", "health_answer", "ok", "readiness",
    "run_checks",
]  # fmt: skip

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds for any one check
CHECK_THREADS = 2  # threads per kind of check, so concurrent requests do not queue behind each other

# How the health answers spell a status (the contract of /api/health and the probes).
HEALTH_WORDS: dict[Status, str] = {
    Status.PASS: "ok",
    Status.WARN: "warning",
    Status.FAIL: "error",
    Status.NOT_CONFIGURED: "not_configured",
}

Check = Callable[[], CheckResult]

# What the readiness probe asks: only the database decides readiness.
READY_CHECKS: dict[str, Check] = {"database": probe_database, "redis": probe_redis, "disk": probe_disk_space}
# The facts the (unauthenticated) readiness probe shows besides a check's status.
READY_FACTS: dict[str, tuple[str, ...]] = {"disk": ("paused",)}
# What /api/health reports. The database comes first: the checks that read it run only
# when it answers (a dead database would make each of them wait out its own timeout).
HEALTH_CHECKS: dict[str, Check] = {
    "database": probe_database,
    "redis": probe_redis,
    "broker": probe_broker,
    "workers": probe_workers,
    "search": probe_search,
    "workdir": probe_workdir,
    "migrations": probe_migrations,
    "backup": probe_backup,
    "destinations": probe_destinations,
    "sources": probe_sources,
}
NEEDS_DATABASE = frozenset({"migrations", "backup", "destinations", "sources"})


def ok(**facts: Any) -> CheckResult:
    """A passing answer with only facts: the runner keys its answers by name."""
    return passed("", "", **facts)


def health_answer(result: CheckResult) -> dict[str, Any]:
    """One check as /api/health shows it: its status word and its public facts."""
    return {"status": HEALTH_WORDS[result.status], **result.facts}


# --- Running them in time -----------------------------------------------------------------


_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _executor(name: str) -> ThreadPoolExecutor:
    with _executors_lock:
        if name not in _executors:
            _executors[name] = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix=f"health-{name}")
        return _executors[name]


def _guarded(name: str, check: Check) -> Check:
    def run() -> CheckResult:
        try:
            return check()
        except Exception:
            # The operator reads why in the log; the caller learns only that it failed.
            logger.warning("health check %s failed", name, exc_info=True)
            return failed(name, "the check itself failed", "see the log", reason=UNREACHABLE)
        finally:
            connections.close_all()  # this thread's connections; the thread outlives the check

    return run


def _collect(name: str, future: Future[CheckResult], deadline: float) -> CheckResult:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        future.cancel()  # still queued behind a hung check: never start it
        logger.warning("health check %s did not answer within %s s", name, CHECK_TIMEOUT)
        return failed(name, f"no answer within {CHECK_TIMEOUT} s", "see the log", reason="timed out")


def run_checks(checks: Mapping[str, Check], *, only: Iterable[str] | None = None) -> dict[str, CheckResult]:
    """Run ``checks`` side by side, each given CHECK_TIMEOUT; the answers in the same order.

    The checks in NEEDS_DATABASE start once "database" answered ok, and otherwise report an
    error without trying.
    """
    names = list(only) if only is not None else list(checks)
    deadline = time.monotonic() + CHECK_TIMEOUT
    futures = {
        name: _executor(name).submit(_guarded(name, checks[name]))
        for name in names
        if name not in NEEDS_DATABASE
    }
    results = {name: _collect(name, future, deadline) for name, future in futures.items()}
    later = [name for name in names if name in NEEDS_DATABASE]
    if later:
        database_ok = results.get("database", ok()).status is Status.PASS
        deadline = time.monotonic() + CHECK_TIMEOUT
        for name in later:
            if not database_ok:
                results[name] = failed(
                    name, "not tried: the database does not answer", "", reason="the database does not answer"
                )
                continue
            results[name] = _collect(name, _executor(name).submit(_guarded(name, checks[name])), deadline)
    return {name: results[name] for name in names}


# --- The two reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    status: str
    http_status: int
    body: dict[str, Any]


def readiness() -> Report:
    """Ready when the database answers; Redis and the disk's free-space floor are reported,
    but neither alone stops serving (reads and downloads still work)."""
    results = run_checks(READY_CHECKS)
    ready = results["database"].status is Status.PASS
    status = "ready" if ready else "not_ready"
    body = {
        "status": status,
        "checks": {name: _ready_answer(name, result) for name, result in results.items()},
    }
    return Report(status, 200 if ready else 503, body)


def _ready_answer(name: str, result: CheckResult) -> dict[str, Any]:
    shown = {fact: result.facts[fact] for fact in READY_FACTS.get(name, ()) if fact in result.facts}
    return {"status": HEALTH_WORDS[result.status], **shown}


def health() -> Report:
    """Everything an operator wants at a glance; 503 "unhealthy" only when the database is down."""
    results = run_checks(HEALTH_CHECKS)
    if results["database"].status is not Status.PASS:
        status, http_status = "unhealthy", 503
    elif any(result.status in (Status.FAIL, Status.WARN) for result in results.values()):
        status, http_status = "degraded", 200
    else:
        status, http_status = "healthy", 200
    body = {
        "status": status,
        "version": settings.VERSION,
        "timestamp": timezone.now().isoformat(),
        "checks": {name: health_answer(result) for name, result in results.items()},
    }
    return Report(status, http_status, body)
