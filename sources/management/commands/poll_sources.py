"""manage.py poll_sources: poll every enabled source (or one) in this process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sources.folder_events import FolderEvents
from sources.models import Source, SourceKind
from sources.polling import PollStatus, source_poll, sources_due
from sources.services import system_sources_sync


class Command(BaseCommand):
    help = (
        "Polls every enabled source (mailboxes, watched and remote folders): with --once each "
        "one once, then exits; without, each whenever its turn comes, and a local watched "
        "folder also as soon as a file in it has settled (filesystem events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="poll each source once and exit")
        parser.add_argument("--source", metavar="NAME", help="only the source with this name")

    def handle(self, *args: Any, **options: Any) -> None:
        system_sources_sync()
        sources = Source.objects.filter(enabled=True)
        if options["source"]:
            sources = sources.filter(name=options["source"])
            if not sources.exists():
                raise CommandError(f"No enabled source named {options['source']!r}.")
        if not options["once"]:
            self._poll_forever(set(sources.values_list("pk", flat=True)))
        failed = self._poll_all(list(sources.values_list("pk", "name")))
        if failed:
            raise CommandError(f"{failed} source(s) failed; the reasons are above and on /sources.")

    def _poll_forever(self, chosen: set[int]) -> None:
        """Beat's job done in this process: each chosen source whenever its turn comes
        (looked at every minute), and a watched folder once a file in it has settled."""
        watched = Source.objects.filter(pk__in=chosen, kind=SourceKind.WATCH)
        events = FolderEvents(
            {
                source.pk: (Path(source.settings["path"]), int(source.settings.get("settle_seconds", 0)))
                for source in watched
            }
        )
        next_turns = 0.0
        while True:
            wanted = set(events.wait())
            if time.monotonic() >= next_turns:
                wanted |= set(sources_due()) & chosen
                next_turns = time.monotonic() + 60
            if wanted:
                self._poll_all(list(Source.objects.filter(pk__in=wanted).values_list("pk", "name")))

    def _poll_all(self, sources: list[tuple[int, str]]) -> int:
        failed = 0
        for source_id, name in sources:
            outcome = source_poll(source_id=source_id, worker_name="poll_sources")
            failed += outcome.status == PollStatus.FAILED
            line: dict[str, Any] = {
                "source": name,
                "status": outcome.status.value,
                "documents": outcome.documents,
            }
            if outcome.error:
                line |= {"error": outcome.error, "error_kind": outcome.error_kind}
            self.stdout.write(json.dumps(line))
        return failed
