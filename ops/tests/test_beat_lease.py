"""Beat started twice: only the holder of the beat lease sends, the other stands by and takes
over when the first dies, and no periodic task is sent twice.

The proof runs two real ``celery beat`` processes on the test's database, with a periodic
task every two seconds and a four-second lease. No worker runs: every message beat sends
stays in the file broker's queue, one file each, so the files are what was sent, and when.
"""

from __future__ import annotations

import datetime
import itertools
import os
import signal
from pathlib import Path

import pytest
from django.db.models.functions import Now
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from conftest import log_tail, wait_until
from ops.beat import LEASE_NAME, beat_lease_holder, beat_lease_release, beat_lease_take
from ops.checks import Status, check_beat
from ops.models import BeatLease
from ops.tests.test_beat_heartbeat import STARTUP_TIMEOUT, beat_env, start_beat, wait_for_heartbeat

__all__ = ["beat_env", "start_beat"]  # fixtures used here

EVERY = 2  # seconds between two runs of the probe task
LEASE = 4  # BEAT_LEASE_SECONDS for the beats of this test
PROBE_TASK = "ops.tests.beat_lease_probe"  # no such task: beat sends by name, nobody runs it


@pytest.mark.django_db
def test_the_lease_goes_to_one_beat_at_a_time_and_to_another_once_released_or_expired():
    assert beat_lease_take(identity="host-a 1", seconds=60) == "host-a 1"
    assert beat_lease_take(identity="host-b 2", seconds=60) == "host-a 1"  # b stands by
    assert beat_lease_take(identity="host-a 1", seconds=60) == "host-a 1"  # a renews
    assert beat_lease_holder() == "host-a 1"

    beat_lease_release(identity="host-b 2")  # not b's to give
    assert beat_lease_holder() == "host-a 1"
    beat_lease_release(identity="host-a 1")  # a clean stop
    assert beat_lease_holder() == ""
    assert beat_lease_take(identity="host-b 2", seconds=60) == "host-b 2"

    # b dies without a word: its lease runs out on the database's clock.
    BeatLease.objects.filter(name=LEASE_NAME).update(expires_at=Now() - datetime.timedelta(seconds=1))
    assert beat_lease_holder() == ""
    assert beat_lease_take(identity="host-a 1", seconds=60) == "host-a 1"
    assert BeatLease.objects.count() == 1


def sent_at(queue: Path) -> list[int]:
    """When each message of the probe task reached the broker (ns), oldest first."""
    times = []
    for message in queue.glob("*.msg"):
        if PROBE_TASK in message.read_text(errors="replace"):
            times.append(message.stat().st_mtime_ns)
    return sorted(times)


def test_a_second_beat_stands_by_and_takes_over_when_the_first_is_killed_and_no_run_is_sent_twice(
    beat_env, start_beat
):
    beat_env["BEAT_LEASE_SECONDS"] = str(LEASE)
    queue = Path(beat_env["WORKDIR"]) / "broker" / "queue"
    interval, _ = IntervalSchedule.objects.get_or_create(every=EVERY, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="beat-lease-probe", task=PROBE_TASK, interval=interval, queue="celery")

    first, first_log = start_beat(beat_env)
    wait_for_heartbeat(first, first_log)
    wait_until(
        lambda: beat_lease_holder().endswith(f" {first.pid}"),
        timeout=STARTUP_TIMEOUT,
        what="the first beat to take the lease",
        details=lambda: log_tail(first_log),
    )
    second, second_log = start_beat(beat_env)
    wait_for_heartbeat(second, second_log)
    wait_until(
        lambda: "stands by" in second_log.read_text(),
        timeout=STARTUP_TIMEOUT,
        what="the second beat to notice the first and stand by",
        details=lambda: log_tail(second_log),
    )

    # Detected: the check names both, and which one sends.
    result = check_beat()
    assert result.status is Status.WARN, result
    assert result.facts["running"] == 2
    assert result.facts["sending"].endswith(f" {first.pid}")

    # Both run for three more intervals: the task is sent once per interval, by the first.
    before = len(sent_at(queue))
    wait_until(lambda: len(sent_at(queue)) >= before + 3, timeout=30, what="three more runs")
    assert beat_lease_holder().endswith(f" {first.pid}")

    os.killpg(first.pid, signal.SIGKILL)  # no clean stop: its lease must run out
    first.wait()
    killed_with = len(sent_at(queue))
    wait_until(
        lambda: beat_lease_holder().endswith(f" {second.pid}"),
        timeout=LEASE * 3,
        what="the second beat to take over",
        details=lambda: log_tail(second_log),
    )
    wait_until(
        lambda: len(sent_at(queue)) >= killed_with + 2,
        timeout=30,
        what="the second beat to send the task",
        details=lambda: log_tail(second_log),
    )
    assert second.poll() is None

    sent = sent_at(queue)
    gaps = [(later - earlier) / 1e9 for earlier, later in itertools.pairwise(sent)]
    # Two beats sending would put two messages within moments of each other; one beat keeps
    # them an interval apart, and the takeover leaves a gap of about the lease.
    assert min(gaps) > EVERY * 0.6, (gaps, log_tail(first_log), log_tail(second_log))
    assert max(gaps) < LEASE + EVERY * 3, gaps
    assert "takes over from" in second_log.read_text()
