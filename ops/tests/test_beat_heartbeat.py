"""Beat writes a heartbeat, so productioncheck can tell none, one and several beats apart.

Real ``celery -A docuelevate beat`` processes run against the test's database; only the
"two minutes ago" cases are written directly, since waiting for a heartbeat to age would
take minutes.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from conftest import PROJECT_DIR, child_env, current_database_url, log_tail, stop_process_group, wait_until
from ops.beat import beat_identity, heartbeat_record
from ops.checks import Status, check_beat
from ops.models import BeatHeartbeat

STARTUP_TIMEOUT = 60  # seconds for a beat process to write its first heartbeat


def launch_beat(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``celery beat`` as an operator would, leading its own process group."""
    with log.open("wb") as output:
        return subprocess.Popen(
            # No pidfile: two beats on one machine are exactly what some tests need.
            [sys.executable, "-m", "celery", "-A", "docuelevate", "beat", "--loglevel", "INFO", "--pidfile="],
            cwd=PROJECT_DIR, env=child_env(env), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def heartbeat_of(beat: subprocess.Popen[bytes]) -> BeatHeartbeat | None:
    return BeatHeartbeat.objects.filter(identity__endswith=f" {beat.pid}").first()


def wait_for_heartbeat(beat: subprocess.Popen[bytes], log: Path) -> BeatHeartbeat:
    def written() -> BeatHeartbeat | None:
        if beat.poll() is not None:
            pytest.fail(f"beat exited with {beat.returncode}\n{log_tail(log)}")
        return heartbeat_of(beat)

    return wait_until(
        written,
        timeout=STARTUP_TIMEOUT,
        what=f"beat {beat.pid} to write a heartbeat",
        interval=0.3,
        details=lambda: log_tail(log),
    )


@pytest.fixture
def beat_env(transactional_db: None, process_env: dict[str, str]) -> dict[str, str]:
    """Beat on this test's database, sending its tasks to a file broker of its own."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        process_env.pop(name, None)
    process_env["DATABASE_URL"] = current_database_url()
    return process_env


@pytest.fixture
def start_beat(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], tuple[subprocess.Popen[bytes], Path]]]:
    """Start real beat processes, each with its log in tmp_path; all are stopped at the end."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"beat-{len(started)}.log"
        started.append((launch_beat(env, log), log))
        return started[-1]

    yield start
    for beat, _log in started:
        stop_process_group(beat)


def test_a_running_beat_writes_a_heartbeat_and_the_check_sees_exactly_one(beat_env, start_beat):
    beat, log = start_beat(beat_env)
    heartbeat = wait_for_heartbeat(beat, log)

    result = check_beat()

    assert result.status is Status.PASS, result
    assert heartbeat.identity in result.reason
    assert heartbeat.last_seen > timezone.now() - datetime.timedelta(minutes=1)


def test_two_beats_warn_the_check_until_one_stops_and_removes_its_heartbeat(beat_env, start_beat):
    first, first_log = start_beat(beat_env)
    second, second_log = start_beat(beat_env)
    wait_for_heartbeat(first, first_log)
    wait_for_heartbeat(second, second_log)

    # Only the lease's holder sends (ops/tests/test_beat_lease.py): a second beat is a warning.
    result = wait_until(
        lambda: (found := check_beat()).facts.get("sending") and found,
        timeout=STARTUP_TIMEOUT,
        what="one of the beats to hold the lease",
    )
    assert result.status is Status.WARN
    assert "beat runs 2 times" in result.reason
    assert "sends the periodic tasks" in result.reason
    assert "stands by, sending nothing" in result.reason
    assert "run exactly one beat" in result.fix

    stop_process_group(second)  # SIGTERM: beat shuts down cleanly
    assert second.returncode == 0, log_tail(second_log)
    assert heartbeat_of(second) is None
    assert check_beat().status is Status.PASS


@pytest.mark.django_db
def test_no_heartbeat_in_the_last_two_minutes_means_beat_is_not_running():
    assert "beat is not running" in check_beat().reason

    now = timezone.now()
    heartbeat_record(identity="old-host 4711", now=now - datetime.timedelta(minutes=3))
    result = check_beat(now=now)

    assert result.status is Status.FAIL
    assert "beat is not running" in result.reason
    assert "last heartbeat" in result.reason
    assert "celery -A docuelevate beat" in result.fix


@pytest.mark.django_db
def test_a_heartbeat_updates_its_own_row_and_forgets_beats_silent_for_a_day():
    now = timezone.now()
    heartbeat_record(identity="gone-host 1", now=now - datetime.timedelta(days=2))
    identity = beat_identity()
    heartbeat_record(identity=identity, now=now - datetime.timedelta(seconds=30))
    heartbeat_record(identity=identity, now=now)

    assert list(BeatHeartbeat.objects.values_list("identity", "last_seen")) == [(identity, now)]
