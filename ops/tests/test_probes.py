"""The probes and /api/health: what Kubernetes, a load balancer and an operator are told.

The live tests run gunicorn against a PostgreSQL cluster and a Redis server of their own
(ops/tests/servers.py), which they stop and start again.
The rest uses the Django test client, with a check replaced where a failure is the point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.services import token_create
from conftest import LiveServer, log_tail, wait_until
from destinations.models import Destination
from ops import health
from ops.checks import Status, check_redis
from ops.models import BackupRecord, BackupStatus, BackupTier
from ops.tests.servers import MigratedDatabase, ThrowawayRedis, server_env
from sources.models import Source, SourceKind

LIVE = "/api/diagnostic/healthz/live"
READY = "/api/diagnostic/healthz/ready"
# WORKDIR above its free-space floor (MIN_FREE_DISK_MB), as on any test machine.
DISK_OK = {"status": "ok", "paused": False}
HEALTH_ROUTES = ["/api/diagnostic/health", "/api/health"]
# What a kubelet sends: the pod's address, which ALLOWED_HOSTS does not list.
POD_HOST = "10.42.0.17:8000"
HEALTH_CHECK_NAMES = {
    "database", "redis", "broker", "workers", "search", "workdir", "migrations", "backup", "destinations",
    "sources",
}  # fmt: skip


def _failing(message: str) -> Callable[[], health.CheckResult]:
    def check() -> health.CheckResult:
        raise OperationalError(message)

    return check


# The chart's readinessProbe.timeoutSeconds: the kubelet gives up on a slower answer.
KUBELET_TIMEOUT = 5


def _ready(server: LiveServer, timeout: float = 10) -> requests.Response:
    return requests.get(f"{server.url}{READY}", headers={"Host": POD_HOST}, timeout=timeout)


def _ready_until(server: LiveServer, expected: dict[str, Any], seconds: float = 30) -> requests.Response:
    """Ask until the answer is ``expected`` (a service coming back takes a moment)."""
    answer = _ready(server)

    def as_expected() -> bool:
        nonlocal answer
        answer = _ready(server)
        return bool(answer.json() == expected)

    wait_until(
        as_expected,
        timeout=seconds,
        what=f"readiness to answer {expected}",
        interval=0.3,
        details=lambda: f"it answers {answer.status_code} {answer.text}\n{log_tail(server.log)}",
    )
    return answer


# --- Live: gunicorn with its database and Redis going away ------------------------------------


def test_readiness_follows_postgresql_going_down_and_coming_back(
    migrated_postgres: MigratedDatabase,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> None:
    cluster = migrated_postgres.cluster
    server = start_gunicorn(server_env(process_env, cluster, Path(process_env["WORKDIR"])))
    no_redis = {"status": "not_configured"}
    ready = {"status": "ready", "checks": {"database": {"status": "ok"}, "redis": no_redis, "disk": DISK_OK}}
    answer = _ready(server)
    assert answer.status_code == 200, log_tail(server.log)
    assert answer.json() == ready

    cluster.stop()
    try:
        # Answered while the kubelet still waits for it, not after the database's own timeouts.
        answer = _ready(server, timeout=KUBELET_TIMEOUT)
        assert answer.status_code == 503
        # Exactly this: no exception text, no host or port of the database.
        assert answer.json() == {
            "status": "not_ready",
            "checks": {"database": {"status": "error"}, "redis": no_redis, "disk": DISK_OK},
        }
        assert requests.get(f"{server.url}{LIVE}", headers={"Host": POD_HOST}, timeout=10).json() == {
            "status": "ok"
        }
    finally:
        cluster.start()

    answer = _ready_until(server, ready)
    assert answer.status_code == 200, answer.text
    # The workers' own connections, broken by the restart, are replaced: requests that read
    # the database (the token lookup) work again, in whichever worker answers.
    for _ in range(4):
        answered = requests.get(
            f"{server.url}/api/health",
            headers={"Authorization": f"Bearer {migrated_postgres.token}"},
            timeout=30,
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["checks"]["database"]["status"] == "ok"


def test_readiness_stays_200_and_reports_redis_while_redis_is_down(
    migrated_postgres: MigratedDatabase,
    throwaway_redis: ThrowawayRedis,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> None:
    env = server_env(process_env, migrated_postgres.cluster, Path(process_env["WORKDIR"]))
    env["REDIS_URL"] = throwaway_redis.url
    server = start_gunicorn(env)
    checks: dict[str, object] = {"database": {"status": "ok"}, "redis": {"status": "ok"}, "disk": DISK_OK}
    all_ok = {"status": "ready", "checks": checks}
    redis_down = {"status": "ready", "checks": {**checks, "redis": {"status": "error"}}}
    answer = _ready(server)
    assert answer.status_code == 200, log_tail(server.log)
    assert answer.json() == all_ok

    throwaway_redis.stop()
    answer = _ready(server)
    assert answer.status_code == 200
    assert answer.json() == redis_down

    throwaway_redis.start()
    answer = _ready_until(server, all_ok)
    assert answer.json() == all_ok


# --- The probes in-process ----------------------------------------------------------------------


def test_liveness_answers_ok_whatever_the_host_header(client: Client) -> None:
    answer = client.get(LIVE, HTTP_HOST=POD_HOST)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert "no-cache" in answer["Cache-Control"]


def test_liveness_touches_no_database(client: Client) -> None:
    # No db fixture: pytest-django would fail any query this made.
    assert client.get(LIVE).status_code == 200


@pytest.mark.django_db
def test_readiness_answers_ready_for_a_pod_ip_host(client: Client, settings: Any) -> None:
    settings.REDIS_URL = None
    answer = client.get(READY, HTTP_HOST=POD_HOST)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "not_configured"},
            "disk": DISK_OK,
        },
    }


@pytest.mark.django_db
def test_probes_are_not_redirected_to_https_behind_the_proxy(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/api/files").status_code == 301  # what every other route gets over http
    assert client.get(LIVE, HTTP_HOST=POD_HOST).status_code == 200
    assert client.get(READY, HTTP_HOST=POD_HOST).status_code == 200


def test_probes_answer_only_reads(client: Client) -> None:
    assert client.post(LIVE).status_code == 405


@pytest.mark.django_db
def test_readiness_is_503_without_exception_text_when_the_database_fails(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = None
    monkeypatch.setitem(health.READY_CHECKS, "database", _failing("could not connect to db.internal:5432"))
    answer = client.get(READY)
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not_ready",
        "checks": {
            "database": {"status": "error"},
            "redis": {"status": "not_configured"},
            "disk": DISK_OK,
        },
    }


@pytest.mark.django_db
def test_a_check_that_hangs_is_answered_as_an_error_once_its_time_is_up(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = "redis://10.255.255.1:6379/0"
    released = threading.Event()

    def hanging() -> health.CheckResult:
        released.wait(60)
        return health.ok()

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.3)
    monkeypatch.setitem(health.READY_CHECKS, "redis", hanging)
    try:
        answer = client.get(READY)
    finally:
        released.set()
    assert answer.status_code == 200
    assert answer.json()["checks"]["redis"] == {"status": "error"}


# --- /api/health --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route", HEALTH_ROUTES)
def test_health_refuses_an_anonymous_caller_with_401_json(client: Client, route: str) -> None:
    answer = client.get(route)
    assert answer.status_code == 401
    assert answer["Content-Type"] == "application/json"
    assert set(answer.json()) == {"detail"}


@pytest.mark.parametrize("route", HEALTH_ROUTES)
def test_health_with_an_api_token_reports_every_check(client: Client, owner: User, route: str) -> None:
    _token, raw = token_create(user=owner, name="monitor")
    answer = client.get(route, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] in {"healthy", "degraded"}
    assert body["version"]
    assert body["timestamp"]
    assert set(body["checks"]) == HEALTH_CHECK_NAMES
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"] == {"status": "ok", "pending": 0}
    assert body["checks"]["workdir"]["writable"] is True
    assert body["checks"]["workdir"]["free_bytes"] > 0
    assert body["checks"]["search"]["backend"] in {"database", "meilisearch"}
    assert answer["Cache-Control"] == "no-store"


def test_health_answers_a_signed_in_user(client: Client, owner: User) -> None:
    client.force_login(owner)
    assert client.get("/api/health").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_health_reports_the_newest_successful_backup(client: Client, owner: User, clock: Any) -> None:
    finished = timezone.now() - timedelta(hours=3)
    BackupRecord.objects.create(
        tier=BackupTier.HOURLY, status=BackupStatus.SUCCEEDED, started_at=finished, finished_at=finished
    )
    # A newer failed run is not a backup.
    BackupRecord.objects.create(
        tier=BackupTier.HOURLY, status=BackupStatus.FAILED, finished_at=timezone.now()
    )
    client.force_login(owner)
    backup = client.get("/api/health").json()["checks"]["backup"]
    assert backup["status"] == "ok"
    assert backup["last_success"] == finished.isoformat()
    assert backup["age_seconds"] == 3 * 3600


@pytest.mark.django_db(transaction=True)
def test_health_is_degraded_when_no_backup_ever_succeeded(client: Client, owner: User) -> None:
    client.force_login(owner)
    body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["backup"]["status"] == "warning"
    assert body["checks"]["backup"]["last_success"] is None


def test_health_is_unhealthy_503_when_the_database_fails(
    client: Client, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        health.HEALTH_CHECKS, "database", _failing("password authentication failed for user x")
    )
    client.force_login(owner)
    answer = client.get("/api/diagnostic/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == {"status": "error", "reason": "unreachable"}
    # What reads the database is not even tried.
    assert body["checks"]["migrations"]["status"] == "error"
    assert body["checks"]["backup"]["status"] == "error"
    assert body["checks"]["destinations"]["status"] == "error"
    assert "password" not in answer.content.decode()


def test_one_redis_probe_names_the_host_to_the_checklist_and_only_unreachable_to_the_api(
    client: Client, owner: User, settings: Any
) -> None:
    # Port 1 on the loopback: nothing listens there, the connection is refused at once.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    item = check_redis()
    client.force_login(owner)
    answer = client.get("/api/health")

    assert item.status is Status.FAIL
    assert "Redis at 127.0.0.1:1 does not answer" in item.reason
    assert answer.json()["checks"]["redis"] == {"status": "error", "reason": "unreachable"}
    assert "127.0.0.1:1" not in answer.content.decode()


# --- Destinations -------------------------------------------------------------------------------


def _destination(name: str, health: str, *, owner: User | None = None, enabled: bool = True) -> Destination:
    return Destination.objects.create(
        kind="s3",
        name=name,
        owner=owner,
        enabled=enabled,
        settings={"bucket": "archive", "endpoint_url": "https://s3.internal.example:9000"},
        health_status=health,
        health_error="S3 refused the credentials (InvalidAccessKeyId)" if health == "failing" else "",
        health_error_kind="configuration" if health == "failing" else "",
    )


@pytest.mark.django_db(transaction=True)
def test_health_without_destinations_reports_them_not_configured(client: Client, owner: User) -> None:
    client.force_login(owner)
    body = client.get("/api/health").json()
    assert body["checks"]["destinations"] == {"status": "not_configured"}


@pytest.mark.django_db(transaction=True)
def test_failing_destinations_make_health_degraded_naming_only_the_system_wide_ones(
    client: Client, owner: User, other_user: User
) -> None:
    _destination("Company archive", "failing")
    _destination("Bob's private bucket", "failing", owner=other_user)
    _destination("Working archive", "ok")
    _destination("Never checked", "unknown", owner=owner)
    _destination("Switched off", "failing", enabled=False)
    client.force_login(owner)

    answer = client.get("/api/health")

    assert answer.status_code == 200  # degraded, never unhealthy: documents are still processed
    body = answer.json()
    assert body["checks"]["destinations"] == {
        "status": "warning",
        "enabled": 4,
        "failing": 2,
        "unchecked": 1,
        "failing_system_wide": ["Company archive"],
    }
    assert body["status"] == "degraded"
    text = answer.content.decode()
    for private in ("Bob's private bucket", "InvalidAccessKeyId", "s3.internal.example", "Switched off"):
        assert private not in text


@pytest.mark.django_db(transaction=True)
def test_working_destinations_leave_the_health_answer_alone(client: Client, owner: User) -> None:
    _destination("Company archive", "ok")
    _destination("New one", "unknown")
    client.force_login(owner)
    destinations = client.get("/api/health").json()["checks"]["destinations"]
    assert destinations == {
        "status": "ok", "enabled": 2, "failing": 0, "unchecked": 1, "failing_system_wide": []
    }  # fmt: skip


# --- Sources ------------------------------------------------------------------------------------


def _source(name: str, error_kind: str = "", *, owner: User | None = None, enabled: bool = True) -> Source:
    """A source as its last poll left it: failing with ``error_kind``, else working."""
    return Source.objects.create(
        kind=SourceKind.IMAP,
        name=name,
        owner=owner,
        enabled=enabled,
        settings={"host": "mail.internal.example", "username": "scans"},
        last_poll_at=timezone.now(),
        last_success_at=None if error_kind else timezone.now(),
        last_error="The mail server refused the sign-in of scans: check the password." if error_kind else "",
        last_error_kind=error_kind,
    )


@pytest.mark.django_db(transaction=True)
def test_health_without_sources_reports_them_not_configured(client: Client, owner: User) -> None:
    client.force_login(owner)
    body = client.get("/api/health").json()
    assert body["checks"]["sources"] == {"status": "not_configured"}


@pytest.mark.django_db(transaction=True)
def test_failing_sources_make_health_degraded_naming_the_system_wide_ones_and_why(
    client: Client, owner: User, other_user: User
) -> None:
    _source("Scanner inbox", "configuration")
    _source("Invoices", "temporary")
    _source("Bob's mailbox", "configuration", owner=other_user)
    _source("Working inbox")
    Source.objects.create(kind=SourceKind.WATCH, name="New folder", settings={"path": "/srv/new"})
    _source("Switched off", "configuration", enabled=False)
    client.force_login(owner)

    answer = client.get("/api/diagnostic/health")

    assert answer.status_code == 200  # degraded, never unhealthy: uploads still come in
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["checks"]["sources"] == {
        "status": "warning",
        "enabled": 5,
        "failing": 3,
        "never_polled": 1,
        "failing_system_wide": [
            {"name": "Invoices", "reason": "temporary"},
            {"name": "Scanner inbox", "reason": "configuration"},
        ],
    }
    text = answer.content.decode()
    for private in ("Bob's mailbox", "refused the sign-in", "mail.internal.example", "Switched off"):
        assert private not in text


@pytest.mark.django_db(transaction=True)
def test_working_sources_leave_the_health_answer_alone(client: Client, owner: User) -> None:
    _source("Scanner inbox")
    client.force_login(owner)
    body = client.get("/api/health").json()
    assert body["checks"]["sources"] == {
        "status": "ok", "enabled": 1, "failing": 0, "never_polled": 0, "failing_system_wide": []
    }  # fmt: skip
