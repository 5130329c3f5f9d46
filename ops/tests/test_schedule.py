"""The beat schedule: ``setup_periodic_tasks`` writes it idempotently, operators keep their
changes, and a running beat picks up a change in the database without a restart."""

from __future__ import annotations

import datetime
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict
from django_celery_beat.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)
from django_celery_beat.schedulers import ModelEntry

from conftest import current_database_url, log_tail, stop_process_group, wait_until
from ops import schedule
from ops.models import BeatHeartbeat
from ops.schedule import periodic_schedule, periodic_tasks_sync
from ops.tests.test_beat_heartbeat import launch_beat

SHIPPED = {
    "stuck-steps-watchdog",
    "uptime-kuma-heartbeat",
    "backup-hourly",
    "backup-daily",
    "backup-weekly",
    "scratch-sweep",
    "logs-prune",
    "search-reconcile",
    "failed-documents-retry",
    "check-credentials",
    "sources-poll",
    "trash-empty",
    "matchers-retrain",
}


def setup_periodic_tasks(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("setup_periodic_tasks", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def snapshot() -> dict[str, Any]:
    """Every row the schedule consists of, with every field, and beat's change marker."""
    return {
        "tasks": {
            row.name: {**model_to_dict(row), "date_changed": row.date_changed, "last_run_at": row.last_run_at}
            for row in PeriodicTask.objects.all()
        },
        "intervals": list(IntervalSchedule.objects.order_by("pk").values()),
        "crontabs": [{**row, "timezone": str(row["timezone"])} for row in CrontabSchedule.objects.values()],
        "last_change": PeriodicTasks.last_change(),
    }


def operator_edits(name: str, **changes: Any) -> PeriodicTask:
    """Change an entry as the admin does: load, set, save (which tells beat to reload)."""
    row = PeriodicTask.objects.get(name=name)
    for field, value in changes.items():
        setattr(row, field, value)
    row.save()
    return row


def every(amount: int, period: str = "seconds") -> IntervalSchedule:
    interval, _ = IntervalSchedule.objects.get_or_create(every=amount, period=period)
    return interval


@pytest.mark.django_db
def test_the_first_run_writes_every_entry_enabled_on_its_queue_and_expiring_before_its_next_run():
    output = setup_periodic_tasks()

    rows = {row.name: row for row in PeriodicTask.objects.all()}
    assert set(rows) == SHIPPED
    assert "created   backup-daily" in output
    for entry in periodic_schedule():
        row = rows[entry.name]
        assert row.enabled
        assert row.task == entry.task
        assert row.queue == entry.queue
        assert 0 < row.expire_seconds < entry.schedule.seconds
    assert rows["backup-weekly"].kwargs == '{"tier": "weekly"}'
    assert rows["backup-weekly"].queue == "default"
    assert rows["scratch-sweep"].queue == "celery"
    # Credentials are checked every 15 minutes, beside the deliveries they protect.
    assert rows["check-credentials"].queue == "default"
    assert (rows["check-credentials"].interval.every, rows["check-credentials"].interval.period) == (
        15,
        "minutes",
    )


@pytest.mark.django_db
def test_setup_periodic_tasks_twice_is_a_no_op_even_after_beat_ran_the_entries(clock):
    setup_periodic_tasks()
    # Beat records each run on its entry (ModelEntry.save), which the sync must leave alone.
    ran_at = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    for row in PeriodicTask.objects.all():
        row.last_run_at, row.total_run_count, row.no_changes = ran_at, 7, True
        row.save()
    before = snapshot()
    clock.shift(60)  # so a needless save would show in date_changed

    output = setup_periodic_tasks()

    assert snapshot() == before
    assert f"Beat schedule: 0 change(s), {len(SHIPPED)} entries unchanged." in output


@pytest.mark.django_db
def test_an_entry_the_operator_disabled_stays_disabled_while_the_code_owned_fields_are_restored():
    setup_periodic_tasks()
    operator_edits("scratch-sweep", enabled=False, queue="default", kwargs='{"stale": 1}', expire_seconds=9)

    output = setup_periodic_tasks()

    row = PeriodicTask.objects.get(name="scratch-sweep")
    assert row.enabled is False
    assert (row.queue, row.kwargs, row.expire_seconds) == ("celery", "{}", 79200)
    assert "updated   scratch-sweep (kwargs, queue, expire_seconds)" in output
    before = snapshot()
    setup_periodic_tasks()
    assert snapshot() == before


@pytest.mark.django_db
def test_a_schedule_changed_in_the_admin_is_kept_until_reset(settings):
    setup_periodic_tasks()
    operator_edits("search-reconcile", interval=every(15, "minutes"))

    output = setup_periodic_tasks()
    assert PeriodicTask.objects.get(name="search-reconcile").interval == every(15, "minutes")
    assert "kept      search-reconcile: the schedule set in the admin (every 900 seconds)" in output
    # A release that ships another schedule still leaves the operator's alone.
    settings.UPTIME_KUMA_PING_INTERVAL = 2
    setup_periodic_tasks()
    assert PeriodicTask.objects.get(name="search-reconcile").interval == every(15, "minutes")

    setup_periodic_tasks("--reset")
    assert PeriodicTask.objects.get(name="search-reconcile").interval == every(1, "hours")


@pytest.mark.django_db
def test_untouched_entries_follow_a_new_shipped_schedule_in_the_installations_time_zone(settings):
    setup_periodic_tasks()
    operator_edits("backup-weekly", enabled=False)

    settings.TIME_ZONE = "Europe/Berlin"
    settings.UPTIME_KUMA_PING_INTERVAL = 2
    setup_periodic_tasks()

    daily = PeriodicTask.objects.get(name="backup-daily")
    assert (daily.crontab.hour, daily.crontab.minute, str(daily.crontab.timezone)) == (
        "2",
        "30",
        "Europe/Berlin",
    )
    weekly = PeriodicTask.objects.get(name="backup-weekly")
    assert str(weekly.crontab.timezone) == "Europe/Berlin"
    assert weekly.enabled is False  # the schedule followed; the pause did not go away
    heartbeat = PeriodicTask.objects.get(name="uptime-kuma-heartbeat")
    assert heartbeat.interval == every(2, "minutes")
    assert heartbeat.expire_seconds < 120


@pytest.mark.django_db
def test_entries_from_the_old_beat_schedule_are_adopted_with_their_queue_and_expiry():
    # What DatabaseScheduler made of the settings' beat_schedule in the previous release.
    ModelEntry.from_entry(
        "stuck-steps-watchdog",
        task="documents.tasks.stuck_steps_watchdog_task",
        schedule=60.0,
        options={"expires": 55},
    )

    setup_periodic_tasks()

    row = PeriodicTask.objects.get(name="stuck-steps-watchdog")
    assert (row.queue, row.expire_seconds) == ("celery", 55)
    assert row.interval.every * {"seconds": 1, "minutes": 60}[row.interval.period] == 60
    assert PeriodicTask.objects.filter(name="stuck-steps-watchdog").count() == 1


@pytest.mark.django_db
def test_only_retired_shipped_entries_are_removed_and_unknown_tasks_are_reported(monkeypatch):
    setup_periodic_tasks()
    PeriodicTask.objects.create(
        name="nightly-export", task="myplugin.tasks.export", interval=every(1, "days")
    )
    PeriodicTask.objects.create(
        name="old-thumbnailer", task="documents.tasks.thumbnail_task", interval=every(60)
    )
    monkeypatch.setattr(schedule, "RETIRED_NAMES", frozenset({"old-thumbnailer"}))

    output = setup_periodic_tasks()

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert names == SHIPPED | {"nightly-export"}
    assert "removed   old-thumbnailer (no longer shipped)" in output
    assert "entry 'nightly-export' runs 'myplugin.tasks.export', which no worker knows" in output


@pytest.mark.django_db
def test_a_deleted_entry_comes_back_with_the_shipped_schedule():
    setup_periodic_tasks()
    PeriodicTask.objects.get(name="backup-hourly").delete()

    periodic_tasks_sync()

    row = PeriodicTask.objects.get(name="backup-hourly")
    assert (row.crontab.minute, row.crontab.hour, row.enabled) == ("0", "*", True)


# --- A live beat ---------------------------------------------------------------------------------


def test_a_running_beat_follows_an_entry_changed_in_the_database_without_a_restart(
    transactional_db, process_env, start_worker, tmp_path
):
    # Beat and worker on this test's database, passing messages through their own file broker.
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        process_env.pop(name, None)
    process_env["DATABASE_URL"] = current_database_url()
    process_env["LOG_LEVEL"] = "INFO"  # beat says when it noticed the change
    scratch = Path(process_env["WORKDIR"]) / "tmp"
    scratch.mkdir(parents=True)
    leftover, fresh = scratch / "left-by-a-killed-worker.pdf", scratch / "in-use.pdf"
    leftover.write_bytes(b"%PDF-1.7")
    fresh.write_bytes(b"%PDF-1.7")
    two_days_ago = time.time() - 2 * 86400
    os.utime(leftover, (two_days_ago, two_days_ago))
    setup_periodic_tasks()

    worker = start_worker(process_env, queues="celery")
    beat_log = tmp_path / "beat.log"
    beat = launch_beat(process_env, beat_log)
    try:
        wait_until(
            lambda: BeatHeartbeat.objects.filter(identity__endswith=f" {beat.pid}").exists(),
            timeout=45,
            what="beat's heartbeat",
            details=lambda: log_tail(beat_log),
        )
        assert leftover.exists()  # the sweep runs daily at 04:15: not due now

        # What an operator does in the admin: the sweep every 2 seconds, from now on.
        operator_edits("scratch-sweep", crontab=None, interval=every(2))

        wait_until(
            lambda: not leftover.exists(),
            timeout=45,
            what="the sweep to run",
            details=lambda: f"{log_tail(beat_log)}\n{log_tail(next(tmp_path.glob('test-*.log')))}",
        )
        assert fresh.exists()
        assert beat.poll() is None  # the same beat, never restarted
        assert worker.poll() is None
        assert "Schedule changed" in beat_log.read_text()
    finally:
        stop_process_group(beat)
