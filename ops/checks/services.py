"""Checklist items about the live services: database schema, Redis, Meilisearch, workers,
beat and backups. Each asks the service itself, within ``NETWORK_TIMEOUT`` seconds.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import meilisearch
import redis
import requests
from celery import Celery
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError

from documents.pipeline.converters.gotenberg import gotenberg_loads_references
from ops.checks.configuration import NETWORK_TIMEOUT
from ops.checks.result import CheckResult, error_text, failed, passed, warned
from ops.models import BackupRecord, BackupStatus, BeatHeartbeat

BEAT_WINDOW = datetime.timedelta(minutes=2)
BACKUP_MAX_AGE_HOURS = 26  # a daily backup, plus slack for a slow night
BACKUP_MAX_AGE = datetime.timedelta(hours=BACKUP_MAX_AGE_HOURS)


def check_migrations(*, alias: str = DEFAULT_DB_ALIAS) -> CheckResult:
    try:
        executor = MigrationExecutor(connections[alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return failed("migrations", f"the database does not answer ({error_text(exc)})", "check DATABASE_URL")
    if plan:
        pending = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
        listed = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        return failed(
            "migrations", f"{len(pending)} migration(s) not applied: {listed}", "run python manage.py migrate"
        )
    return passed("migrations", "every migration is applied")


def host_is_public(host: str) -> bool:
    """Whether any address of ``host`` is reachable from the internet (not loopback, private,
    link-local...). An unresolvable name is not judged public: it reaches nothing."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    return any(address.is_global for address in addresses)


def _redis_answers_without_password(url: str, timeout: float) -> bool:
    parts = urlsplit(url)
    client = redis.Redis(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        ssl=parts.scheme == "rediss",
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.ResponseError):
        return False  # NOAUTH: a password is required, as it should be
    finally:
        client.close()


def check_redis(
    *,
    url: str | None = None,
    timeout: float = NETWORK_TIMEOUT,
    is_public: Callable[[str], bool] = host_is_public,
) -> CheckResult:
    url = url if url is not None else settings.REDIS_URL
    if not url:
        return failed(
            "redis",
            "REDIS_URL is not set: broker, results and rate limits use the one-machine embedded fallbacks",
            "run Redis on a private network and set REDIS_URL=redis://:password@redis:6379/0",
        )
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else unquote(parts.path)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return failed("redis", f"Redis at {where} does not answer ({error_text(exc)})", "check REDIS_URL")
    finally:
        client.close()
    if parts.scheme == "unix" or not parts.hostname or not is_public(parts.hostname):
        return passed("redis", f"Redis at {where} answers, on a private address")
    try:
        open_to_all = _redis_answers_without_password(url, timeout)
    except redis.RedisError:
        open_to_all = False
    if open_to_all:
        return failed(
            "redis",
            f"Redis at {where} is on a public address and answers without a password",
            "bind Redis to a private network, set requirepass and put the password in REDIS_URL",
        )
    if parts.scheme != "rediss":
        return warned(
            "redis",
            f"Redis at {where} is on a public address; its password and data travel unencrypted",
            "move Redis to a private network, or use TLS with a rediss:// URL",
        )
    return passed("redis", f"Redis at {where} answers, requires a password and speaks TLS")


def check_gotenberg(*, timeout: float | None = None) -> CheckResult:
    """Gotenberg, when used, must load nothing a document references (a canary tells)."""
    url = settings.GOTENBERG_URL
    if not url:
        return passed("gotenberg", "not used: office files are converted on the workers")
    try:
        loads = gotenberg_loads_references(base_url=url, timeout=timeout or settings.CONVERT_TIMEOUT)
    except (requests.RequestException, OSError) as exc:
        reason = f"Gotenberg at {url} does not answer ({error_text(exc)})"
        return failed("gotenberg", reason, "check GOTENBERG_URL")
    if loads:
        return failed(
            "gotenberg",
            "Gotenberg loaded what a test document referenced on this host, so it can reach the network",
            "put Gotenberg on a network without egress (docs/security.md)",
        )
    return passed("gotenberg", "Gotenberg loaded nothing a test document referenced on this host")


def check_meilisearch(*, timeout: float = NETWORK_TIMEOUT) -> CheckResult:
    url = settings.MEILISEARCH_URL
    if not url:
        return warned(
            "meilisearch",
            "MEILISEARCH_URL is not set: the built-in database search is in use",
            "none needed; for instant search over large archives set MEILISEARCH_URL and MEILISEARCH_API_KEY",
        )
    api_key = settings.MEILISEARCH_API_KEY
    # The client takes the timeout in whole seconds.
    client = meilisearch.Client(url, api_key, timeout=max(1, round(timeout)))
    try:
        client.health()
        # Reading the index needs the key whenever the server has a master key; 404 (no index
        # yet) still proves the key was accepted.
        client.get_raw_index(settings.MEILISEARCH_INDEX_NAME)
    except MeilisearchApiError as exc:
        if exc.status_code == 404:
            pass
        elif exc.status_code in (401, 403):
            if api_key:
                return failed(
                    "meilisearch", f"Meilisearch at {url} refuses MEILISEARCH_API_KEY", "use a valid key"
                )
            return failed(
                "meilisearch",
                f"Meilisearch at {url} requires a key and MEILISEARCH_API_KEY is not set",
                "set MEILISEARCH_API_KEY",
            )
        else:
            return failed(
                "meilisearch", f"Meilisearch at {url} answers {exc.status_code}: {exc.code}", "see its log"
            )
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as exc:
        return failed(
            "meilisearch",
            f"Meilisearch at {url} does not answer ({error_text(exc)})",
            "check MEILISEARCH_URL",
        )
    if not api_key:
        return failed(
            "meilisearch",
            f"Meilisearch at {url} answers without any key: anyone who reaches it reads every document",
            "start Meilisearch with MEILI_MASTER_KEY and set MEILISEARCH_API_KEY",
        )
    return passed("meilisearch", f"Meilisearch at {url} answers and accepts the API key")


def _celery_app() -> Celery:
    from docuelevate.celery import app  # imported late: the Celery app imports every tasks module

    return app


def check_workers(*, app: Celery | None = None, timeout: float = NETWORK_TIMEOUT) -> CheckResult:
    from docuelevate.celery import QUEUES

    app = app or _celery_app()
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # kombu raises each transport's own errors
        return failed("workers", f"the broker does not answer ({error_text(exc)})", "check REDIS_URL")
    hostnames = sorted({hostname for reply in replies for hostname in reply})
    start = "start workers: celery -A docuelevate worker -Q " + ",".join(QUEUES)
    if not hostnames:
        return failed("workers", f"no Celery worker answered ping within {timeout:g} s", start)
    inspector = app.control.inspect(destination=hostnames, timeout=timeout, limit=len(hostnames))
    queues = inspector.active_queues() or {}
    consumed = {queue["name"] for worker_queues in queues.values() for queue in worker_queues}
    if missing := [queue for queue in QUEUES if queue not in consumed]:
        return failed(
            "workers",
            f"no worker consumes queue(s) {', '.join(missing)}: their tasks wait forever",
            f"start a worker with -Q {','.join(missing)}",
        )
    if len(hostnames) == 1:
        return warned(
            "workers",
            f"one worker answers ({hostnames[0]}): a busy or restarting worker stalls every document",
            "run at least two workers, e.g. docker compose up --scale worker=2",
        )
    return passed("workers", f"{len(hostnames)} workers answer: {', '.join(hostnames)}")


def check_beat(*, now: datetime.datetime | None = None) -> CheckResult:
    now = now or timezone.now()
    try:
        recent = list(
            BeatHeartbeat.objects.filter(last_seen__gte=now - BEAT_WINDOW).values_list("identity", flat=True)
        )
        last = BeatHeartbeat.objects.order_by("-last_seen").first()
    except DatabaseError as exc:
        return failed("beat", f"the heartbeats cannot be read ({error_text(exc)})", "check DATABASE_URL")
    if len(recent) == 1:
        return passed("beat", f"one beat runs ({recent[0]})")
    if len(recent) > 1:
        return failed(
            "beat",
            f"beat runs {len(recent)} times ({', '.join(sorted(recent))}); every periodic task is sent "
            f"{len(recent)} times",
            "run exactly one beat: stop the others",
        )
    seen = f"; last heartbeat {timezone.localtime(last.last_seen):%Y-%m-%d %H:%M %Z}" if last else ""
    return failed(
        "beat",
        f"beat is not running (no heartbeat in the last {BEAT_WINDOW.seconds // 60} minutes{seen})",
        "start exactly one celery -A docuelevate beat; only its default scheduler writes the heartbeat",
    )


def check_backup(*, now: datetime.datetime | None = None) -> CheckResult:
    now = now or timezone.now()
    if not getattr(settings, "BACKUP_ENABLED", True):
        return warned(
            "backup",
            "BACKUP_ENABLED=false: DocuElevate makes no backups",
            "back up the database and WORKDIR by other means, or set BACKUP_ENABLED=true",
        )
    fix = "run python manage.py backup and check that beat schedules it"
    try:
        newest = (
            BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at")
            .first()
        )
    except DatabaseError as exc:
        return failed(
            "backup", f"the backup records cannot be read ({error_text(exc)})", "check DATABASE_URL"
        )
    if newest is None or newest.finished_at is None:
        return failed("backup", "no successful backup is recorded", fix)
    age = now - newest.finished_at
    hours = age.total_seconds() / 3600
    if age > BACKUP_MAX_AGE:
        return failed(
            "backup",
            f"the newest successful backup is {hours:.0f} hours old (limit {BACKUP_MAX_AGE_HOURS})",
            fix,
        )
    return passed("backup", f"newest successful backup ({newest.tier}) finished {hours:.1f} hours ago")
