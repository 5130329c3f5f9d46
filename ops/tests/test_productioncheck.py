"""``manage.py productioncheck``: the right verdict for a good installation and for broken ones.

The good installation is real: PostgreSQL, Redis, two Celery workers, one beat and a fresh
backup record, checked by the command in a subprocess. No Meilisearch server exists on
these machines, so the one item it cannot PASS is ``meilisearch``, a WARN (the built-in
search); the Meilisearch item itself is tested against recorded answers of its API.
Most broken setups flip one setting and call that item's check in-process, which is quick;
a few run the command itself, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from celery import Celery
from django.core import checks as django_checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from psycopg import sql

from accounts.tests.factories import UserFactory
from conftest import (
    ALL_QUEUES,
    current_database_url,
    run_manage,
    service_missing,
    stop_process_group,
    wait_until,
)
from destinations.models import Destination
from documents.tests.http_replay import running_replay_server
from ops import checks
from ops.checks import (
    CheckResult,
    Status,
    check_admin_password,
    check_auth,
    check_backup,
    check_debug,
    check_destinations,
    check_ftp_tls,
    check_https,
    check_imap_tls,
    check_log_format,
    check_meilisearch,
    check_migrations,
    check_monitoring,
    check_rate_limiting,
    check_redis,
    check_secrets_in_repo,
    check_security_headers,
    check_session_secret,
    check_sftp_host_keys,
    check_sources,
    check_workdir,
    check_workers,
)
from ops.checks.configuration import tracked_secret_files
from ops.models import BackupRecord, BackupStatus, BackupTier
from ops.probes.redis import host_is_public
from ops.probes.workdir import mount_of
from ops.tests.test_beat_heartbeat import launch_beat
from sources.models import Source, SourceKind

STRONG_SECRET = "Yk2vP9wq-Lr57XnT0cZs8mUe3bHa1jDf6gQ4tN-production"
STRONG_ADMIN_PASSWORD = "operator-Pw-3f8a1c9d2e"
CHECKLIST = [
    "debug", "database", "migrations", "workdir", "https", "session_secret", "admin_password", "auth",
    "security_headers", "rate_limiting", "ftp_tls", "sftp_host_keys", "imap_tls", "converter_sandbox",
    "redis", "meilisearch", "gotenberg", "workers", "beat", "backup", "destinations", "sources", "monitoring",
    "log_format", "secrets_in_repo",
]  # fmt: skip
# Variables of the outer test run that would change what the subprocess checks.
FOREIGN_VARIABLES = (
    "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEILISEARCH_URL", "MEILISEARCH_API_KEY", "UPTIME_KUMA_URL",
    "METRICS_ALLOWED_IPS", "SECURITY_HEADERS_AT_PROXY", "DEBUG", "AUTH_ENABLED", "SESSION_SECRET_FILE",
    "SESSION_SECRET_PREVIOUS", "ADMIN_PASSWORD_FILE", "BACKUP_ENABLED", "DOCUMENT_STORAGE", "GOTENBERG_URL",
    "CONVERTER_SANDBOX", "FTP_ENABLED", "SFTP_ENABLED", "S3_ENABLED", "IMAP1_HOST", "IMAP1_ENABLED",
    "IMAP2_HOST", "IMAP2_ENABLED", "WATCH_FOLDERS", "FTP_INGEST_ENABLED", "SFTP_INGEST_ENABLED",
)  # fmt: skip

# Written by the backup command in production; here a fresh record, then wait for beat's heartbeat.
PREPARE_DATABASE = """
import time
from datetime import timedelta
from django.utils import timezone
from ops.models import BackupRecord, BeatHeartbeat
BackupRecord.objects.create(
    tier="hourly", status="succeeded", started_at=timezone.now() - timedelta(minutes=3),
    finished_at=timezone.now() - timedelta(minutes=1), path="backups/hourly.tar.zst", size=4096,
)
deadline = time.monotonic() + 60
while not BeatHeartbeat.objects.exists() and time.monotonic() < deadline:
    time.sleep(0.3)
print(BeatHeartbeat.objects.count())
"""


# --- Fixtures ------------------------------------------------------------------------------


def _scratch_database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, process_env: dict[str, str]) -> Iterator[str]:
    """A migrated PostgreSQL database that a subprocess can use.

    The test database when the suite runs on PostgreSQL (as CI's full run does); else a
    scratch database on the local server, made and dropped here (TEST_POSTGRES_URL names
    the server's maintenance database).
    """
    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        yield current_database_url()
        return
    server = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = sql.Identifier(f"docuelevate_productioncheck_{os.getpid()}")
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=3) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL is not reachable at {server} ({exc.__class__.__name__})")
    url = _scratch_database_url(server, f"docuelevate_productioncheck_{os.getpid()}")
    migrated = run_manage({**process_env, "DATABASE_URL": url}, "migrate", "--noinput", timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=3) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.fixture
def production_env(process_env: dict[str, str], postgres_url: str, redis_url: str) -> dict[str, str]:
    """Everything the checklist asks for, short of Meilisearch."""
    for name in FOREIGN_VARIABLES:
        process_env.pop(name, None)
    process_env.update(
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        SESSION_SECRET=STRONG_SECRET,
        ADMIN_USERNAME="operator-admin",
        ADMIN_PASSWORD=STRONG_ADMIN_PASSWORD,
        SECURE_PROXY="true",
        SECURITY_HEADERS_ENABLED="true",
        RATE_LIMITING_ENABLED="true",
        LOG_FORMAT="json",
        METRICS_TOKEN="metrics-token-5d1e0c7b9a",
    )
    return process_env


@pytest.fixture
def beats(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for beat in started:
        stop_process_group(beat)


def probe_app(redis_url: str) -> Celery:
    """A Celery client of the tests' Redis, to ask the workers started there."""
    return Celery("probe", broker=redis_url, set_as_current=False)


def wait_for_workers(app: Celery, count: int, timeout: float = 90) -> None:
    # Each ping waits a second for the answers itself.
    wait_until(
        lambda: len(app.control.ping(timeout=1) or []) >= count,
        timeout=timeout,
        what=f"{count} worker(s) to answer ping",
        interval=0,
    )


def verdicts(results: list[dict[str, Any]]) -> dict[str, str]:
    return {result["name"]: result["status"] for result in results}


# --- The command, in a subprocess -----------------------------------------------------------


def test_a_complete_installation_passes_everything_but_meilisearch_and_exits_0(
    production_env, redis_url, start_worker, beats, tmp_path
):
    start_worker(production_env)
    start_worker(production_env)
    beats.append(launch_beat(production_env, tmp_path / "beat.log"))
    wait_for_workers(probe_app(redis_url), 2)
    prepared = run_manage(production_env, "shell", "-c", PREPARE_DATABASE)
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip().endswith("1"), "beat wrote no heartbeat"

    result = run_manage(production_env, "productioncheck", "--json")

    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert [item["name"] for item in report] == CHECKLIST
    expected = {name: "PASS" for name in CHECKLIST} | {"meilisearch": "WARN"}
    assert verdicts(report) == expected, json.dumps(report, indent=2)
    assert result.returncode == 0, result.stderr
    meilisearch = next(item for item in report if item["name"] == "meilisearch")
    assert "built-in database search" in meilisearch["reason"]
    assert all(set(item) == {"name", "status", "reason", "fix"} for item in report)


def test_on_sqlite_the_database_item_fails_and_the_command_exits_1(embedded_env):
    embedded_env.update(SESSION_SECRET=STRONG_SECRET, DEBUG="false")

    result = run_manage(embedded_env, "productioncheck")

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    # One line per item, in checklist order, then the counts.
    items = [line for line in lines if re.match(r"^(PASS|WARN|FAIL)  ", line)]
    assert [line.split()[1] for line in items] == CHECKLIST
    database = next(line for line in items if line.split()[1] == "database")
    assert re.match(
        r"^FAIL  database +SQLite is in use.*\(fix: run PostgreSQL and set DATABASE_URL=", database
    )
    assert re.search(r"\d+ PASS, \d+ WARN, \d+ FAIL$", lines[-1])
    assert "database" in result.stderr  # the summary of what failed


def test_with_info_logging_the_json_output_is_still_json_alone(embedded_env):
    embedded_env.update(SESSION_SECRET=STRONG_SECRET, DEBUG="false", LOG_LEVEL="INFO")

    result = run_manage(embedded_env, "productioncheck", "--json")

    assert [item["name"] for item in json.loads(result.stdout)] == CHECKLIST


def test_a_weak_session_secret_stops_the_command_before_it_checks_anything(embedded_env):
    embedded_env["SESSION_SECRET"] = "changeme"

    result = run_manage(embedded_env, "productioncheck", "--json")

    assert result.returncode != 0
    assert "SESSION_SECRET is not acceptable" in result.stderr
    assert result.stdout.strip() == ""


# --- The command, in-process --------------------------------------------------------------


def _fixed(status: Status) -> Any:
    def check() -> CheckResult:
        return CheckResult(f"fixed_{status.value.lower()}", status, f"always {status.value}", "nothing")

    return check


def test_warnings_alone_do_not_fail_the_command(monkeypatch, capsys):
    monkeypatch.setattr(checks, "PRODUCTION_CHECKS", (_fixed(Status.PASS), _fixed(Status.WARN)))

    call_command("productioncheck", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report == [
        {"name": "fixed_pass", "status": "PASS", "reason": "always PASS", "fix": "nothing"},
        {"name": "fixed_warn", "status": "WARN", "reason": "always WARN", "fix": "nothing"},
    ]


def test_a_failure_fails_the_command_and_a_broken_check_fails_only_its_own_line(monkeypatch, capsys):
    def check_exploding() -> CheckResult:
        raise RuntimeError("no route to host")

    monkeypatch.setattr(
        checks, "PRODUCTION_CHECKS", (check_exploding, _fixed(Status.FAIL), _fixed(Status.PASS))
    )

    with pytest.raises(CommandError, match=r"2 item\(s\) failed: exploding, fixed_fail"):
        call_command("productioncheck")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("FAIL  exploding   the check itself failed (RuntimeError: no route to host)")
    assert lines[1] == "FAIL  fixed_fail  always FAIL (fix: nothing)"
    assert lines[2] == "PASS  fixed_pass  always PASS"  # no fix shown for a PASS
    assert lines[3] == "1 PASS, 0 WARN, 2 FAIL"


# --- One setting flipped --------------------------------------------------------------------

PASS, WARN, FAIL = Status.PASS, Status.WARN, Status.FAIL
FILE_CACHE = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "/tmp/x"}
REDIS_CACHE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:6379/8",
}
MEMORY_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
NO_MONITORING: dict[str, Any] = {"UPTIME_KUMA_URL": None, "METRICS_TOKEN": None, "METRICS_ALLOWED_IPS": []}


def ratelimit_cache(cache: dict[str, str]) -> dict[str, Any]:
    return {"RATELIMIT_USE_CACHE": "ratelimit", "CACHES": {"default": MEMORY_CACHE, "ratelimit": cache}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "check", "status", "words"),
    [
        pytest.param({"DEBUG": True}, check_debug, FAIL, "DEBUG=true", id="debug on"),
        pytest.param({"DEBUG": False}, check_debug, PASS, "DEBUG=false", id="debug off"),
        pytest.param(
            {"SECURE_PROXY": False, "EXTERNAL_HOSTNAME": "localhost"}, check_https, FAIL, "no TLS",
            id="no proxy and no TLS",
        ),
        pytest.param({"SECURE_PROXY": True}, check_https, PASS, "SECURE_PROXY=true", id="behind a proxy"),
        pytest.param(
            {"SECURITY_HEADERS_ENABLED": False, "SECURITY_HEADERS_AT_PROXY": False}, check_security_headers,
            FAIL, "no HSTS, CSP", id="headers off",
        ),
        pytest.param(
            {"SECURITY_HEADERS_ENABLED": False, "SECURITY_HEADERS_AT_PROXY": True}, check_security_headers,
            PASS, "reverse proxy sets", id="headers at the proxy",
        ),
        pytest.param(
            {"SECURITY_HEADERS_ENABLED": True}, check_security_headers, PASS, "from the application",
            id="headers on",
        ),
        pytest.param(
            {"RATE_LIMITING_ENABLED": False}, check_rate_limiting, FAIL, "RATE_LIMITING_ENABLED=false",
            id="rate limiting off",
        ),
        pytest.param(
            {"RATE_LIMITING_ENABLED": True, **ratelimit_cache(FILE_CACHE)}, check_rate_limiting, WARN,
            "FileBasedCache", id="rate limits in the file cache",
        ),
        pytest.param(
            {"RATE_LIMITING_ENABLED": True, **ratelimit_cache(REDIS_CACHE)}, check_rate_limiting, PASS,
            "RedisCache", id="rate limits in Redis",
        ),
        pytest.param(
            {"RATE_LIMITING_ENABLED": True, **ratelimit_cache(MEMORY_CACHE)}, check_rate_limiting, FAIL,
            "each process counts alone", id="rate limits per process",
        ),
        pytest.param({"LOG_FORMAT": "text"}, check_log_format, WARN, "LOG_FORMAT=text", id="text logs"),
        pytest.param({"LOG_FORMAT": "json"}, check_log_format, PASS, "LOG_FORMAT=json", id="json logs"),
        pytest.param(NO_MONITORING, check_monitoring, WARN, "nothing watches", id="no monitoring"),
        pytest.param(
            {**NO_MONITORING, "UPTIME_KUMA_URL": "https://kuma.example.org/api/push/abc"}, check_monitoring,
            PASS, "UPTIME_KUMA_URL", id="uptime kuma",
        ),
        pytest.param(
            {**NO_MONITORING, "METRICS_ALLOWED_IPS": ["10.0.0.0/8"]}, check_monitoring, PASS,
            "METRICS_ALLOWED_IPS", id="prometheus by address",
        ),
        pytest.param({"AUTH_ENABLED": False}, check_auth, FAIL, "AUTH_ENABLED=false", id="auth off"),
        pytest.param(
            {"SECRET_KEY": "changeme"}, check_session_secret, FAIL, "well-known placeholder",
            id="placeholder secret",
        ),
        pytest.param(
            {"SECRET_KEY_FALLBACKS": ["short-old-key"]}, check_session_secret, FAIL,
            "SESSION_SECRET_PREVIOUS is weak", id="weak previous secret",
        ),
        pytest.param(
            {"ADMIN_PASSWORD": "your_secure_password"}, check_admin_password, FAIL,
            "ADMIN_PASSWORD is weak", id="placeholder admin password",
        ),
        pytest.param(
            {"ADMIN_PASSWORD": STRONG_ADMIN_PASSWORD}, check_admin_password, PASS,
            "ADMIN_PASSWORD is strong", id="strong admin password",
        ),
        pytest.param(
            {"MEILISEARCH_URL": None}, check_meilisearch, WARN, "built-in database search",
            id="built-in search",
        ),
        pytest.param({"BACKUP_ENABLED": False}, check_backup, WARN, "makes no backups", id="backups off"),
        pytest.param(
            {"FTP_ENABLED": True, "FTP_USE_TLS": False, "FTP_ALLOW_PLAINTEXT": True}, check_ftp_tls, WARN,
            "cross the network unencrypted", id="plaintext ftp",
        ),
        pytest.param(
            {"FTP_ENABLED": True, "FTP_USE_TLS": True, "FTP_ALLOW_PLAINTEXT": True}, check_ftp_tls, PASS,
            "speaks TLS", id="ftps",
        ),
        pytest.param(
            {"FTP_ENABLED": True, "FTP_USE_TLS": False, "FTP_ALLOW_PLAINTEXT": False}, check_ftp_tls, PASS,
            "without FTP_ALLOW_PLAINTEXT=true nothing is sent in plaintext", id="plaintext ftp not allowed",
        ),
        pytest.param(
            {"FTP_ENABLED": False, "FTP_INGEST_ENABLED": False, "FTP_USE_TLS": False,
             "FTP_ALLOW_PLAINTEXT": True},
            check_ftp_tls, PASS, "no FTP destination or source", id="no ftp",
        ),
        pytest.param(
            {"FTP_ENABLED": False, "FTP_INGEST_ENABLED": True, "FTP_USE_TLS": False,
             "FTP_ALLOW_PLAINTEXT": True},
            check_ftp_tls, WARN, "cross the network unencrypted", id="plaintext ftp source",
        ),
        pytest.param(
            {"SFTP_ENABLED": False, "SFTP_INGEST_ENABLED": True, "SFTP_DISABLE_HOST_KEY_VERIFICATION": True},
            check_sftp_host_keys, WARN, "host key is not checked",
            id="sftp source without host key verification",
        ),
        pytest.param(
            {"SFTP_ENABLED": True, "SFTP_DISABLE_HOST_KEY_VERIFICATION": True}, check_sftp_host_keys, WARN,
            "host key is not checked", id="sftp without host key verification",
        ),
        pytest.param(
            {"SFTP_ENABLED": True, "SFTP_DISABLE_HOST_KEY_VERIFICATION": False}, check_sftp_host_keys, PASS,
            "host key is verified", id="sftp verifying host keys",
        ),
        pytest.param(
            {"SFTP_ENABLED": False, "SFTP_INGEST_ENABLED": False, "SFTP_DISABLE_HOST_KEY_VERIFICATION": True},
            check_sftp_host_keys, PASS, "no SFTP destination or source", id="no sftp",
        ),
    ],
)  # fmt: skip
def test_one_setting_flipped_gives_that_item_its_verdict(settings, overrides, check, status, words):
    for name, value in overrides.items():
        setattr(settings, name, value)

    result = check()

    assert result.status is status, result
    assert words in result.reason
    assert bool(result.fix) is (status is not Status.PASS)


FTP_AND_SFTP_SETTINGS = (
    "FTP_ENABLED", "FTP_USE_TLS", "FTP_ALLOW_PLAINTEXT", "SFTP_ENABLED", "SFTP_DISABLE_HOST_KEY_VERIFICATION",
)  # fmt: skip


@pytest.mark.subprocess  # git, as the deploy checks' secrets item runs it
def test_the_ftp_and_sftp_items_hold_without_those_settings_and_fix_a_warning_in_words(settings):
    # The FTP and SFTP kinds define their settings; an installation without them passes.
    for name in FTP_AND_SFTP_SETTINGS:
        if hasattr(settings, name):
            delattr(settings, name)
    assert check_ftp_tls().status is PASS
    assert check_sftp_host_keys().status is PASS

    settings.FTP_ENABLED = True
    settings.FTP_USE_TLS = False
    settings.FTP_ALLOW_PLAINTEXT = True
    settings.SFTP_ENABLED = True
    settings.SFTP_DISABLE_HOST_KEY_VERIFICATION = True
    ftp, sftp = check_ftp_tls(), check_sftp_host_keys()
    assert "set FTP_USE_TLS=true" in ftp.fix
    assert "set SFTP_DISABLE_HOST_KEY_VERIFICATION=false" in sftp.fix
    messages = django_checks.run_checks(include_deployment_checks=True, tags=["production"])
    by_id = {message.id: message for message in messages}
    assert by_id["ops.W019"].msg.startswith("ftp_tls: FTP_USE_TLS=false with FTP_ALLOW_PLAINTEXT=true")
    assert by_id["ops.W020"].msg.startswith("sftp_host_keys: SFTP_DISABLE_HOST_KEY_VERIFICATION=true")


def _destination(name: str, health: str, *, owner: Any = None, error: str = "") -> Destination:
    return Destination.objects.create(
        kind="s3",
        name=name,
        owner=owner,
        health_status=health,
        health_error=error,
        health_error_kind="configuration" if error else "",
    )


@pytest.mark.django_db
def test_the_destinations_item_warns_while_one_fails_and_names_each_with_its_owner_and_reason():
    assert check_destinations().status is PASS  # none: documents are kept here only
    _destination("Company archive", "ok")
    working = check_destinations()
    assert (working.status, working.reason, working.fix) == (PASS, "1 enabled, none failing", "")

    _destination(
        "Bob's bucket",
        "failing",
        owner=UserFactory.create(username="bob"),
        error="S3 refused the credentials",
    )
    failing = check_destinations()

    assert failing.status is WARN
    assert failing.reason == (
        "1 of 2 enabled destinations fail: Bob's bucket (bob, s3): S3 refused the credentials"
    )
    assert "credentials check runs every 15 minutes" in failing.fix


def _environment_mailbox(number: int, *, ssl: bool) -> dict[str, Any]:
    # As docuelevate.settings reads IMAP<n>_*.
    return {
        "number": number, "host": f"mail{number}.example.com", "port": 993 if ssl else 143, "ssl": ssl,
        "username": "scans", "password": "secret", "poll_interval_minutes": 5, "delete_after_process": False,
    }  # fmt: skip


@pytest.mark.django_db
def test_a_mailbox_without_tls_warns_naming_its_variable_or_source_with_the_fix(settings):
    settings.IMAP_MAILBOXES = [_environment_mailbox(1, ssl=True)]
    Source.objects.create(
        kind=SourceKind.IMAP, name="Secure", settings={"host": "imap.example.com", "ssl": True}
    )
    assert check_imap_tls().status is PASS

    settings.IMAP_MAILBOXES = [_environment_mailbox(1, ssl=True), _environment_mailbox(2, ssl=False)]
    # The environment's own row is named by its variable, not twice.
    Source.objects.create(
        kind=SourceKind.IMAP, name="IMAP2 scans@mail2.example.com", system_key="env:imap:2",
        settings={"host": "mail2.example.com", "ssl": False},
    )  # fmt: skip
    Source.objects.create(
        kind=SourceKind.IMAP, name="Bob's mail", owner=UserFactory.create(username="bob"),
        settings={"host": "imap.bob.example", "ssl": False},
    )  # fmt: skip
    Source.objects.create(
        kind=SourceKind.IMAP, name="Off", enabled=False, settings={"host": "old.example", "ssl": False}
    )
    result = check_imap_tls()

    assert result.status is WARN
    assert result.reason.startswith(
        "2 mailbox(es) connect without TLS: IMAP2_SSL=false (mail2.example.com); "
        "Bob's mail (bob, imap.bob.example)."
    )
    assert "unless the server offers STARTTLS" in result.reason
    assert "set IMAP<n>_SSL=true (port 993)" in result.fix
    # The system check reads the environment only: it cannot ask the database.
    offline = check_imap_tls(inspect_sources=False)
    assert offline.status is WARN
    assert "Bob's mail" not in offline.reason


@pytest.mark.subprocess  # git, as the deploy checks' secrets item runs it
def test_check_deploy_warns_about_an_environment_mailbox_without_tls(settings):
    settings.IMAP_MAILBOXES = [_environment_mailbox(1, ssl=False)]
    messages = django_checks.run_checks(include_deployment_checks=True, tags=["production"])
    by_id = {message.id: message for message in messages}
    assert by_id["ops.W021"].msg.startswith("imap_tls: 1 mailbox(es) connect without TLS: IMAP1_SSL=false")
    assert "IMAP<n>_SSL=true" in str(by_id["ops.W021"].hint)


@pytest.mark.django_db
def test_the_sources_item_warns_while_one_fails_and_names_each_with_its_owner_and_reason():
    assert check_sources().status is PASS  # none: documents come in by upload only
    Source.objects.create(kind=SourceKind.WATCH, name="Scans", last_poll_at=timezone.now())
    working = check_sources()
    assert (working.status, working.reason, working.fix) == (PASS, "1 enabled, none failing", "")

    Source.objects.create(
        kind=SourceKind.IMAP,
        name="Bob's mail",
        owner=UserFactory.create(username="bob"),
        last_error="The mail server refused the sign-in of bob: check the password.",
        last_error_kind="configuration",
    )
    failing = check_sources()

    assert failing.status is WARN
    assert failing.reason == (
        "1 of 2 enabled sources fail: Bob's mail (bob, imap): "
        "The mail server refused the sign-in of bob: check the password."
    )
    assert "test it on /sources" in failing.fix


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["changeme", "root-admin"])
def test_an_operator_whose_password_is_a_placeholder_or_the_username_fails(settings, password):
    settings.ADMIN_PASSWORD = None
    UserFactory.create(username="someone", password="a-fine-password-for-someone")
    UserFactory.create(username="root-admin", is_staff=True, is_superuser=True, password=password)

    result = check_admin_password()

    assert result.status is Status.FAIL
    assert "root-admin" in result.reason
    assert "someone" not in result.reason
    assert "changepassword" in result.fix


@pytest.mark.django_db
def test_an_unapplied_migration_fails_and_is_named():
    assert check_migrations().status is Status.PASS
    # The app's newest migration: an older one under an applied newer one is never planned.
    newest = MigrationRecorder.Migration.objects.filter(app="ops").latest("applied")
    newest.delete()

    result = check_migrations()

    assert result.status is Status.FAIL
    assert f"ops.{newest.name}" in result.reason
    assert "manage.py migrate" in result.fix


# --- WORKDIR ------------------------------------------------------------------------------


def mountinfo_file(tmp_path: Path, *mounts: tuple[str, str]) -> Path:
    """A /proc/self/mountinfo with the given (mount point, filesystem type) lines."""
    lines = [
        f"{number} 1 0:{number} / {point.replace(' ', chr(92) + '040')} rw shared:1 - {fstype} src rw"
        for number, (point, fstype) in enumerate(mounts, start=20)
    ]
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_mount_holding_a_path_is_the_deepest_one():
    info = (
        "22 1 0:21 / / rw - overlay overlay rw,lowerdir=/a\n"
        "23 22 254:0 / /srv/doc\\040elevate rw - ext4 /dev/vda rw\n"
        "24 22 0:23 / /srv/doc\\040elevate/tmp rw - tmpfs tmpfs rw\n"
    )
    assert mount_of(Path("/srv/doc elevate/workdir"), info) == ("/srv/doc elevate", "ext4")
    assert mount_of(Path("/srv/doc elevate/tmp/x"), info) == ("/srv/doc elevate/tmp", "tmpfs")
    assert mount_of(Path("/app/workdir"), info) == ("/", "overlay")


@pytest.mark.parametrize(
    ("mounts", "status", "words"),
    [
        ([("/", "overlay")], Status.FAIL, "container's writable layer"),
        ([("/", "overlay"), ("{workdir}", "tmpfs")], Status.FAIL, "in memory"),
        ([("/", "overlay"), ("{workdir}", "ext4")], Status.PASS, "is writable"),
        ([("/", "ext4")], Status.PASS, "GiB free"),
    ],
    ids=["overlay root", "tmpfs", "volume on a container", "plain disk"],
)
def test_the_workdir_must_outlive_the_container(settings, tmp_path, mounts, status, words):
    settings.DOCUMENT_STORAGE = "local"
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    info = mountinfo_file(tmp_path, *[(point.format(workdir=workdir), fstype) for point, fstype in mounts])

    result = check_workdir(workdir=workdir, mountinfo=info)

    assert result.status is status, result
    assert words in result.reason


def test_an_ephemeral_workdir_is_fine_when_documents_live_in_s3(settings, tmp_path):
    settings.DOCUMENT_STORAGE = "s3"
    result = check_workdir(workdir=tmp_path, mountinfo=mountinfo_file(tmp_path, ("/", "overlay")))
    assert result.status is Status.PASS
    assert "documents are in S3" in result.reason


def test_a_missing_workdir_fails(tmp_path):
    result = check_workdir(workdir=tmp_path / "nowhere")
    assert result.status is Status.FAIL
    assert "does not exist" in result.reason


# --- Redis ------------------------------------------------------------------------------


def test_a_reachable_redis_on_a_private_address_passes(redis_url):
    result = check_redis(url=redis_url)
    assert result.status is Status.PASS
    assert "private address" in result.reason


def test_an_unreachable_redis_fails():
    result = check_redis(url="redis://127.0.0.1:1/0", timeout=1)
    assert result.status is Status.FAIL
    assert "does not answer" in result.reason


def test_no_redis_at_all_fails():
    result = check_redis(url="")
    assert result.status is Status.FAIL
    assert "REDIS_URL is not set" in result.reason


def test_a_redis_on_a_public_address_that_answers_without_a_password_fails(redis_url):
    # The local server really answers without a password; only its address is taken as public.
    result = check_redis(url=redis_url, is_public=lambda host: True)
    assert result.status is Status.FAIL
    assert "answers without a password" in result.reason
    assert "requirepass" in result.fix


@pytest.mark.parametrize(
    ("host", "public"),
    [("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("192.168.10.4", False),
     ("172.17.0.2", False), ("169.254.1.1", False), ("localhost", False), ("8.8.8.8", True),
     ("2001:4860:4860::8888", True)],
)  # fmt: skip
def test_only_internet_addresses_count_as_public(host, public):
    assert host_is_public(host) is public


# --- Meilisearch, against recorded answers of its API ----------------------------------------

API_KEY = "meili-master-key-0123456789abcdef"
HEALTH = {
    "request": {"method": "GET", "path": "/health"},
    "response": {
        "status": 200,
        "headers": {"Content-Type": "application/json"},
        "json": {"status": "available"},
    },
}


def index_answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "request": {"method": "GET", "path": "/indexes/documents"},
        "response": {"status": status, "headers": {"Content-Type": "application/json"}, "json": body},
    }


INDEX = index_answer(
    200,
    {
        "uid": "documents", "primaryKey": "file_id",
        "createdAt": "2026-11-20T09:00:00.000000Z", "updatedAt": "2026-11-20T09:14:02.000000Z",
    },
)  # fmt: skip
INVALID_KEY = index_answer(
    403,
    {
        "message": "The provided API key is invalid.", "code": "invalid_api_key", "type": "auth",
        "link": "https://docs.meilisearch.com/errors#invalid_api_key",
    },
)  # fmt: skip
MISSING_KEY = index_answer(
    401,
    {
        "message": "The Authorization header is missing. It must use the bearer authorization method.",
        "code": "missing_authorization_header", "type": "auth",
        "link": "https://docs.meilisearch.com/errors#missing_authorization_header",
    },
)  # fmt: skip


@pytest.mark.parametrize(
    ("api_key", "exchanges", "status", "words"),
    [
        (API_KEY, [HEALTH, INDEX], Status.PASS, "accepts the API key"),
        ("not-the-key", [HEALTH, INVALID_KEY], Status.FAIL, "refuses MEILISEARCH_API_KEY"),
        (None, [HEALTH, MISSING_KEY], Status.FAIL, "requires a key and MEILISEARCH_API_KEY is not set"),
        (None, [HEALTH, INDEX], Status.FAIL, "answers without any key"),
    ],
    ids=["key accepted", "key refused", "key missing", "server without a master key"],
)
def test_meilisearch_must_answer_and_require_a_key(settings, api_key, exchanges, status, words):
    with running_replay_server() as meili:
        meili.exchanges = exchanges
        settings.MEILISEARCH_URL = meili.url
        settings.MEILISEARCH_API_KEY = api_key
        settings.MEILISEARCH_INDEX_NAME = "documents"

        result = check_meilisearch()

    assert result.status is status, result
    assert words in result.reason
    assert [request.path for request in meili.received] == ["/health", "/indexes/documents"]
    if api_key:
        assert meili.received[1].headers["authorization"] == f"Bearer {api_key}"


def test_an_unreachable_meilisearch_fails(settings):
    with running_replay_server() as meili:
        url = meili.url  # a port that is free again once the server stops
    settings.MEILISEARCH_URL = url
    settings.MEILISEARCH_API_KEY = API_KEY

    result = check_meilisearch(timeout=1)

    assert result.status is Status.FAIL
    assert "does not answer" in result.reason


# --- Workers ------------------------------------------------------------------------------


def test_workers_pass_at_two_warn_at_one_and_fail_without_one_or_without_a_queue(
    process_env, redis_url, start_worker
):
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        process_env.pop(name, None)
    process_env["REDIS_URL"] = redis_url
    app = probe_app(redis_url)

    nobody = check_workers(app=app, timeout=1)
    assert nobody.status is Status.FAIL
    assert "no Celery worker answered" in nobody.reason

    everything = start_worker(process_env, queues=ALL_QUEUES, name="all-queues")
    wait_for_workers(app, 1)
    alone = check_workers(app=app, timeout=2)
    assert alone.status is Status.WARN, alone
    assert "one worker answers (all-queues@" in alone.reason

    start_worker(process_env, queues="default", name="default-only")
    wait_for_workers(app, 2)
    two = check_workers(app=app, timeout=2)
    assert two.status is Status.PASS, two
    assert "2 workers answer" in two.reason

    stop_process_group(everything)
    partial = check_workers(app=app, timeout=2)
    assert partial.status is Status.FAIL, partial
    assert "no worker consumes queue(s) document_processor, celery" in partial.reason


# --- Backups ------------------------------------------------------------------------------


def backup(*, hours_ago: float, status: str = BackupStatus.SUCCEEDED) -> BackupRecord:
    finished = timezone.now() - timedelta(hours=hours_ago)
    return BackupRecord.objects.create(
        tier=BackupTier.DAILY, status=status, started_at=finished - timedelta(minutes=4), finished_at=finished
    )


@pytest.mark.django_db
def test_a_backup_older_than_26_hours_fails_even_after_a_newer_failed_one(clock):
    backup(hours_ago=30)
    backup(hours_ago=1, status=BackupStatus.FAILED)

    result = check_backup()

    assert result.status is Status.FAIL
    assert "30 hours old" in result.reason


@pytest.mark.django_db
def test_a_recent_successful_backup_passes_and_none_at_all_fails(clock):
    assert "no successful backup" in check_backup().reason
    backup(hours_ago=30)
    backup(hours_ago=2)

    result = check_backup()

    assert result.status is Status.PASS
    assert "2.0 hours ago" in result.reason


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["backuprecord", "beatheartbeat"])
def test_operators_read_backups_and_heartbeats_in_the_admin_but_change_nothing(client, operator, model):
    record = backup(hours_ago=1)
    client.force_login(operator)

    assert client.get(f"/admin/ops/{model}/").status_code == 200
    assert client.get(f"/admin/ops/{model}/add/").status_code == 403
    if model == "backuprecord":
        page = client.get(f"/admin/ops/backuprecord/{record.pk}/change/")
        assert page.status_code == 200
        assert b'name="_save"' not in page.content  # shown, not editable
        assert client.post(f"/admin/ops/backuprecord/{record.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_other_users_do_not_see_the_operations_admin(client, owner):
    client.force_login(owner)
    assert client.get("/admin/ops/backuprecord/").status_code == 302  # to the admin login


# --- Secrets in a git checkout -------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.mark.subprocess  # git, as the secrets check runs it
def test_a_tracked_env_file_fails_while_a_template_and_an_untracked_one_do_not(tmp_path):
    git(tmp_path, "init", "--quiet")
    for name in (".env", ".env.example", "README.md"):
        (tmp_path / name).write_text("SESSION_SECRET=...\n")
    git(tmp_path, "add", ".env.example", "README.md")
    assert check_secrets_in_repo(base_dir=tmp_path).status is Status.PASS  # .env exists, untracked

    git(tmp_path, "add", ".env")
    result = check_secrets_in_repo(base_dir=tmp_path)

    assert result.status is Status.FAIL
    assert result.reason == "git tracks secret files: .env"
    assert "rotate" in result.fix


@pytest.mark.subprocess  # git, as the secrets check runs it
def test_a_folder_outside_git_has_no_secrets_in_a_repository(tmp_path):
    result = check_secrets_in_repo(base_dir=tmp_path)
    assert result.status is Status.PASS
    assert "not a git checkout" in result.reason


def test_keys_certificates_and_env_files_count_as_secrets_wherever_they_are():
    paths = ["config/.env", ".env.example", "deploy/tls/server.key", "docs/README.md", "certs/ca.pem",
             "deploy/.env.production", "env.sample", "keys/id_ed25519"]  # fmt: skip
    assert tracked_secret_files(paths) == [
        "config/.env", "deploy/tls/server.key", "certs/ca.pem", "deploy/.env.production", "keys/id_ed25519"
    ]  # fmt: skip


# --- manage.py check --deploy -----------------------------------------------------------


@pytest.mark.subprocess  # git, as the secrets check runs it
def test_check_deploy_reports_the_offline_items_with_their_own_ids(settings):
    settings.SECURITY_HEADERS_ENABLED = False
    settings.SECURITY_HEADERS_AT_PROXY = False
    settings.LOG_FORMAT = "text"
    settings.AUTH_ENABLED = True

    messages = django_checks.run_checks(include_deployment_checks=True, tags=["production"])

    by_id = {message.id: message for message in messages}
    assert by_id["ops.E009"].level == django_checks.ERROR
    assert by_id["ops.E009"].msg.startswith("security_headers: no HSTS")
    assert by_id["ops.W017"].level == django_checks.WARNING
    assert "ops.E008" not in by_id  # auth is on
    # Items that need the network or the database are left to productioncheck.
    assert not any(message.msg.startswith(("workers", "beat", "backup", "redis")) for message in messages)


def test_the_deploy_items_are_not_part_of_an_ordinary_check(settings):
    settings.SECURITY_HEADERS_ENABLED = False
    settings.SECURITY_HEADERS_AT_PROXY = False
    messages = django_checks.run_checks(tags=["production"])
    assert not [message for message in messages if str(message.id).startswith("ops.")]
