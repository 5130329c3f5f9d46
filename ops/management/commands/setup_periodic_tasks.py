"""``manage.py setup_periodic_tasks``: write the beat schedule into the database.

Run after ``migrate`` on every deploy (``make run`` does). See ``ops.schedule`` for which
fields it writes and which it leaves to the operator.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ops.schedule import periodic_tasks_sync, periodic_tasks_unknown


class Command(BaseCommand):
    help = "Write the beat schedule (ops/schedule.py) into django-celery-beat's tables; safe to repeat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Also put back the shipped schedule of entries whose schedule was changed in the admin.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = periodic_tasks_sync(reset=options["reset"])
        for name in report.created:
            self.stdout.write(f"created   {name}")
        for name, fields in report.updated.items():
            self.stdout.write(f"updated   {name} ({', '.join(fields)})")
        for name, schedule in report.kept_schedule.items():
            self.stdout.write(f"kept      {name}: the schedule set in the admin ({schedule})")
        for name in report.removed:
            self.stdout.write(f"removed   {name} (no longer shipped)")
        if options["verbosity"] > 1:
            for name in report.unchanged:
                self.stdout.write(f"unchanged {name}")
        for name, task in periodic_tasks_unknown():
            # A warning, not a failure: a deploy must not stop over an operator's old entry.
            self.stderr.write(
                self.style.WARNING(
                    f"entry {name!r} runs {task!r}, which no worker knows: fix or delete it in the admin"
                )
            )
        total = len(report.created) + len(report.updated) + len(report.removed)
        self.stdout.write(
            self.style.SUCCESS(
                f"Beat schedule: {total} change(s), {len(report.unchanged)} entries unchanged."
            )
        )
