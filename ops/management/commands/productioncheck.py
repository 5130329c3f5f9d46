"""``python manage.py productioncheck [--json]``: walk the production checklist.

One line per item, ``PASS``/``WARN``/``FAIL`` with the reason and, when not PASS, the fix.
Exit status 1 when any item FAILs; a WARN is worth reading but does not fail a deploy.
The checks themselves live in ``ops.checks``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.checks import VERDICTS, CheckResult, Status, productioncheck_run


class Command(BaseCommand):
    help = "Check the live installation against the production checklist; exit 1 on any FAIL."
    # The checklist reports problems itself; Django's system checks must not stop it first.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="print a JSON list of {name, status, reason, fix}"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["json"]:
            # Log lines written while the checks run must not break the JSON on stdout.
            with _logs_to_stderr():
                results = productioncheck_run()
        else:
            results = productioncheck_run()
        if options["json"]:
            self.stdout.write(json.dumps([result.as_dict() for result in results], indent=2))
        else:
            self.stdout.write(self._table(results))
        failures = [result.name for result in results if result.status is Status.FAIL]
        if failures:
            raise CommandError(f"{len(failures)} item(s) failed: {', '.join(failures)}")

    def _table(self, results: list[CheckResult]) -> str:
        styles: dict[Status, Callable[[str], str]] = {
            Status.PASS: self.style.SUCCESS,
            Status.WARN: self.style.WARNING,
            Status.FAIL: self.style.ERROR,
        }
        width = max(len(result.name) for result in results)
        lines = []
        for result in results:
            fix = f" (fix: {result.fix})" if result.fix and result.status is not Status.PASS else ""
            status = styles[result.status](result.status.value)
            lines.append(f"{status}  {result.name:<{width}}  {result.reason}{fix}")
        counts = {status: sum(result.status is status for result in results) for status in VERDICTS}
        lines.append(", ".join(f"{counts[status]} {status.value}" for status in VERDICTS))
        return "\n".join(lines)


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Point the log handlers that write to stdout (settings.LOGGING) at stderr meanwhile."""
    moved = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout
    ]
    for handler in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(sys.stdout)
