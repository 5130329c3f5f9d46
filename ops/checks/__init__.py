"""The production checklist: one plain function per item, each answering PASS, WARN or FAIL.

``manage.py productioncheck`` runs them all against the live system (database, Redis,
Meilisearch, the Celery workers, beat's heartbeat, the newest backup). The items that
need neither network nor database also run as Django system checks tagged ``deploy``,
so ``manage.py check --deploy`` reports them as ``ops.E0xx`` (FAIL) and ``ops.W0xx``
(WARN), with numbers that stay the same from release to release.

``configuration`` holds the items about settings, accounts and the checkout;
``dependencies`` those that ask a dependency, each through its probe (ops.probes). Every
item returns the probes' one result type, ending in PASS, WARN or FAIL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.core import checks as django_checks

from ops.checks.configuration import (
    check_admin_password,
    check_auth,
    check_database,
    check_debug,
    check_ftp_tls,
    check_https,
    check_imap_tls,
    check_log_format,
    check_monitoring,
    check_rate_limiting,
    check_secrets_in_repo,
    check_security_headers,
    check_session_secret,
    check_sftp_host_keys,
)
from ops.checks.dependencies import (
    check_backup,
    check_beat,
    check_converter_sandbox,
    check_destinations,
    check_gotenberg,
    check_meilisearch,
    check_migrations,
    check_redis,
    check_sources,
    check_workdir,
    check_workers,
)
from ops.probes.result import VERDICTS, CheckResult, Status, error_text, failed

__all__ = [
    "DEPLOY_CHECKS", "PRODUCTION_CHECKS", "VERDICTS", "CheckResult", "Status", "check_admin_password",
    "check_auth",
    "check_backup", "check_beat", "check_converter_sandbox", "check_database", "check_debug",
    "check_destinations", "check_ftp_tls", "check_gotenberg", "check_https", "check_imap_tls",
    "check_log_format",
    "check_meilisearch", "check_migrations",
    "check_monitoring", "check_rate_limiting", "check_redis", "check_secrets_in_repo",
    "check_security_headers", "check_session_secret", "check_sftp_host_keys", "check_sources",
    "check_workdir",
    "check_workers",
    "deploy_system_checks", "productioncheck_run", "run_check",
]  # fmt: skip

Check = Callable[[], CheckResult]

# In the order an operator reads them: configuration, storage, security, services, upkeep.
PRODUCTION_CHECKS: tuple[Check, ...] = (
    check_debug,
    check_database,
    check_migrations,
    check_workdir,
    check_https,
    check_session_secret,
    check_admin_password,
    check_auth,
    check_security_headers,
    check_rate_limiting,
    check_ftp_tls,
    check_sftp_host_keys,
    check_imap_tls,
    check_converter_sandbox,
    check_redis,
    check_meilisearch,
    check_gotenberg,
    check_workers,
    check_beat,
    check_backup,
    check_destinations,
    check_sources,
    check_monitoring,
    check_log_format,
    check_secrets_in_repo,
)

# The items that need neither network nor database, with their system check numbers
# (ops.E002 / ops.W002 ...). DEBUG is left to Django's own security.W018.
DEPLOY_CHECKS: tuple[tuple[int, Check], ...] = (
    (2, check_database),
    (4, check_workdir),
    (5, functools.partial(check_https, probe_tls=False)),
    (6, check_session_secret),
    (7, functools.partial(check_admin_password, inspect_accounts=False)),
    (8, check_auth),
    (9, check_security_headers),
    (10, check_rate_limiting),
    (16, check_monitoring),
    (17, check_log_format),
    (18, check_secrets_in_repo),
    (19, check_ftp_tls),
    (20, check_sftp_host_keys),
    (21, functools.partial(check_imap_tls, inspect_sources=False)),
)


def check_name(check: Check) -> str:
    """The item a check function reports on: ``check_database`` -> ``database``."""
    function = check.func if isinstance(check, functools.partial) else check
    return function.__name__.removeprefix("check_")


def run_check(check: Check) -> CheckResult:
    """One item's result; a check that breaks is a FAIL of its item, not the end of the list."""
    try:
        return check()
    except Exception as exc:  # whatever broke, the operator sees it on its line
        return failed(check_name(check), f"the check itself failed ({error_text(exc)})", "see the error")


def productioncheck_run(checks: Sequence[Check] | None = None) -> list[CheckResult]:
    """Walk the production checklist (by default all of it) against the live system."""
    return [run_check(check) for check in (PRODUCTION_CHECKS if checks is None else checks)]


def deploy_system_checks(app_configs: Any = None, **kwargs: Any) -> list[django_checks.CheckMessage]:
    """The offline checklist items as Django system checks, for ``manage.py check --deploy``."""
    messages: list[django_checks.CheckMessage] = []
    for number, check in DEPLOY_CHECKS:
        result = run_check(check)
        if result.status is Status.PASS:
            continue
        level, letter = (
            (django_checks.Error, "E") if result.status is Status.FAIL else (django_checks.Warning, "W")
        )
        messages.append(
            level(f"{result.name}: {result.reason}", hint=result.fix, id=f"ops.{letter}{number:03d}")
        )
    return messages
