"""``python manage.py backup [--tier hourly|daily|weekly] [--include-files] [--verify]``.

Without ``--verify``: back up the database, WORKDIR's manifest (with ``--include-files``
the files too) and Meilisearch into BACKUP_DIR, then prune the tier. With ``--verify``:
restore the newest successful backup (of ``--tier`` when given) into a scratch database
and compare; exit 1 when it does not restore as recorded. See ``ops.backup``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from docuelevate.errors import ApplicationError
from ops.backup import backup_create
from ops.models import BackupTier
from ops.restore import backup_verify


class Command(BaseCommand):
    help = "Back up the database, the WORKDIR manifest and Meilisearch; --verify proves the newest restores."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tier", choices=BackupTier.values, default=None, help="retention tier (default: daily)"
        )
        parser.add_argument(
            "--include-files",
            action="store_true",
            help="put the WORKDIR files into the archive too, not only their checksums",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="make no backup: restore the newest one into a scratch database and compare",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify"]:
            report = backup_verify(tier=options["tier"])
            for line in report.lines():
                self.stdout.write(line)
            if not report.ok:
                raise CommandError("verification failed")
            return
        try:
            record = backup_create(
                tier=options["tier"] or BackupTier.DAILY, include_files=options["include_files"]
            )
        except ApplicationError as exc:
            raise CommandError(f"backup failed: {exc.message}") from None
        self.stdout.write(
            self.style.SUCCESS(f"{record.tier} backup #{record.pk} written: {record.path}")
            + f" ({record.size} bytes, SHA-256 {record.sha256})"
        )
        if record.error:
            self.stdout.write(self.style.WARNING(record.error))
