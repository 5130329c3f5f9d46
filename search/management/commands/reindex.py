"""``python manage.py reindex [--check]``: rebuild the search index, or report its drift."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.services import DriftReport, reconcile, reindex_all


class Command(BaseCommand):
    help = "Rebuild the search index; with --check, only report documents missing, stale or orphaned in it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="report drift, change nothing; exit 1 on drift"
        )
        parser.add_argument("--json", action="store_true", help="print the report as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconcile(repair=False) if options["check"] else reindex_all()
        self.stdout.write(_render(report, as_json=options["json"]))
        if options["check"] and report.drift:
            raise CommandError("the search index has drifted; run `python manage.py reindex` to repair it")


def _render(report: DriftReport, *, as_json: bool) -> str:
    counts = {
        "checked": report.checked,
        "missing": len(report.missing),
        "stale": len(report.stale),
        "orphaned": len(report.orphaned),
        "repaired": report.repaired,
    }
    if as_json:
        return json.dumps(counts)
    verb = "repaired" if report.repaired else "found"
    return (
        f"{report.checked} searchable documents checked; {verb}: {counts['missing']} missing, "
        f"{counts['stale']} stale, {counts['orphaned']} orphaned"
    )
