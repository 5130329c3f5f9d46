"""``python manage.py restore BACKUP [--force]``: replace the database with a backup's.

BACKUP is an archive, a folder of archives (the newest is taken) or a backup record id.
A database that holds data is replaced only with ``--force``. Stop the web, worker and
beat processes first. See ``ops.restore``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from docuelevate.errors import ApplicationError
from ops.restore import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup (archive, folder of archives or record id); --force replaces a database with data."
    )
    # The database may be empty or of another version; nothing must touch it before the restore.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "backup", help="a backup archive, a folder of them (the newest is used) or a record id"
        )
        parser.add_argument(
            "--force", action="store_true", help="replace the database even though it holds data"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = backup_restore(source=options["backup"], force=options["force"])
        except ApplicationError as exc:
            raise CommandError(f"restore failed: {exc.message}") from None
        for line in report.lines():
            style = self.style.WARNING if line.startswith(("WARNING", "the backup predates")) else str
            self.stdout.write(style(line))
