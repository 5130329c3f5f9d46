"""Restoring a backup of ``ops.backup``, and proving that the newest one restores.

``backup_restore`` replaces the database the application uses with the archive's copy (all
or nothing: one transaction on PostgreSQL, SQLite's backup API on SQLite), puts back the
files the archive holds and reports the files it lists that WORKDIR lacks. It refuses a
database that already holds data unless forced, and checks the archive against its
checksum first (the record's, else the ``.sha256`` file beside it).

``backup_verify`` restores the newest successful backup into a scratch database (a
temporary database on the same PostgreSQL server, or a temporary SQLite file), compares
the row count of every table with the manifest, and the files (in the archive, else in
WORKDIR) with their SHA-256. Nothing of the live installation is touched.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from docuelevate.errors import Conflict, InvalidInput, NotFound
from ops.backup import (
    ARCHIVE_PATTERN,
    FILES_PREFIX,
    FileEntry,
    Manifest,
    failure_text,
    file_digest,
    read_manifest,
    safe_relative_path,
    sidecar_of,
)
from ops.backup_engines import CHUNK_SIZE, BackupCorrupt, BackupFailed, Database, database, scratch_parent
from ops.models import BackupRecord, BackupStatus, BackupTier

logger = logging.getLogger(__name__)

# Tables Django, the scheduler and the backups fill by themselves: rows there do not make a
# database "hold data" that a restore would destroy.
BOOKKEEPING_TABLES = frozenset({"django_content_type", "auth_permission", "django_session", "django_site"})
BOOKKEEPING_PREFIXES = ("django_celery_beat_", "ops_")
LISTED = 5  # names shown of a longer list of differences


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


# --- Reports ---------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    archive: Path
    checksum: str
    vendor: str
    counts: dict[str, int]
    files_restored: int
    files_missing: list[str]
    files_changed: list[str]
    meilisearch: dict[str, Any] | None
    pending_migrations: list[str]

    def lines(self) -> list[str]:
        rows = sum(self.counts.values())
        lines = [
            f"Restored {self.archive.name} ({self.checksum})",
            f"database: {self.vendor}, {len(self.counts)} tables, {rows} rows",
            f"files: {self.files_restored} put back into WORKDIR",
        ]
        if self.files_missing or self.files_changed:
            lines.append(
                f"WARNING: WORKDIR lacks {len(self.files_missing)} and has {len(self.files_changed)} changed "
                f"of the files the backup lists: {_listing(self.files_missing + self.files_changed)}; "
                "restore them from your copy of WORKDIR"
            )
        if self.meilisearch is not None:
            dump = self.meilisearch.get("dump_uid") or "none"
            lines.append(
                f"Meilisearch: dump {dump} is kept by the Meilisearch server; import it there "
                "(meilisearch --import-dump) or rebuild the index with python manage.py reindex"
            )
        if self.pending_migrations:
            lines.append(
                f"the backup predates {len(self.pending_migrations)} migration(s): run manage.py migrate"
            )
        return lines


@dataclass(frozen=True)
class VerifyCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    """The verdict of ``backup --verify``: one check per part, OK or FAIL."""

    archive: str
    checks: list[VerifyCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(VerifyCheck(name, ok, detail))
        return ok

    def lines(self) -> list[str]:
        lines = [f"Verifying {self.archive or 'the newest backup'}"]
        width = max((len(check.name) for check in self.checks), default=0)
        lines += [
            f"{'OK  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}"
            for check in self.checks
        ]
        lines.append(
            "The backup restores as recorded." if self.ok else "The backup does NOT restore as recorded."
        )
        return lines


# --- Reading an archive ----------------------------------------------------------------------


def resolve_source(source: str | int | Path) -> Path:
    """The archive meant by a path, a folder of archives (the newest) or a record id."""
    text = str(source)
    path = Path(text).expanduser()
    if not path.exists() and text.isdigit():
        record = BackupRecord.objects.filter(pk=int(text)).first()
        if record is None:
            raise NotFound(f"there is no backup record #{text}")
        if record.status != BackupStatus.SUCCEEDED:
            raise InvalidInput(f"backup #{text} did not succeed ({record.status}); it cannot be restored")
        path = Path(record.path)
    if path.is_dir():
        archives = sorted(path.glob(ARCHIVE_PATTERN), key=lambda candidate: candidate.stat().st_mtime)
        if not archives:
            raise NotFound(f"{path} holds no DocuElevate backup ({ARCHIVE_PATTERN})")
        path = archives[-1]
    if not path.is_file():
        raise NotFound(f"the backup {path} does not exist")
    return path.resolve()


def _expected_checksum(archive: Path) -> tuple[str, str] | None:
    """The SHA-256 the archive should have, and where that comes from."""
    try:
        record = (
            BackupRecord.objects.filter(path=str(archive), status=BackupStatus.SUCCEEDED)
            .exclude(sha256="")
            .first()
        )
    except DatabaseError:
        record = None  # a fresh database without tables yet: the checksum file must do
    if record is not None:
        return record.sha256, f"backup record #{record.pk}"
    sidecar = sidecar_of(archive)
    if sidecar.is_file():
        words = sidecar.read_text(errors="replace").split()
        if words:
            return words[0].lower(), sidecar.name
    return None


def check_checksum(archive: Path) -> str:
    expected = _expected_checksum(archive)
    if expected is None:
        return "checksum not checked: no record and no .sha256 file for it"
    sha256, origin = expected
    actual = file_digest(archive).sha256
    if actual != sha256:
        raise BackupCorrupt(
            f"{archive.name} has SHA-256 {actual}, but {origin} says {sha256}: "
            "the archive is damaged or was changed"
        )
    return f"SHA-256 matches {origin}"


def _extract_database(archive: tarfile.TarFile, manifest: Manifest, engine: Database, folder: Path) -> Path:
    if manifest.vendor != engine.vendor or manifest.database_member != engine.member:
        raise InvalidInput(
            f"the backup holds a {manifest.vendor} database, but this installation uses {engine.vendor}; "
            "restore it into the same kind of database"
        )
    try:
        member = archive.getmember(engine.member)
    except KeyError:
        raise BackupCorrupt(f"the archive lacks its database copy {engine.member}") from None
    source = archive.extractfile(member)
    if source is None or not member.isreg():
        raise BackupCorrupt(f"{engine.member} in the archive is not a file")
    target = folder / engine.member
    with source, target.open("wb") as handle:
        shutil.copyfileobj(source, handle, CHUNK_SIZE)
    return target


def _archive_files(archive: tarfile.TarFile, manifest: Manifest) -> Iterable[tuple[str, tarfile.TarInfo]]:
    for member in archive.getmembers():
        if not member.name.startswith(FILES_PREFIX):
            continue
        relative = safe_relative_path(member.name.removeprefix(FILES_PREFIX)).as_posix()
        if relative not in manifest.files or not member.isreg():
            raise BackupCorrupt(f"the archive holds {member.name}, which its manifest does not list")
        yield relative, member


def _compare_workdir(manifest: Manifest) -> tuple[list[str], list[str]]:
    """The files the manifest lists that WORKDIR lacks, and those it has with other content."""
    workdir = Path(settings.WORKDIR)
    missing, changed = [], []
    for relative, expected in manifest.files.items():
        path = workdir / safe_relative_path(relative)
        if not path.is_file():
            missing.append(relative)
        elif file_digest(path) != expected:
            changed.append(relative)
    return missing, changed


def _hash_stream(source: IO[bytes], sink: IO[bytes] | None = None) -> FileEntry:
    """Size and SHA-256 of a stream, copied to ``sink`` on the way when one is given."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return FileEntry(size=size, sha256=digest.hexdigest())


def _restore_files(
    archive: tarfile.TarFile, manifest: Manifest, archived: list[tuple[str, tarfile.TarInfo]]
) -> int:
    """Put the archive's files back under WORKDIR, each checked against the manifest and
    renamed into place; files already there with the right content are left alone."""
    workdir = Path(settings.WORKDIR).resolve()
    restored = 0
    for relative, member in archived:
        target = workdir / relative
        expected = manifest.files[relative]
        if target.is_file() and file_digest(target) == expected:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(workdir):
            raise BackupCorrupt(f"{relative} would land outside WORKDIR (a symbolic link on the way)")
        partial = target.with_name(f".{target.name}.restoring")
        source = archive.extractfile(member)
        if source is None:
            raise BackupCorrupt(f"{member.name} in the archive cannot be read")
        with source, partial.open("wb") as sink:
            written = _hash_stream(source, sink)
        if written != expected:
            partial.unlink(missing_ok=True)
            raise BackupCorrupt(f"{relative} in the archive does not match its SHA-256 in the manifest")
        partial.chmod(0o640)
        partial.replace(target)
        restored += 1
    return restored


# --- Restoring -------------------------------------------------------------------------------


def tables_with_rows(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The application's tables that hold rows, bookkeeping aside; empty for a new database."""
    connection = connections[alias]
    occupied = []
    with connection.cursor() as cursor:
        for table in sorted(
            connection.introspection.django_table_names(only_existing=True, include_views=False)
        ):
            if table in BOOKKEEPING_TABLES or table.startswith(BOOKKEEPING_PREFIXES):
                continue
            # The name comes from the models, quoted by the backend: nothing from outside.
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT 1")  # noqa: S608 - see above
            if cursor.fetchone():
                occupied.append(table)
    return occupied


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def records_reconcile() -> int:
    """Make the backup records match the archives in BACKUP_DIR after a restore.

    The restored records are those of the backup's moment: the backup itself is still
    ``running`` there, later backups are unknown and some archives were pruned since.
    Archives with a checksum file become ``succeeded`` records; records of archives gone
    from BACKUP_DIR are removed. Returns how many records changed.
    """
    backup_dir = Path(settings.BACKUP_DIR)
    if not backup_dir.is_dir():
        return 0
    on_disk = {str(path): path for path in backup_dir.glob(ARCHIVE_PATTERN) if sidecar_of(path).is_file()}
    changed = 0
    prefix = str(backup_dir) + os.sep
    for record in BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED, path__startswith=prefix):
        if record.path not in on_disk:
            record.delete()
            changed += 1
    known = set(BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED).values_list("path", flat=True))
    for path_text, path in sorted(on_disk.items()):
        if path_text in known:
            continue
        try:
            words = sidecar_of(path).read_text(errors="replace").split()
            with tarfile.open(path, "r:") as archive:
                manifest = read_manifest(archive)
            finished = datetime.datetime.fromisoformat(manifest.created_at)
        except (OSError, ValueError, tarfile.TarError, BackupFailed):
            continue
        if not words or manifest.tier not in BackupTier.values:
            continue
        record = BackupRecord.objects.filter(path=path_text).first() or BackupRecord(
            path=path_text, started_at=finished
        )
        record.tier, record.status, record.finished_at = manifest.tier, BackupStatus.SUCCEEDED, finished
        record.size, record.sha256, record.error = path.stat().st_size, words[0].lower(), ""
        record.save()
        changed += 1
    return changed


def backup_restore(*, source: str | int | Path, force: bool = False) -> RestoreReport:
    """Replace the database (and the archived files) with a backup's; see the module doc.

    Refuses (Conflict) a database whose tables hold data unless ``force``. Stop the web,
    worker and beat processes first: a restore waits only briefly for their locks.
    """
    archive_path = resolve_source(source)
    checksum = check_checksum(archive_path)
    engine = database()
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:
        raise BackupFailed("a restore replaces the whole database and cannot run inside a transaction")
    try:
        with tarfile.open(archive_path, "r:") as archive:
            manifest = read_manifest(archive)
            occupied = tables_with_rows()
            if occupied and not force:
                raise Conflict(
                    f"the database already holds data (in {_listing(occupied)}); "
                    "restore into an empty database, or pass --force to replace it"
                )
            # Every name is checked before anything changes: a hostile archive changes nothing.
            archived = list(_archive_files(archive, manifest)) if manifest.files_included else []
            for relative in manifest.files:
                safe_relative_path(relative)
            replace = connection.introspection.table_names() if engine.vendor == "postgresql" else []
            with tempfile.TemporaryDirectory(dir=scratch_parent(), prefix="restore-") as folder:
                member = _extract_database(archive, manifest, engine, Path(folder))
                # Our own connection must hold no lock or cached state across the swap.
                connection.close()
                engine.restore(member, replace=replace)
            connection.close()
            logger.info("database restored from %s", archive_path.name)
            restored = _restore_files(archive, manifest, archived)
    except tarfile.TarError as exc:
        raise BackupCorrupt(f"{archive_path.name} is not a readable backup archive ({exc})") from None
    missing, changed = _compare_workdir(manifest)
    records_reconcile()
    return RestoreReport(
        archive=archive_path,
        checksum=checksum,
        vendor=engine.vendor,
        counts=engine.counts(),
        files_restored=restored,
        files_missing=missing,
        files_changed=changed,
        meilisearch=manifest.meilisearch,
        pending_migrations=pending_migrations(),
    )


# --- Verifying -------------------------------------------------------------------------------


def _verify_database(report: VerifyReport, archive: tarfile.TarFile, manifest: Manifest) -> None:
    engine = database()
    try:
        with tempfile.TemporaryDirectory(dir=scratch_parent(), prefix="verify-") as folder:
            member = _extract_database(archive, manifest, engine, Path(folder))
            with engine.scratch() as target:
                engine.restore(member, target=target)
                counts = engine.counts(target)
    except Exception as exc:  # any failure to restore is the verdict itself
        report.add("database", False, f"does not restore into a scratch database: {failure_text(exc)}")
        return
    differences = [
        f"{table} ({manifest.tables.get(table, 'absent')} recorded, {counts.get(table, 'absent')} restored)"
        for table in sorted(set(manifest.tables) | set(counts))
        if manifest.tables.get(table) != counts.get(table)
    ]
    if differences:
        report.add(
            "database", False, f"row counts differ in {len(differences)} table(s): {_listing(differences)}"
        )
    else:
        rows = sum(counts.values())
        report.add(
            "database",
            True,
            f"restored into a scratch database: {len(counts)} tables, {rows} rows as recorded",
        )


def _verify_files(report: VerifyReport, archive: tarfile.TarFile, manifest: Manifest) -> None:
    total = len(manifest.files)
    if manifest.files_included:
        seen: set[str] = set()
        changed = []
        for relative, member in _archive_files(archive, manifest):
            source = archive.extractfile(member)
            if source is None:
                continue
            with source:
                entry = _hash_stream(source)
            seen.add(relative)
            if entry != manifest.files[relative]:
                changed.append(relative)
        missing = sorted(set(manifest.files) - seen)
        where = "in the archive"
    else:
        missing, changed = _compare_workdir(manifest)
        where = "in WORKDIR"
    problems = [f"{name} (missing)" for name in missing] + [f"{name} (changed)" for name in changed]
    if problems:
        report.add("files", False, f"{len(problems)} of {total} files differ {where}: {_listing(problems)}")
    else:
        report.add("files", True, f"all {total} files listed are {where} with the same SHA-256")


def backup_verify(*, record: BackupRecord | None = None, tier: str | None = None) -> VerifyReport:
    """Prove that a backup (by default the newest successful one) restores as recorded."""
    if record is None:
        newest = BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED, finished_at__isnull=False)
        if tier:
            newest = newest.filter(tier=tier)
        record = newest.order_by("-finished_at", "-pk").first()
    if record is None:
        report = VerifyReport(archive="")
        report.add("backup", False, "no successful backup is recorded; run python manage.py backup")
        return report
    archive_path = Path(record.path)
    report = VerifyReport(archive=str(archive_path))
    if not archive_path.is_file():
        report.add("archive", False, f"backup #{record.pk} ({record.tier}) is recorded, but its file is gone")
        return report
    entry = file_digest(archive_path)
    if entry != FileEntry(size=record.size or 0, sha256=record.sha256):
        report.add(
            "checksum",
            False,
            "size or SHA-256 differs from the record: the archive is damaged or was changed",
        )
        return report
    report.add(
        "checksum", True, f"{entry.size} bytes, SHA-256 as recorded (backup #{record.pk}, {record.tier})"
    )
    try:
        with tarfile.open(archive_path, "r:") as archive:
            manifest = read_manifest(archive)
            _verify_database(report, archive, manifest)
            _verify_files(report, archive, manifest)
    except (tarfile.TarError, BackupFailed, OSError) as exc:
        report.add("archive", False, failure_text(exc))
        return report
    if manifest.meilisearch is not None:
        search = manifest.meilisearch
        # The index is rebuilt from the database by reindex; a missing dump costs time, not data.
        detail = (
            f"dump {search['dump_uid']} (task {search.get('task_uid')}) kept by the Meilisearch server"
            if search.get("dump_uid")
            else f"no dump ({search.get('error', 'unknown')}); python manage.py reindex rebuilds the index"
        )
        report.add("meilisearch", True, detail)
    return report
