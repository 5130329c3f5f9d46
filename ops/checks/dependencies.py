"""Checklist items about the live dependencies, each a production judgement over one probe.

The probes (ops.probes) say what they found; an item asks its probe ``thorough=True``
(exposure, keys, redundancy, a WORKDIR that outlives the container) with productioncheck's
longer NETWORK_TIMEOUT, and decides what a dependency left out means in production:
without Redis the embedded fallbacks serve one machine only (FAIL), without Meilisearch
the built-in search works (WARN), without Gotenberg the workers convert (PASS), without
backups someone else must make them (WARN), without destinations documents are kept here
only (PASS). A backup that is missing or stale only warns a running installation; before
going live it fails. A destination that fails its credentials check warns: documents are
processed all the same, and delivered once it is fixed. Likewise a source whose last poll
failed warns; without sources documents come in by upload only (PASS).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from django.db import DEFAULT_DB_ALIAS

from ops.checks.configuration import NETWORK_TIMEOUT
from ops.probes.backup import probe_backup
from ops.probes.beat import probe_beat
from ops.probes.broker import probe_workers
from ops.probes.conversion import probe_converter_sandbox, probe_gotenberg
from ops.probes.database import probe_migrations
from ops.probes.destinations import probe_destinations
from ops.probes.redis import host_is_public, probe_redis
from ops.probes.result import CheckResult, Status
from ops.probes.search import probe_search
from ops.probes.sources import probe_sources
from ops.probes.workdir import MOUNTINFO, probe_workdir

# What a dependency that is not configured means for a production installation.
WHEN_NOT_CONFIGURED: dict[str, Status] = {
    "redis": Status.FAIL,
    "gotenberg": Status.PASS,
    "backup": Status.WARN,
    "destinations": Status.PASS,
    "sources": Status.PASS,
}


def judged(result: CheckResult, *, name: str | None = None, status: Status | None = None) -> CheckResult:
    """``result`` as a checklist item: renamed, given a verdict, with no fix on a PASS."""
    name = name or result.name
    if status is None:
        status = WHEN_NOT_CONFIGURED[name] if result.status is Status.NOT_CONFIGURED else result.status
    fix = "" if status is Status.PASS else result.fix
    return dataclasses.replace(result, name=name, status=status, fix=fix)


def check_migrations(*, alias: str = DEFAULT_DB_ALIAS) -> CheckResult:
    return judged(probe_migrations(alias=alias))


def check_workdir(*, workdir: Path | None = None, mountinfo: Path = MOUNTINFO) -> CheckResult:
    return judged(probe_workdir(workdir=workdir, mountinfo=mountinfo, thorough=True))


def check_converter_sandbox() -> CheckResult:
    return judged(probe_converter_sandbox())


def check_redis(
    *,
    url: str | None = None,
    timeout: float = NETWORK_TIMEOUT,
    is_public: Callable[[str], bool] = host_is_public,
) -> CheckResult:
    return judged(probe_redis(url=url, timeout=timeout, thorough=True, is_public=is_public))


def check_gotenberg(*, timeout: float | None = None) -> CheckResult:
    return judged(probe_gotenberg(timeout=timeout))


def check_meilisearch(*, timeout: float = NETWORK_TIMEOUT) -> CheckResult:
    """Meilisearch is recommended, not required: the built-in database search is a WARN."""
    result = probe_search(timeout=timeout, thorough=True)
    if result.facts.get("backend") == "database":
        fix = (
            "none needed; for instant search over large archives set MEILISEARCH_URL and MEILISEARCH_API_KEY"
        )
        return judged(dataclasses.replace(result, fix=fix), name="meilisearch", status=Status.WARN)
    return judged(result, name="meilisearch")


def check_workers(*, app: Celery | None = None, timeout: float = NETWORK_TIMEOUT) -> CheckResult:
    return judged(probe_workers(app=app, timeout=timeout, thorough=True))


def check_beat(*, now: datetime.datetime | None = None) -> CheckResult:
    return judged(probe_beat(now=now))


def check_backup(*, now: datetime.datetime | None = None) -> CheckResult:
    result = probe_backup(now=now)
    # None succeeded, or too long ago: a deploy without a backup to restore from fails.
    return judged(result, status=Status.FAIL if result.status is Status.WARN else None)


def check_destinations() -> CheckResult:
    """WARN while an enabled destination fails (its deliveries fail until it is fixed)."""
    return judged(probe_destinations())


def check_sources() -> CheckResult:
    """WARN while an enabled source fails (nothing comes in through it until it is fixed)."""
    return judged(probe_sources())
