"""Backups that restore: ``manage.py backup``, ``restore`` and ``backup --verify``.

The round trips run the commands in subprocesses, as an operator would, on SQLite and on
PostgreSQL. The PostgreSQL source is the test database when the suite runs on PostgreSQL
(as in CI's full run), else a database made here on the local server (TEST_POSTGRES_URL names
its maintenance database); restores always go into an empty database made here, never into
a database another test uses. Retention, failures and Meilisearch run in this process on
the suite's own database. No Meilisearch server runs on these machines: its dump is tested
at our client boundary against a recorded exchange, replayed by a real HTTP server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from conftest import child_env, current_database_url, run_manage, service_missing
from documents.tests.http_replay import assert_matches_recording, running_replay_server
from ops.backup import BackupFailed, backup_create, failure_text, read_manifest
from ops.backup_engines import PostgresDatabase
from ops.checks import Status, check_backup
from ops.models import BackupRecord, BackupStatus

RECORDINGS = Path(__file__).resolve().parent / "recordings"
API_KEY = "test-master-key-0123456789abcdef"
SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# One user and three documents, ingested as an upload would be (rows plus originals/ files).
POPULATE = """
from accounts.models import User
from documents.services import document_ingest
owner = User.objects.create_user("archivist", email="archivist@example.com", password="archive-password-1234")
for index in range(3):
    content = f"Invoice {index}\\n".encode() * 200
    document_ingest(owner=owner, chunks=[content], filename=f"invoice-{index}.txt", enqueue=False)
"""
ADD_DOCUMENT = """
from accounts.models import User
from documents.services import document_ingest
owner = User.objects.get(username="archivist")
document_ingest(owner=owner, chunks=[b"arrived after the backup"], filename="late.txt", enqueue=False)
"""


# --- Installations -------------------------------------------------------------------------


@dataclass
class Installation:
    """A migrated source database with its WORKDIR, and an empty database to restore into."""

    vendor: str
    source_env: dict[str, str]
    target_env: dict[str, str]

    @property
    def workdir(self) -> Path:
        return Path(self.source_env["WORKDIR"])

    @property
    def backup_dir(self) -> Path:
        return Path(self.source_env["BACKUP_DIR"])

    def archives(self) -> list[Path]:
        return sorted(self.backup_dir.glob("docuelevate-*.tar"))


def _with_database(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def _drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _create_database(server: str, name: str) -> None:
    _drop_database(server, name)
    with psycopg.connect(server, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _migrate(env: dict[str, str]) -> None:
    migrated = run_manage(env, "migrate", "--noinput", timeout=300)
    assert migrated.returncode == 0, migrated.stderr


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the module; each SQLite installation starts from a
    copy of it, the same file a migrate of its own would make, without its seconds."""
    folder = tmp_path_factory.mktemp("migrated")
    database = folder / "migrated.sqlite3"
    env = child_env(dict(os.environ))
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEILISEARCH_URL"):
        env.pop(name, None)
    _migrate({**env, "WORKDIR": str(folder / "workdir"), "DATABASE_URL": f"sqlite:///{database}"})
    return database


# Marked statically: pytest-django sets up the test database only for tests it sees need one
# at collection, and a transactional_db asked for later would otherwise be the real database.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.django_db(transaction=True))])
def installation(
    request: pytest.FixtureRequest, process_env: dict[str, str], tmp_path: Path
) -> Iterator[Installation]:
    env = {**process_env, "BACKUP_DIR": str(tmp_path / "backups"), "LOG_LEVEL": "WARNING"}
    # The embedded defaults otherwise: no broker, cache or search server of the outer run.
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEILISEARCH_URL"):
        env.pop(name, None)
    if request.param == "sqlite":
        source = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'source.sqlite3'}"}
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), tmp_path / "source.sqlite3")
        yield Installation(
            "sqlite", source, {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'restored.sqlite3'}"}
        )
        return
    own_source = connection.vendor != "postgresql"
    if own_source:
        server, source_name = SERVER, f"docuelevate_backup_{os.getpid()}"
        try:
            _create_database(server, source_name)
        except psycopg.OperationalError as exc:
            service_missing(f"PostgreSQL is not reachable at {server} ({exc.__class__.__name__})")
        source_url = _with_database(server, source_name)
    else:
        request.getfixturevalue("transactional_db")
        source_url = server = current_database_url()
        source_name = urlsplit(source_url).path.lstrip("/")
    target_name = f"{source_name}_restored"
    _create_database(server, target_name)
    try:
        source = {**env, "DATABASE_URL": source_url}
        if own_source:
            _migrate(source)
        yield Installation("postgresql", source, {**env, "DATABASE_URL": _with_database(server, target_name)})
    finally:
        _drop_database(server, target_name)
        if own_source:
            _drop_database(server, source_name)


def table_counts(env: dict[str, str]) -> dict[str, int]:
    """The row count of every table of the database an environment points at."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as database:
            names = [
                row[0]
                for row in database.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            # The names come from the database's own catalogue.
            template = 'SELECT count(*) FROM "{}"'
            return {name: database.execute(template.format(name)).fetchone()[0] for name in names}
    with psycopg.connect(url) as database:
        names = [
            row[0] for row in database.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        count = sql.SQL("SELECT count(*) FROM {}")
        rows = {name: database.execute(count.format(sql.Identifier(name))).fetchone() for name in names}
        return {name: row[0] for name, row in rows.items() if row is not None}


def query(env: dict[str, str], statement: str) -> list[tuple[Any, ...]]:
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as database:
            return database.execute(statement).fetchall()
    with psycopg.connect(url) as database:
        return database.execute(statement).fetchall()


def document_files(workdir: Path) -> dict[str, str]:
    """SHA-256 of every file a user would miss: originals and processed results."""
    return {
        path.relative_to(workdir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("originals", "processed")
        for path in sorted((workdir / folder).rglob("*"))
        if path.is_file()
    }


def populate(installation: Installation, env: dict[str, str] | None = None) -> None:
    filled = run_manage(env or installation.source_env, "shell", "-c", POPULATE)
    assert filled.returncode == 0, filled.stderr
    processed = installation.workdir / "processed"
    processed.mkdir(exist_ok=True)
    (processed / "invoice-0.pdf").write_bytes(b"%PDF-1.7 the processed invoice\n")
    # Neither scratch space nor caches belong in a backup.
    (installation.workdir / "tmp" / "working-copy.bin").write_bytes(b"half-done OCR")
    (installation.workdir / "cache").mkdir(exist_ok=True)
    (installation.workdir / "cache" / "entry.djcache").write_bytes(b"cached")


def make_backup(installation: Installation, *args: str) -> Path:
    made = run_manage(installation.source_env, "backup", *args)
    assert made.returncode == 0, made.stderr
    return installation.archives()[-1]


def manifest_of(archive: Path) -> Any:
    with tarfile.open(archive) as opened:
        return read_manifest(opened)


# --- Round trips ---------------------------------------------------------------------------


def test_a_backup_restores_rows_and_files_into_an_empty_database_after_the_files_are_lost(installation):
    populate(installation)
    archive = make_backup(installation, "--include-files", "--tier", "weekly")
    rows, files = table_counts(installation.source_env), document_files(installation.workdir)
    assert len(files) == 4  # three originals and one processed file
    with tarfile.open(archive) as opened:
        archived = sorted(opened.getnames())
    assert archived == sorted(["database." + ("sqlite3.gz" if installation.vendor == "sqlite" else "pgdump"),
                               "manifest.json", *(f"files/{name}" for name in files)])  # fmt: skip

    # The disk is lost, and the database with it: a new, empty one takes its place.
    shutil.rmtree(installation.workdir / "originals")
    shutil.rmtree(installation.workdir / "processed")
    restored = run_manage(installation.target_env, "restore", str(archive))

    assert restored.returncode == 0, restored.stderr
    assert "files: 4 put back into WORKDIR" in restored.stdout
    assert table_counts(installation.target_env) == rows
    assert document_files(installation.workdir) == files
    names = query(installation.target_env, "SELECT original_filename FROM documents_document ORDER BY id")
    assert names == [("invoice-0.txt",), ("invoice-1.txt",), ("invoice-2.txt",)]
    # The restored installation knows the backup it came from as a successful one.
    records = query(installation.target_env, "SELECT tier, status, path FROM ops_backuprecord")
    assert records == [("weekly", "succeeded", str(archive))]


def test_restore_refuses_a_database_that_holds_data_and_force_replaces_it(installation):
    populate(installation)
    archive = make_backup(installation)
    first = run_manage(installation.target_env, "restore", str(installation.backup_dir))
    assert first.returncode == 0, first.stderr
    late = run_manage(installation.target_env, "shell", "-c", ADD_DOCUMENT)
    assert late.returncode == 0, late.stderr

    refused = run_manage(installation.target_env, "restore", str(archive))

    assert refused.returncode == 1
    assert "the database already holds data" in refused.stderr
    assert "--force" in refused.stderr
    assert query(installation.target_env, "SELECT count(*) FROM documents_document") == [(4,)]
    # By record id, which the restored database knows: back to the backup's three documents.
    [(record_id,)] = query(installation.target_env, "SELECT id FROM ops_backuprecord")
    forced = run_manage(installation.target_env, "restore", str(record_id), "--force")
    assert forced.returncode == 0, forced.stderr
    assert query(installation.target_env, "SELECT count(*) FROM documents_document") == [(3,)]


def test_verify_passes_on_a_good_backup_and_exits_1_when_files_or_the_archive_changed(installation):
    populate(installation)
    archive = make_backup(installation)  # the files stay in WORKDIR; the manifest has their hashes

    verified = run_manage(installation.source_env, "backup", "--verify")

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK    database  restored into a scratch database" in verified.stdout
    assert "OK    files     all 4 files listed are in WORKDIR with the same SHA-256" in verified.stdout
    assert "The backup restores as recorded." in verified.stdout
    if installation.vendor == "postgresql":
        scratch = query(
            installation.source_env, "SELECT datname FROM pg_database WHERE datname LIKE '%_verify_%'"
        )
        assert scratch == []

    changed_file = installation.workdir / "processed" / "invoice-0.pdf"
    changed_file.write_bytes(b"%PDF-1.7 overwritten by accident\n")
    changed = run_manage(installation.source_env, "backup", "--verify")
    assert changed.returncode == 1
    assert "FAIL  files" in changed.stdout
    assert "processed/invoice-0.pdf (changed)" in changed.stdout

    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0xFF
    archive.write_bytes(bytes(data))
    tampered = run_manage(installation.source_env, "backup", "--verify")
    assert tampered.returncode == 1
    assert "FAIL  checksum  size or SHA-256 differs from the record" in tampered.stdout
    refused = run_manage(installation.target_env, "restore", str(archive))
    assert refused.returncode == 1
    assert "the archive is damaged or was changed" in refused.stderr
    assert table_counts(installation.target_env) == {}


def test_an_archive_naming_a_path_outside_workdir_is_refused_before_anything_changes(embedded_env, tmp_path):
    manifest = {
        "format": 1, "version": "x", "tier": "daily", "created_at": "2026-11-20T02:30:00+00:00",
        "database": {"vendor": "sqlite", "member": "database.sqlite3.gz", "tables": {}},
        "files": {"included": True, "entries": {"../escaped.txt": {"size": 4, "sha256": "0" * 64}}},
        "meilisearch": None,
    }  # fmt: skip
    archive = tmp_path / "docuelevate-daily-hostile.tar"
    with tarfile.open(archive, "w") as hostile:
        for name, content in (
            ("files/../escaped.txt", b"evil"),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            hostile.addfile(info, io.BytesIO(content))

    refused = run_manage(embedded_env, "restore", str(archive))

    assert refused.returncode == 1
    assert "the archive names an unsafe path: '../escaped.txt'" in refused.stderr
    assert not (Path(embedded_env["WORKDIR"]).parent / "escaped.txt").exists()


# --- In this process: retention, failures, Meilisearch -------------------------------------


@pytest.fixture
def backup_dir(settings: Any, tmp_path: Path) -> Path:
    """A private WORKDIR with one original, and a BACKUP_DIR beside it."""
    workdir = tmp_path / "workdir"
    (workdir / "originals").mkdir(parents=True)
    (workdir / "originals" / "letter").write_bytes(b"Dear archivist")
    settings.WORKDIR = workdir
    settings.SCRATCH_DIR = workdir / "tmp"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEILISEARCH_URL = None
    return tmp_path / "backups"


@pytest.mark.subprocess  # a backup in this process runs pg_dump when the suite runs on PostgreSQL
@pytest.mark.django_db
def test_each_tier_keeps_its_newest_backups_and_deletes_older_archives_and_records(backup_dir, settings):
    settings.BACKUP_RETAIN_HOURLY = 2
    hourly = [backup_create(tier="hourly") for _ in range(4)]
    daily = backup_create(tier="daily")

    kept = list(BackupRecord.objects.filter(tier="hourly").order_by("finished_at"))
    assert [record.pk for record in kept] == [hourly[2].pk, hourly[3].pk]
    assert BackupRecord.objects.filter(tier="daily").get().pk == daily.pk
    on_disk = sorted(path.name for path in backup_dir.iterdir())
    expected = sorted(Path(record.path).name for record in [*kept, daily])
    assert on_disk == sorted([*expected, *(f"{name}.sha256" for name in expected)])
    for record in [*kept, daily]:
        assert record.status == BackupStatus.SUCCEEDED
        assert record.size == Path(record.path).stat().st_size
        assert record.sha256 == hashlib.sha256(Path(record.path).read_bytes()).hexdigest()
    # The manifest lists WORKDIR's file, not the backups beside or below it.
    assert list(manifest_of(Path(daily.path)).files) == ["originals/letter"]


@pytest.mark.django_db
def test_a_backup_that_cannot_be_written_is_recorded_as_failed_with_a_readable_reason(
    backup_dir, settings, tmp_path
):
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("a file where the backups should go")
    settings.BACKUP_DIR = not_a_folder / "backups"

    with pytest.raises(CommandError, match=r"backup failed: cannot write to BACKUP_DIR .*: Not a directory"):
        call_command("backup", "--tier", "hourly")

    record = BackupRecord.objects.get()
    assert record.status == BackupStatus.FAILED
    assert record.error == f"cannot write to BACKUP_DIR {not_a_folder / 'backups'}: Not a directory"
    assert record.finished_at is not None
    assert check_backup().status is Status.FAIL  # the health checks see no successful backup
    with pytest.raises(BackupFailed):
        backup_create(tier="daily")
    assert BackupRecord.objects.filter(status=BackupStatus.FAILED).count() == 2


def test_failure_reasons_never_show_passwords_or_configured_secrets(settings):
    settings.MEILISEARCH_API_KEY = "meili-key-that-must-stay-secret"
    reason = failure_text(
        RuntimeError("connection to postgresql://docuelevate:hunter2-hunter2@db:5432/docs failed with key "
                     "meili-key-that-must-stay-secret")
    )  # fmt: skip
    assert "hunter2" not in reason
    assert "meili-key-that-must-stay-secret" not in reason
    assert reason.startswith("RuntimeError: connection to postgresql://docuelevate:********@db:5432/docs")


@pytest.mark.subprocess  # a backup in this process runs pg_dump when the suite runs on PostgreSQL
@pytest.mark.django_db
def test_with_meilisearch_the_backup_asks_for_a_dump_and_records_it_in_the_manifest(backup_dir, settings):
    with running_replay_server() as replay:
        settings.MEILISEARCH_URL, settings.MEILISEARCH_API_KEY = replay.url, API_KEY
        exchanges = replay.play("meilisearch_create_dump", RECORDINGS)["exchanges"]
        record = backup_create(tier="daily")

    assert len(replay.received) == len(exchanges)
    for received, exchange in zip(replay.received, exchanges, strict=True):
        assert_matches_recording(received, exchange["request"])
    assert manifest_of(Path(record.path)).meilisearch == {
        "task_uid": 318,
        "status": "succeeded",
        "dump_uid": "20261120-023000415",
    }
    assert record.status == BackupStatus.SUCCEEDED
    assert record.error == ""


@pytest.mark.subprocess  # a backup in this process runs pg_dump when the suite runs on PostgreSQL
@pytest.mark.django_db
def test_a_meilisearch_that_refuses_the_dump_leaves_a_good_backup_with_a_note(backup_dir, settings):
    refusal = {
        "request": {"method": "POST", "path": "/dumps"},
        "response": {
            "status": 403,
            "headers": {"Content-Type": "application/json"},
            "json": {
                "message": "The provided API key is invalid.",
                "code": "invalid_api_key",
                "type": "auth",
                "link": "https://docs.meilisearch.com/errors#invalid_api_key",
            },
        },
    }
    with running_replay_server() as replay:
        settings.MEILISEARCH_URL, settings.MEILISEARCH_API_KEY = replay.url, API_KEY
        replay.exchanges = [refusal]
        record = backup_create(tier="daily")

    assert record.status == BackupStatus.SUCCEEDED
    assert record.error.startswith("Meilisearch dump: ")
    assert "The provided API key is invalid." in record.error
    assert API_KEY not in record.error
    assert "invalid_api_key" in json.dumps(manifest_of(Path(record.path)).meilisearch)


@pytest.mark.django_db
def test_verify_without_any_backup_fails_and_says_how_to_make_one(backup_dir):
    output = io.StringIO()
    with pytest.raises(CommandError, match="verification failed"):
        call_command("backup", "--verify", stdout=output)
    assert "FAIL  backup  no successful backup is recorded; run python manage.py backup" in output.getvalue()


@pytest.mark.subprocess
def test_a_pg_dump_older_than_the_server_is_refused_with_the_package_to_install():
    if shutil.which("pg_dump") is None:
        service_missing("pg_dump is not installed (run scripts/install-system-packages.sh)")
    engine = PostgresDatabase({"NAME": "docuelevate", "HOST": "127.0.0.1"})
    # No client of a PostgreSQL 99 exists, so whatever pg_dump is installed is too old for it.
    with pytest.raises(BackupFailed, match=r"pg_dump \d+ cannot handle the PostgreSQL 99 server; "
                                           r"install postgresql-client-99"):  # fmt: skip
        engine.program("pg_dump", 990000)


@pytest.mark.django_db
def test_below_the_free_space_floor_a_backup_on_workdirs_disk_is_not_written_and_says_why(
    backup_dir, settings
):
    settings.MIN_FREE_DISK_MB = shutil.disk_usage(settings.WORKDIR).free // 1024**2 + 1024

    with pytest.raises(BackupFailed):
        backup_create(tier="hourly")

    record = BackupRecord.objects.get()
    assert record.status == BackupStatus.FAILED
    assert record.error.startswith("Not written: WORKDIR's disk is below MIN_FREE_DISK_MB")
    assert not list(Path(settings.BACKUP_DIR).glob("*.tar"))
