"""Health checks for the probes and /api/health: plain functions returning small records.

Each check runs in a thread of its own kind and is waited for at most CHECK_TIMEOUT
seconds, so a database or Redis that stops answering (a dropped packet, not a refused
connection) makes a probe say "error" in time instead of holding a web worker for the
minutes a TCP connect can take. At most CHECK_THREADS threads per kind ever wait on a
hung service; later checks of that kind queue behind them and time out. No record ever
carries exception text: it goes to the log, where the operator looks, not to the caller.
"""

from __future__ import annotations

import copy
import enum
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend
from django.utils import timezone

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds for any one check
CHECK_THREADS = 2  # threads per kind of check, so concurrent requests do not queue behind each other


class CheckStatus(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"  # works, but needs the operator's attention soon
    ERROR = "error"
    NOT_CONFIGURED = "not_configured"  # the service is not part of this installation


@dataclass(frozen=True)
class CheckResult:
    """The answer of one check: a status and a few plain facts, never exception text."""

    status: CheckStatus
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), **self.facts}


def ok(**facts: Any) -> CheckResult:
    return CheckResult(CheckStatus.OK, facts)


def warning(**facts: Any) -> CheckResult:
    return CheckResult(CheckStatus.WARNING, facts)


def error(**facts: Any) -> CheckResult:
    return CheckResult(CheckStatus.ERROR, facts)


NOT_CONFIGURED = CheckResult(CheckStatus.NOT_CONFIGURED)


# --- The checks -------------------------------------------------------------------------------


def _probe_connection() -> BaseDatabaseWrapper:
    """A connection of its own to the default database, with short timeouts on PostgreSQL.

    Not the request's connection: that one has no connect timeout, and a probe must not
    disturb a transaction in progress.
    """
    settings_dict = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        options = settings_dict.setdefault("OPTIONS", {})
        options["connect_timeout"] = max(2, round(CHECK_TIMEOUT))  # libpq's minimum is 2 s
        statement_timeout = f"-c statement_timeout={round(CHECK_TIMEOUT * 1000)}"
        options["options"] = f"{options.get('options', '')} {statement_timeout}".strip()
    backend = load_backend(settings_dict["ENGINE"])
    wrapper: BaseDatabaseWrapper = backend.DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
    return wrapper


def database_check() -> CheckResult:
    connection = _probe_connection()
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
    return ok(latency_ms=round((time.monotonic() - started) * 1000, 1))


def _redis_ping(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def redis_check() -> CheckResult:
    """Redis holds the rate-limit counters, the cache and (by default) the broker."""
    if not settings.REDIS_URL:
        return NOT_CONFIGURED
    _redis_ping(settings.REDIS_URL)
    return ok()


def broker_check() -> CheckResult:
    url = str(settings.CELERY_BROKER_URL)
    transport = url.split("://", 1)[0]
    if transport == "filesystem":
        # The embedded broker is a folder: it works when the folder can be written.
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".health-", suffix=".probe"):
            pass
    elif transport in ("redis", "rediss"):
        _redis_ping(url)
    else:
        from docuelevate.celery import app

        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=round(CHECK_TIMEOUT))
    return ok(transport=transport)


def workers_check() -> CheckResult:
    from documents.selectors import workers_online

    online = workers_online()
    return ok(online=online) if online else error(online=0, reason="no worker answered")


def search_check() -> CheckResult:
    if not settings.MEILISEARCH_URL:
        return ok(backend="database")  # the database check covers it
    import meilisearch

    client = meilisearch.Client(
        settings.MEILISEARCH_URL, settings.MEILISEARCH_API_KEY, timeout=round(CHECK_TIMEOUT)
    )
    client.health()
    return ok(backend="meilisearch")


def workdir_check() -> CheckResult:
    # One truth with productioncheck for when free space becomes a problem.
    from ops.checks.configuration import WORKDIR_FAIL_BELOW, WORKDIR_WARN_BELOW

    workdir = Path(settings.WORKDIR)
    try:
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".health-"):
            pass
    except OSError:
        logger.warning("WORKDIR %s is not writable", workdir, exc_info=True)
        return error(writable=False, reason="not writable")
    free = shutil.disk_usage(workdir).free
    if free < WORKDIR_FAIL_BELOW:
        return error(writable=True, free_bytes=free, reason="almost full")
    if free < WORKDIR_WARN_BELOW:
        return warning(writable=True, free_bytes=free, reason="little free space")
    return ok(writable=True, free_bytes=free)


def migrations_check() -> CheckResult:
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    finally:
        connections.close_all()  # this thread's connections; the thread outlives the check
    if pending:
        return error(pending=pending, reason="run python manage.py migrate")
    return ok(pending=0)


def backup_check() -> CheckResult:
    from ops.checks.services import BACKUP_MAX_AGE
    from ops.models import BackupRecord, BackupStatus

    if not getattr(settings, "BACKUP_ENABLED", True):
        return NOT_CONFIGURED
    try:
        newest = (
            BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
    finally:
        connections.close_all()
    if newest is None:
        return warning(last_success=None, reason="no backup has succeeded yet")
    age = timezone.now() - newest
    facts = {"last_success": newest.isoformat(), "age_seconds": int(age.total_seconds())}
    if age > BACKUP_MAX_AGE:
        return warning(**facts, reason="the newest backup is too old")
    return ok(**facts)


# What the readiness probe asks: only the database decides readiness (ops.views).
READY_CHECKS: dict[str, Callable[[], CheckResult]] = {"database": database_check, "redis": redis_check}
# What /api/health reports. The database comes first: the checks that read it run only
# when it answers (a dead database would make each of them wait out its own timeout).
HEALTH_CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": database_check,
    "redis": redis_check,
    "broker": broker_check,
    "workers": workers_check,
    "search": search_check,
    "workdir": workdir_check,
    "migrations": migrations_check,
    "backup": backup_check,
}
NEEDS_DATABASE = frozenset({"migrations", "backup"})


# --- Running them in time -----------------------------------------------------------------


_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _executor(name: str) -> ThreadPoolExecutor:
    with _executors_lock:
        if name not in _executors:
            _executors[name] = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix=f"health-{name}")
        return _executors[name]


def _guarded(name: str, check: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
    def run() -> CheckResult:
        try:
            return check()
        except Exception:
            # The operator reads why in the log; the caller learns only that it failed.
            logger.warning("health check %s failed", name, exc_info=True)
            return error(reason="unreachable")

    return run


def _collect(name: str, future: Future[CheckResult], deadline: float) -> CheckResult:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        future.cancel()  # still queued behind a hung check: never start it
        logger.warning("health check %s did not answer within %s s", name, CHECK_TIMEOUT)
        return error(reason="timed out")


def run_checks(
    checks: Mapping[str, Callable[[], CheckResult]], *, only: Iterable[str] | None = None
) -> dict[str, CheckResult]:
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
        database_ok = results.get("database", ok()).status is CheckStatus.OK
        deadline = time.monotonic() + CHECK_TIMEOUT
        for name in later:
            if not database_ok:
                results[name] = error(reason="the database does not answer")
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
    """Ready when the database answers; Redis is reported, but its loss alone keeps serving."""
    results = run_checks(READY_CHECKS)
    ready = results["database"].status is CheckStatus.OK
    status = "ready" if ready else "not_ready"
    body = {
        "status": status,
        "checks": {name: {"status": str(result.status)} for name, result in results.items()},
    }
    return Report(status, 200 if ready else 503, body)


def health() -> Report:
    """Everything an operator wants at a glance; 503 "unhealthy" only when the database is down."""
    results = run_checks(HEALTH_CHECKS)
    if results["database"].status is not CheckStatus.OK:
        status, http_status = "unhealthy", 503
    elif any(result.status in (CheckStatus.ERROR, CheckStatus.WARNING) for result in results.values()):
        status, http_status = "degraded", 200
    else:
        status, http_status = "healthy", 200
    body = {
        "status": status,
        "version": settings.VERSION,
        "timestamp": timezone.now().isoformat(),
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return Report(status, http_status, body)
