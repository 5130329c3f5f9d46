"""Backups that restore: the database, a manifest of WORKDIR, and a Meilisearch dump.

One backup is one tar file in BACKUP_DIR, ``docuelevate-<tier>-<UTC time>-<random>.tar``:

- ``database.pgdump`` (``pg_dump --format=custom``) or ``database.sqlite3.gz`` (SQLite's
  online backup API, then gzip), with the row count of every table *in the same snapshot*;
- ``files/<path>`` for every file under WORKDIR, only with ``include_files``;
- ``manifest.json`` last: format, tier, the row counts, every WORKDIR file with its size and
  SHA-256, and the Meilisearch dump task when Meilisearch is in use.

The archive is written under a hidden ``.partial`` name, synced and renamed, so a file with
the final name is always complete; a ``<name>.sha256`` beside it (``sha256sum -c`` format)
keeps its checksum for a machine whose database is gone. A ``BackupRecord`` is created as
``running`` first and ends ``succeeded`` (with size and SHA-256) or ``failed`` (with a
readable error, secrets masked), which productioncheck and the health page read.

Restoring and verifying live in ``ops.restore``, the database engines in
``ops.backup_engines``. Backups read WORKDIR directly rather than
through the documents storage: they are about the disk itself, and with
``DOCUMENT_STORAGE=s3`` the bucket is backed up by the bucket's own versioning.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import meilisearch
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError

from docuelevate import __version__, diskspace
from docuelevate.errors import ApplicationError, InsufficientStorage, InvalidInput
from docuelevate.security import mask_secrets, secret_values
from ops.backup_engines import CHUNK_SIZE, BackupCorrupt, BackupFailed, database
from ops.models import BackupRecord, BackupStatus, BackupTier

logger = logging.getLogger(__name__)

FORMAT = 1
ARCHIVE_PATTERN = "docuelevate-*.tar"
MANIFEST_NAME = "manifest.json"
FILES_PREFIX = "files/"
# Leftovers of a backup that died (``.name.partial``, ``.name.staging``) older than this go.
LEFTOVER_MAX_AGE = datetime.timedelta(hours=24)
# A dump of a large index takes a while; past this the backup records the task as unfinished.
MEILISEARCH_DUMP_WAIT_MS = 60_000
# SQLite files of any name (the test runs' databases too) and their journals.
SQLITE_FILE_PATTERNS = ("*.sqlite3", "*.sqlite3-wal", "*.sqlite3-shm", "*.sqlite3-journal")
__all__ = [
    "BackupCorrupt", "BackupFailed", "FileEntry", "Manifest", "backup_create", "backup_prune", "database",
    "file_digest", "read_manifest", "workdir_files",
]  # fmt: skip


# --- The manifest ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass
class Manifest:
    """What one backup holds, and what a restore of it must give back."""

    tier: str
    created_at: str
    vendor: str
    database_member: str
    tables: dict[str, int]
    files: dict[str, FileEntry]
    files_included: bool
    meilisearch: dict[str, Any] | None = None
    version: str = __version__
    format: int = FORMAT

    def to_json(self) -> bytes:
        document = {
            "format": self.format,
            "version": self.version,
            "tier": self.tier,
            "created_at": self.created_at,
            "database": {"vendor": self.vendor, "member": self.database_member, "tables": self.tables},
            "files": {
                "included": self.files_included,
                "entries": {
                    path: {"size": entry.size, "sha256": entry.sha256} for path, entry in self.files.items()
                },
            },
            "meilisearch": self.meilisearch,
        }
        return json.dumps(document, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            document = json.loads(raw)
            if document["format"] != FORMAT:
                raise BackupCorrupt(
                    f"the manifest has format {document['format']}; this version reads {FORMAT}"
                )
            database, files = document["database"], document["files"]
            return cls(
                tier=document["tier"],
                created_at=document["created_at"],
                vendor=database["vendor"],
                database_member=database["member"],
                tables={str(name): int(count) for name, count in database["tables"].items()},
                files={
                    str(path): FileEntry(size=int(entry["size"]), sha256=str(entry["sha256"]))
                    for path, entry in files["entries"].items()
                },
                files_included=bool(files["included"]),
                meilisearch=document.get("meilisearch"),
                version=document.get("version", ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupCorrupt(f"the manifest cannot be read ({exc.__class__.__name__}: {exc})") from None


def read_manifest(archive: tarfile.TarFile) -> Manifest:
    try:
        handle = archive.extractfile(MANIFEST_NAME)
    except KeyError:
        raise BackupCorrupt(f"the archive has no {MANIFEST_NAME}; it is not a DocuElevate backup") from None
    if handle is None:
        raise BackupCorrupt(f"{MANIFEST_NAME} in the archive is not a file")
    with handle:
        return Manifest.from_json(handle.read())


# --- Files -----------------------------------------------------------------------------------


def file_digest(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(size=size, sha256=digest.hexdigest())


class _HashingReader:
    """Hands a file to tarfile while hashing exactly the bytes that go into the archive."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _excluded_folders() -> list[Path]:
    """Folders under WORKDIR that hold nothing worth restoring, or the backups themselves."""
    workdir = Path(settings.WORKDIR)
    folders = [Path(settings.BACKUP_DIR), Path(settings.SCRATCH_DIR), workdir / "cache", workdir / "metrics"]
    for name in ("EMBEDDED_BROKER_DIR", "METRICS_DIR"):
        if value := getattr(settings, name, None):
            folders.append(Path(value))
    for cache in settings.CACHES.values():
        if cache.get("BACKEND", "").endswith("FileBasedCache"):
            folders.append(Path(cache["LOCATION"]))
    results = str(getattr(settings, "CELERY_RESULT_BACKEND", "") or "")
    if results.startswith("file://"):
        folders.append(Path(results.removeprefix("file://")))
    return [folder.resolve() for folder in folders]


def workdir_files() -> Iterator[tuple[str, Path]]:
    """Every regular file under WORKDIR worth restoring, as (relative POSIX path, path), sorted.

    Left out: the backup folder, the scratch folder, caches, the embedded broker's
    messages, metrics files and SQLite databases with their journals (the database is
    backed up on its own, consistently). Symbolic links are not followed.
    """
    workdir = Path(settings.WORKDIR).resolve()
    excluded = set(_excluded_folders())
    for root, folders, names in os.walk(workdir, followlinks=False):
        here = Path(root)
        folders[:] = sorted(folder for folder in folders if (here / folder).resolve() not in excluded)
        for name in sorted(names):
            path = here / name
            if any(fnmatch.fnmatch(name, pattern) for pattern in SQLITE_FILE_PATTERNS):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(workdir).as_posix(), path


def safe_relative_path(name: str) -> PurePosixPath:
    """A path from an archive, refused unless it stays inside the folder it is extracted to."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(part in ("..", "") for part in path.parts):
        raise BackupCorrupt(f"the archive names an unsafe path: {name!r}")
    return path


def _tar_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o640
    return info


def _add_workdir_files(archive: tarfile.TarFile | None) -> dict[str, FileEntry]:
    """Hash every WORKDIR file and, given an archive, add it; returns the manifest entries."""
    entries: dict[str, FileEntry] = {}
    for relative, path in workdir_files():
        try:
            if archive is None:
                entries[relative] = file_digest(path)
                continue
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                reader = _HashingReader(handle)
                archive.addfile(_tar_info(FILES_PREFIX + relative, stat.st_size, stat.st_mtime), reader)
            entries[relative] = FileEntry(size=stat.st_size, sha256=reader.digest.hexdigest())
        except FileNotFoundError:
            continue  # deleted while the backup ran: it is no longer part of WORKDIR
    return entries


# --- Meilisearch -----------------------------------------------------------------------------


def meilisearch_dump() -> dict[str, Any] | None:
    """Ask Meilisearch for a dump and wait a while for it; None when Meilisearch is not used.

    The dump stays on the Meilisearch server (its ``dumps/`` folder); the manifest keeps the
    task and dump uid to find it. A failure does not fail the backup: the index is derived
    from the database (``manage.py reindex`` rebuilds it); the error is kept instead.
    """
    if not settings.MEILISEARCH_URL:
        return None
    client = meilisearch.Client(
        str(settings.MEILISEARCH_URL), settings.MEILISEARCH_API_KEY, timeout=settings.MEILISEARCH_TIMEOUT
    )
    entry: dict[str, Any] = {}
    try:
        info = client.create_dump()
        entry.update(task_uid=info.task_uid, status=info.status)
        task = client.wait_for_task(info.task_uid, timeout_in_ms=MEILISEARCH_DUMP_WAIT_MS, interval_in_ms=200)
        entry["status"] = task.status
        if task.status == "succeeded":
            entry["dump_uid"] = (task.details or {}).get("dumpUid")
        else:
            entry["error"] = str((task.error or {}).get("message") or f"the dump task ended {task.status}")
    except MeilisearchTimeoutError as exc:
        # Either Meilisearch did not answer at all, or the dump outlasted our wait (and may
        # still finish: its task uid is recorded).
        entry["error"] = (
            f"the dump was not finished after {MEILISEARCH_DUMP_WAIT_MS // 1000} s; it may still be"
            if "task_uid" in entry
            else failure_text(exc)
        )
    except (MeilisearchApiError, MeilisearchCommunicationError, OSError) as exc:
        entry["error"] = failure_text(exc)
    if "error" in entry:
        logger.warning("Meilisearch dump: %s", entry["error"])
    return entry


# --- Creating and pruning --------------------------------------------------------------------


def failure_text(exc: BaseException) -> str:
    """A one-line reason, with every configured secret and the database password masked."""
    text = exc.message if isinstance(exc, ApplicationError) else f"{exc.__class__.__name__}: {exc}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    password = connections[DEFAULT_DB_ALIAS].settings_dict.get("PASSWORD")
    known = [*secret_values(), *([password] if password else [])]
    return mask_secrets(" ".join(text.split()), sorted(known, key=len, reverse=True))[:2000]


def _tier(tier: str) -> str:
    if tier not in BackupTier.values:
        raise InvalidInput(f"unknown backup tier {tier!r}; use one of {', '.join(BackupTier.values)}")
    return tier


def retention(tier: str) -> int:
    return int(getattr(settings, f"BACKUP_RETAIN_{_tier(tier).upper()}"))


def sidecar_of(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def _write_atomically(path: Path, content: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    partial.replace(path)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class _Written:
    path: Path
    entry: FileEntry
    manifest: Manifest = field(repr=False)


def _write_archive(record: BackupRecord, *, include_files: bool) -> _Written:
    backup_dir = Path(settings.BACKUP_DIR)
    stamp = record.started_at.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    final = backup_dir / f"docuelevate-{record.tier}-{stamp}-{secrets.token_hex(3)}.tar"
    record.path = str(final)
    record.save(update_fields=["path"])
    try:
        backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(backup_dir, os.W_OK):
            raise PermissionError(13, "Permission denied", str(backup_dir))
    except OSError as exc:
        raise BackupFailed(f"cannot write to BACKUP_DIR {backup_dir}: {exc.strerror or exc}") from None
    staging = backup_dir / f".{final.name}.staging"
    partial = backup_dir / f".{final.name}.partial"
    engine = database()
    try:
        staging.mkdir(mode=0o700)
        member = staging / engine.member
        tables = engine.dump(member)
        search_dump = meilisearch_dump()
        # Readable by the owner only: the archive holds every account's password hash.
        with partial.open("xb") as raw:
            os.fchmod(raw.fileno(), 0o600)
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
                with member.open("rb") as handle:
                    stat = os.fstat(handle.fileno())
                    archive.addfile(_tar_info(engine.member, stat.st_size, stat.st_mtime), handle)
                files = _add_workdir_files(archive if include_files else None)
                manifest = Manifest(
                    tier=record.tier,
                    created_at=timezone.now().isoformat(),
                    vendor=engine.vendor,
                    database_member=engine.member,
                    tables=tables,
                    files=files,
                    files_included=include_files,
                    meilisearch=search_dump,
                )
                content = manifest.to_json()
                archive.addfile(_tar_info(MANIFEST_NAME, len(content), time.time()), io.BytesIO(content))
            raw.flush()
            os.fsync(raw.fileno())
        entry = file_digest(partial)
        partial.replace(final)
        _write_atomically(sidecar_of(final), f"{entry.sha256}  {final.name}\n".encode())
        _fsync_folder(backup_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return _Written(path=final, entry=entry, manifest=manifest)


def backup_create(*, tier: str = "daily", include_files: bool = False) -> BackupRecord:
    """Back up the database, WORKDIR's manifest (and files) and Meilisearch; prune the tier.

    Raises BackupFailed, after marking the record ``failed`` with the reason, when anything
    goes wrong; the partial archive is removed. The record exists from the start, so a
    backup killed half-way stays visible as ``running``.
    """
    tier = _tier(tier)
    record = BackupRecord.objects.create(tier=tier, status=BackupStatus.RUNNING)
    started = time.monotonic()
    try:
        _require_room_for_backup()
        written = _write_archive(record, include_files=include_files)
    except Exception as exc:  # whatever broke, the record must say so for the health checks
        record.status, record.error, record.finished_at = (
            BackupStatus.FAILED,
            failure_text(exc),
            timezone.now(),
        )
        record.save(update_fields=["status", "error", "finished_at"])
        logger.error("%s backup failed: %s", tier, record.error)
        raise BackupFailed(record.error, record=record) from exc
    search_error = (written.manifest.meilisearch or {}).get("error")
    record.status, record.finished_at = BackupStatus.SUCCEEDED, timezone.now()
    record.size, record.sha256 = written.entry.size, written.entry.sha256
    record.error = f"Meilisearch dump: {search_error}" if search_error else ""
    record.save(update_fields=["status", "finished_at", "size", "sha256", "error"])
    logger.info(
        "%s backup written: %s (%d bytes, %d files listed) in %.1f s",
        tier, written.path.name, written.entry.size, len(written.manifest.files), time.monotonic() - started,
    )  # fmt: skip
    backup_prune(tier=tier)
    return record


def _require_room_for_backup() -> None:
    """A backup on WORKDIR's own disk while it is below its free-space floor would fill what
    documents need: it is not written (and the health checks see it failed, with why)."""
    folder = Path(settings.BACKUP_DIR)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # where it will be made
    try:
        same_disk = folder.stat().st_dev == Path(settings.WORKDIR).stat().st_dev
    except OSError:
        return  # writing the archive reports what is wrong with BACKUP_DIR
    if same_disk and not diskspace.has_room():
        raise InsufficientStorage(
            f"Not written: WORKDIR's disk is below MIN_FREE_DISK_MB ({settings.MIN_FREE_DISK_MB} MiB kept "
            "free for documents); free space, or put BACKUP_DIR on another disk."
        )


def _delete_archive(path_text: str) -> None:
    # Only ever our own archives: a record's path must not make us delete anything else.
    path = Path(path_text)
    if path_text and fnmatch.fnmatch(path.name, ARCHIVE_PATTERN):
        path.unlink(missing_ok=True)
        sidecar_of(path).unlink(missing_ok=True)


def _sweep_leftovers(backup_dir: Path) -> None:
    cutoff = time.time() - LEFTOVER_MAX_AGE.total_seconds()
    for leftover in [*backup_dir.glob(".docuelevate-*.partial"), *backup_dir.glob(".docuelevate-*.staging")]:
        with contextlib.suppress(OSError):
            if leftover.lstat().st_mtime < cutoff:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink()


def backup_prune(*, tier: str) -> list[str]:
    """Keep the newest ``BACKUP_RETAIN_<TIER>`` successful backups of a tier, delete the rest
    (archive, checksum file and record); failed records beyond the same count go too.

    Returns the paths of the archives deleted.
    """
    keep = retention(tier)
    removed = []
    succeeded = BackupRecord.objects.filter(tier=tier, status=BackupStatus.SUCCEEDED)
    for record in succeeded.order_by("-finished_at", "-pk")[keep:]:
        _delete_archive(record.path)
        removed.append(record.path)
        record.delete()
    failed = BackupRecord.objects.filter(tier=tier, status=BackupStatus.FAILED).order_by("-started_at", "-pk")
    BackupRecord.objects.filter(pk__in=list(failed.values_list("pk", flat=True)[keep:])).delete()
    backup_dir = Path(settings.BACKUP_DIR)
    if backup_dir.is_dir():
        _sweep_leftovers(backup_dir)
    if removed:
        logger.info("pruned %d %s backup(s) beyond the newest %d", len(removed), tier, keep)
    return removed
