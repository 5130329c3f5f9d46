"""Benchmark: a bulk edit of 10,000 documents, against the same change made by hand in SQL.

    .venv/bin/python bench/bulk_edit.py [--count 10000]
        [--database-url postgresql://postgres@127.0.0.1:5432/docuelevate_bench_bulk]

Without ``--database-url`` the archive is an SQLite file in a temporary folder (the
embedded default); with one, a throwaway PostgreSQL database of that name, dropped at the
end. The archive is seeded by bench/api.py's seeding (realistic documents, tags, steps,
statuses; about seven in ten finished and filed).

Two changes over every document, each timed twice in the same run:

- through DocuElevate: ``bulk_edit_start`` with the files list's empty filter (every
  document), then the task body in this process (``bulk_edit_task``), chunk by chunk, with
  all it does per document: history rows, user fields, version, the audit entry, the search
  entries rewritten and every finished document queued to be filed again (sent to the
  embedded broker, as a server would);
- the baseline: the one SQL statement an administrator would type into the database
  instead (an INSERT … SELECT of the tag rows, an UPDATE of the correspondent), which does
  none of that.

Prints seconds, documents per second and the ratio DocuElevate / one SQL statement.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as seeding  # bench/api.py: the same seeding as the list benchmark


def setup(database_url: str | None, workdir: Path) -> str | None:
    """Configure Django; returns the PostgreSQL database's name to drop at the end."""
    if database_url is None:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "docuelevate.settings",
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
                "WORKDIR": str(workdir),
                "DEBUG": "false",
                "SESSION_SECRET": secrets.token_urlsafe(48),
                "LOG_LEVEL": "WARNING",
            }
        )
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            os.environ.pop(name, None)
        sys.path.insert(0, str(seeding.PROJECT_DIR))
        import django

        django.setup()
        return None
    name = urlsplit(database_url).path.lstrip("/") or "docuelevate_bench_bulk"
    seeding.admin_execute(database_url, seeding.drop_database(name), seeding.create_database(name))
    seeding.setup_django(database_url, name, workdir)
    return name


def seed(count: int) -> tuple[Any, float]:
    from django.core.management import call_command
    from django.db import OperationalError, connection

    from accounts.models import User

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user(username="bench", email="bench@example.org")
    started = time.perf_counter()
    try:
        seeding.seed(owner_id=owner.pk, count=count)
    except OperationalError:
        # The seeding ends with PostgreSQL's VACUUM ANALYZE, once every batch is committed;
        # SQLite refuses that spelling and says ANALYZE.
        if connection.vendor != "sqlite":
            raise
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    seconds = time.perf_counter() - started
    return owner, seconds


def through_docuelevate(owner: Any, action: str, parameters: dict[str, Any]) -> tuple[float, Any]:
    """Seconds for the whole bulk edit: start (selection resolved) and the task body."""
    from accounts.access import Viewer
    from documents import tasks
    from documents.models import BulkOperation
    from documents.organise.bulk import bulk_edit_start

    sent: list[str] = []
    real_delay = tasks.bulk_edit_task.delay
    tasks.bulk_edit_task.delay = sent.append  # type: ignore[method-assign,assignment]  # run here instead
    try:
        started = time.perf_counter()
        operation = bulk_edit_start(
            viewer=Viewer(user=owner), selection={"query": {}}, action=action, parameters=parameters
        )
        tasks.bulk_edit_task(sent[0])
        seconds = time.perf_counter() - started
    finally:
        tasks.bulk_edit_task.delay = real_delay  # type: ignore[method-assign]
    return seconds, BulkOperation.objects.get(pk=operation.pk)


def by_hand(statement: str, params: list[Any]) -> float:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()
    dropped: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bulk-") as workdir:
            dropped = setup(args.database_url, Path(workdir))
            from django.db import connection

            from documents.models import Correspondent, Document, DocumentChange, ProcessingStep, Tag

            owner, seeded = seed(args.count)
            total = Document.objects.count()
            print(f"{connection.vendor}: {total:,} documents seeded in {seeded:.1f} s")
            tagging = Document.tags.through._meta.db_table
            documents = Document._meta.db_table
            # What the worker would have made of the finished documents by the next change:
            # filed again, finished again (so each change files as many again).
            filed = list(
                Document.objects.filter(status="completed")
                .exclude(processed_file="")
                .values_list("pk", flat=True)
            )
            print(f"finished and filed, so filed again by each change: {len(filed):,}")
            rows = []
            for label, action, make in (
                ("add a tag", "add_tags", lambda name: Tag.objects.create(owner=owner, name=name)),
                (
                    "set the correspondent",
                    "set_correspondent",
                    lambda name: Correspondent.objects.create(owner=owner, name=name),
                ),
            ):
                mine, theirs = make(f"Bulk {action}"), make(f"By hand {action}")
                if action == "add_tags":
                    # Table names from Django's own models, no input: nothing to inject.
                    statement = f"INSERT INTO {tagging} (document_id, tag_id) SELECT id, %s FROM {documents}"  # noqa: S608
                    sql_seconds = by_hand(statement, [theirs.pk])
                    seconds, operation = through_docuelevate(owner, action, {"tags": [mine.pk]})
                else:
                    statement = f"UPDATE {documents} SET correspondent_id = %s"  # noqa: S608  # as above
                    sql_seconds = by_hand(statement, [theirs.pk])
                    seconds, operation = through_docuelevate(owner, action, {"correspondent": mine.pk})
                assert (operation.status, operation.done) == ("done", total), operation
                rows.append((label, seconds, sql_seconds, operation.failed))
                ProcessingStep.objects.filter(document_id__in=filed).update(status="success")
                Document.objects.filter(pk__in=filed).update(status="completed")
            history = DocumentChange.objects.count()
            print(f"history rows written: {history:,}")
            print(f"{'change':<24}{'DocuElevate':>14}{'docs/s':>10}{'one SQL':>12}{'ratio':>9}{'refused':>9}")
            for label, seconds, sql_seconds, failed in rows:
                print(
                    f"{label:<24}{seconds:>12.2f} s{total / seconds:>10,.0f}{sql_seconds:>10.3f} s"
                    f"{seconds / sql_seconds:>8.0f}x{failed:>9}"
                )
            connection.close()
    finally:
        if dropped is not None and args.database_url:
            seeding.admin_execute(args.database_url, seeding.drop_database(dropped))


if __name__ == "__main__":
    main()
