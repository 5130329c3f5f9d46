"""Probes of the database: does it answer, and is its schema the code's."""

from __future__ import annotations

import copy
import logging
import time

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend

from ops.probes.result import PROBE_TIMEOUT, CheckResult, error_text, failed, passed, unreachable

logger = logging.getLogger(__name__)


def _probe_connection(timeout: float) -> BaseDatabaseWrapper:
    """A connection of its own to the default database, with short timeouts on PostgreSQL.

    Not the request's connection: that one has no connect timeout, and a probe must not
    disturb a transaction in progress.
    """
    settings_dict = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        options = settings_dict.setdefault("OPTIONS", {})
        options["connect_timeout"] = max(2, round(timeout))  # libpq's minimum is 2 s
        statement_timeout = f"-c statement_timeout={round(timeout * 1000)}"
        options["options"] = f"{options.get('options', '')} {statement_timeout}".strip()
    backend = load_backend(settings_dict["ENGINE"])
    wrapper: BaseDatabaseWrapper = backend.DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
    return wrapper


def probe_database(*, timeout: float = PROBE_TIMEOUT) -> CheckResult:
    """Whether the database answers a query, and its round trip (``latency_ms``)."""
    connection = _probe_connection(timeout)
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        reason = f"the database does not answer ({error_text(exc)})"
        logger.warning("database probe: %s", reason)
        return unreachable("database", reason, "check DATABASE_URL")
    finally:
        connection.close()
    return passed(
        "database", "the database answers", latency_ms=round((time.monotonic() - started) * 1000, 1)
    )


def probe_migrations(*, alias: str = DEFAULT_DB_ALIAS) -> CheckResult:
    """Whether every migration is applied; a pending one means code and schema disagree."""
    try:
        executor = MigrationExecutor(connections[alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        reason = f"the database does not answer ({error_text(exc)})"
        logger.warning("migrations probe: %s", reason)
        return unreachable("migrations", reason, "check DATABASE_URL")
    if plan:
        pending = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
        listed = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        fix = "run python manage.py migrate"
        return failed(
            "migrations",
            f"{len(pending)} migration(s) not applied: {listed}",
            fix,
            pending=len(pending),
            reason=fix,
        )
    return passed("migrations", "every migration is applied", pending=0)
