"""The beat schedule: one table of periodic tasks, and the sync that writes it to the database.

Beat runs django-celery-beat's DatabaseScheduler (``ops.beat``), which reads its entries
from the database and notices a change within seconds, so operators change or pause
entries in the admin without restarting anything. ``periodic_schedule()`` is the one
place the shipped entries are defined; ``periodic_tasks_sync()`` (``manage.py
setup_periodic_tasks``, run after ``migrate`` on every deploy) writes them by name.

Who owns what on an existing entry:

- the code: task, arguments, queue, expiry and description. They must match the code of
  this release, so they are written on every deploy.
- the operator: ``enabled``, always, and the schedule once they changed it. Each entry's
  description ends with the schedule this release ships; a schedule still equal to the
  one recorded there has not been touched, and follows the shipped one (a new release,
  another TIME_ZONE, another UPTIME_KUMA_PING_INTERVAL). A schedule changed in the admin
  stays as it is; ``--reset`` (or deleting the entry) brings back the shipped one.

Nothing is written when nothing differs, so running the sync twice changes no row: beat
is not told to reload, and ``last_run_at`` and ``date_changed`` keep their values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from docuelevate.celery import TASK_ROUTES

IntervalPeriod = Literal["days", "hours", "minutes", "seconds"]
SECONDS_PER: dict[str, float] = {
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
    "microseconds": 1e-6,
}

# Names this project shipped in earlier releases and no longer does: the sync deletes them.
# Entries an operator made in the admin are never touched, whatever their name.
RETIRED_NAMES: frozenset[str] = frozenset()

SHIPPED_MARKER = "Shipped schedule: "
_SHIPPED_LINE = re.compile(rf"^{SHIPPED_MARKER}(?P<label>.+?)\. ", re.MULTILINE)


@dataclass(frozen=True)
class Interval:
    """Every ``every`` days/hours/minutes/seconds, counted from the last run."""

    every: int
    period: IntervalPeriod = "seconds"

    @property
    def seconds(self) -> int:
        return round(self.every * SECONDS_PER[self.period])

    @property
    def label(self) -> str:
        return interval_label(self.every, self.period)


@dataclass(frozen=True)
class Cron:
    """A wall-clock schedule, in the installation's TIME_ZONE; ``period`` is how often it
    fires, which only sets the expiry."""

    period: int
    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"

    @property
    def seconds(self) -> int:
        return self.period

    @property
    def label(self) -> str:
        return cron_label(
            self.minute,
            self.hour,
            self.day_of_month,
            self.month_of_year,
            self.day_of_week,
            settings.TIME_ZONE,
        )


@dataclass(frozen=True)
class PeriodicEntry:
    """One row of the schedule: what runs, when, with which arguments, on which queue."""

    name: str
    task: str
    schedule: Interval | Cron
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        # The routing table decides; an entry of its own could only disagree with it.
        return TASK_ROUTES[self.task]

    @property
    def expires(self) -> int:
        return expiry_for(self.schedule.seconds)


def expiry_for(period: int) -> int:
    """Seconds a sent task stays worth running: just under its period.

    A task still queued when its next run is due is dropped, so a stalled worker finds
    one run waiting when it comes back, not a pile of identical ones.
    """
    return period - max(5, period // 12)


HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY


def periodic_schedule() -> tuple[PeriodicEntry, ...]:
    """The shipped schedule. A function, since some entries follow settings."""
    return (
        PeriodicEntry(
            "stuck-steps-watchdog",
            "documents.tasks.stuck_steps_watchdog_task",
            Interval(60),
            "Fails pipeline steps whose worker vanished, so no document stays 'processing' forever.",
        ),
        PeriodicEntry(
            "uptime-kuma-heartbeat",
            "ops.tasks.heartbeat_push_task",
            Interval(settings.UPTIME_KUMA_PING_INTERVAL, "minutes"),
            "Pushes up/down to UPTIME_KUMA_URL (does nothing when it is unset); the interval is "
            "UPTIME_KUMA_PING_INTERVAL.",
        ),
        PeriodicEntry(
            "backup-hourly",
            "ops.tasks.backup_task",
            Cron(HOUR, minute="0"),
            "Hourly backup (BACKUP_RETAIN_HOURLY are kept).",
            {"tier": "hourly"},
        ),
        PeriodicEntry(
            "backup-daily",
            "ops.tasks.backup_task",
            Cron(DAY, minute="30", hour="2"),
            "Daily backup at 02:30 (BACKUP_RETAIN_DAILY are kept).",
            {"tier": "daily"},
        ),
        PeriodicEntry(
            "backup-weekly",
            "ops.tasks.backup_task",
            Cron(WEEK, minute="10", hour="3", day_of_week="0"),
            "Weekly backup, Sundays at 03:10 (BACKUP_RETAIN_WEEKLY are kept).",
            {"tier": "weekly"},
        ),
        PeriodicEntry(
            "scratch-sweep",
            "ops.tasks.scratch_sweep_task",
            Cron(DAY, minute="15", hour="4"),
            "Deletes files left for a day in WORKDIR/tmp by killed workers and abandoned uploads.",
        ),
        PeriodicEntry(
            "logs-prune",
            "ops.tasks.logs_prune_task",
            Cron(WEEK, minute="45", hour="4", day_of_week="0"),
            "Deletes processing-log and audit-log entries older than LOG_RETENTION_DAYS.",
        ),
        PeriodicEntry(
            "search-reconcile",
            "search.tasks.search_reconcile_task",
            Interval(1, "hours"),
            "Repairs the search index where it drifted from the documents.",
        ),
        PeriodicEntry(
            "check-credentials",
            "destinations.tasks.destinations_check_credentials_task",
            Interval(15, "minutes"),
            "Checks that every enabled destination signs in and can write, and marks the ones that "
            "fail, before documents pile up behind them.",
        ),
        PeriodicEntry(
            "sources-poll",
            "sources.tasks.sources_poll_due_task",
            Interval(1, "minutes"),
            "Hands every mailbox and folder whose poll interval has passed to a worker; each "
            "source's own interval is set on /sources.",
        ),
        PeriodicEntry(
            "trash-empty",
            "documents.tasks.trash_empty_task",
            Cron(DAY, minute="40", hour="4"),
            "Deletes for good the documents that have been in the trash for EMPTY_TRASH_DELAY days "
            "(legal hold stays).",
        ),
        PeriodicEntry(
            "matchers-retrain",
            "documents.tasks.matchers_retrain_due_task",
            Interval(30, "minutes"),
            "Trains the learned matching of each owner who has MATCHING_MIN_DOCUMENTS documents and "
            "no matcher yet, or MATCHING_RETRAIN_AFTER new or corrected documents since the last "
            "training.",
        ),
        PeriodicEntry(
            "failed-documents-retry",
            "ops.tasks.failed_documents_retry_task",
            Interval(6, "hours"),
            "Gives documents that failed for a temporary reason one more run.",
        ),
    )


# --- Writing it to the database ---------------------------------------------------------------


def interval_label(every: int, period: str) -> str:
    # In seconds, so "5 minutes" set in the admin equals the shipped "300 seconds".
    return f"every {round(every * SECONDS_PER[period])} seconds"


def cron_label(
    minute: str, hour: str, day_of_month: str, month_of_year: str, day_of_week: str, tz: str
) -> str:
    return f"cron {minute} {hour} {day_of_month} {month_of_year} {day_of_week} {tz}"


def schedule_label(row: Any) -> str:
    """The schedule of a PeriodicTask row, in the words of ``Interval.label``/``Cron.label``."""
    if row.interval_id is not None:
        return interval_label(row.interval.every, row.interval.period)
    if row.crontab_id is not None:
        crontab = row.crontab
        return cron_label(
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
            str(crontab.timezone),
        )
    return "another kind of schedule"  # solar or clocked, only ever set by an operator


def shipped_label(description: str) -> str | None:
    """The schedule the sync last shipped for an entry, as recorded in its description."""
    found = _SHIPPED_LINE.search(description)
    return found.group("label") if found else None


def full_description(entry: PeriodicEntry) -> str:
    return (
        f"{entry.description}\n{SHIPPED_MARKER}{entry.schedule.label}. setup_periodic_tasks keeps "
        "a schedule changed here; delete the entry or run it with --reset for the shipped one."
    )


@dataclass
class SyncReport:
    """What the sync did, entry by entry, for the command to print."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)  # name -> fields written
    unchanged: list[str] = field(default_factory=list)
    kept_schedule: dict[str, str] = field(default_factory=dict)  # name -> the operator's schedule
    removed: list[str] = field(default_factory=list)


def _schedule_row(schedule: Interval | Cron) -> tuple[str, Any]:
    """The IntervalSchedule or CrontabSchedule row for ``schedule``, reused when one exists."""
    if isinstance(schedule, Interval):
        lookup: dict[str, Any] = {"every": schedule.every, "period": schedule.period}
        model: Any = IntervalSchedule
        field_name = "interval"
    else:
        lookup = {
            "minute": schedule.minute,
            "hour": schedule.hour,
            "day_of_week": schedule.day_of_week,
            "day_of_month": schedule.day_of_month,
            "month_of_year": schedule.month_of_year,
            "timezone": ZoneInfo(settings.TIME_ZONE),
        }
        model = CrontabSchedule
        field_name = "crontab"
    # filter().first(), not get_or_create: the admin lets operators make duplicate rows.
    row = model.objects.filter(**lookup).order_by("pk").first() or model.objects.create(**lookup)
    return field_name, row


def _wanted_fields(entry: PeriodicEntry, row: Any | None) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        "task": entry.task,
        "args": "[]",
        "kwargs": json.dumps(entry.kwargs, sort_keys=True),
        "queue": entry.queue,
        "description": full_description(entry),
    }
    # An end date the operator set (``expires``) and a message expiry cannot both be stored.
    if row is None or row.expires is None:
        wanted["expire_seconds"] = entry.expires
    return wanted


def _same(row: Any, name: str, value: Any) -> bool:
    current = getattr(row, name)
    if name in ("args", "kwargs"):
        try:
            return bool(json.loads(current or "null") == json.loads(value))
        except ValueError:
            return False
    return bool(current == value)


@transaction.atomic
def periodic_tasks_sync(*, reset: bool = False) -> SyncReport:
    """Write the shipped schedule into django-celery-beat's tables, by entry name.

    Idempotent: a second run finds nothing to change and writes nothing. Never deletes an
    entry it did not ship; ``enabled`` is the operator's. ``reset`` also puts back the
    shipped schedule where an operator changed it (``enabled`` still stays).
    """
    report = SyncReport()
    for entry in periodic_schedule():
        row = PeriodicTask.objects.select_related("interval", "crontab").filter(name=entry.name).first()
        if row is None:
            field_name, schedule_row = _schedule_row(entry.schedule)
            PeriodicTask.objects.create(
                name=entry.name, **{field_name: schedule_row}, **_wanted_fields(entry, None)
            )
            report.created.append(entry.name)
            continue
        # Read before anything is written: the description records the last shipped schedule.
        recorded, current = shipped_label(row.description), schedule_label(row)
        wanted = _wanted_fields(entry, row)
        changed = [name for name, value in wanted.items() if not _same(row, name, value)]
        for name in changed:
            setattr(row, name, wanted[name])
        if current != entry.schedule.label:
            if reset or current == recorded:
                field_name, schedule_row = _schedule_row(entry.schedule)
                row.interval = row.crontab = row.solar = row.clocked = None
                setattr(row, field_name, schedule_row)
                changed.append("schedule")
            else:
                report.kept_schedule[entry.name] = current
        if changed:
            row.save()
            report.updated[entry.name] = changed
        else:
            report.unchanged.append(entry.name)
    retired = PeriodicTask.objects.filter(name__in=RETIRED_NAMES)
    report.removed = sorted(retired.values_list("name", flat=True))
    for row in retired:
        row.delete()  # one by one: PeriodicTask.delete() tells beat to reload
    return report


def periodic_tasks_unknown() -> list[tuple[str, str]]:
    """Enabled entries whose task no worker of this release knows: (entry name, task).

    Such an entry is sent on schedule and refused by every worker; the sync cannot know
    whether an operator still wants it, so it only says so.
    """
    from docuelevate.celery import app

    app.loader.import_default_modules()
    rows = PeriodicTask.objects.filter(enabled=True).order_by("name").values_list("name", "task")
    return [(name, task) for name, task in rows if task not in app.tasks]
