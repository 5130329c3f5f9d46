"""How each database engine is copied out of a backup and back in, and counted.

SQLite through its online backup API (a consistent snapshot while other processes write);
PostgreSQL through its own client programs (``pg_dump``, ``pg_restore``, ``psql``), which
must be at least as new as the server. The row counts of every table come from the same
snapshot as the copy, so a restore can be checked against them.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

from docuelevate.errors import ApplicationError, InvalidInput

if TYPE_CHECKING:
    from ops.models import BackupRecord

CHUNK_SIZE = 1024 * 1024
# A restore waits this long for a lock on a table (a web or worker process still using it)
# before it gives up and changes nothing.
RESTORE_LOCK_TIMEOUT = "30s"


class BackupFailed(ApplicationError):
    """A backup, restore or verification could not be done; the message says why."""

    def __init__(self, message: str, *, record: BackupRecord | None = None) -> None:
        super().__init__(message)
        self.record = record


class BackupCorrupt(BackupFailed):
    """An archive does not match its checksum or its own manifest."""


class Database(Protocol):
    """How one database engine is copied out, restored and counted.

    A ``target`` is where a restore writes: ``None`` for the database the application uses,
    else what ``scratch()`` gave (a database name, or a file path for SQLite).
    """

    vendor: str
    member: str

    def dump(self, target: Path) -> dict[str, int]:
        """Write a consistent copy to ``target``; the row counts of that very copy."""
        ...

    def restore(self, member: Path, *, target: str | None = None, replace: Sequence[str] = ()) -> None:
        """Replace the content of ``target`` with the copy in ``member``, all or nothing."""
        ...

    def scratch(self) -> contextlib.AbstractContextManager[str]:
        """A throwaway target, removed on exit."""
        ...

    def counts(self, target: str | None = None) -> dict[str, int]: ...


def _sqlite_counts(database: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name"
        )
    ]
    # Identifiers come from the database's own catalogue, quoted; nothing from outside.
    count = 'SELECT count(*) FROM "{}"'
    return {name: database.execute(count.format(name.replace('"', '""'))).fetchone()[0] for name in names}


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a whole SQLite database with its online backup API: a consistent snapshot, even
    while other processes write (WAL), and the target's readers see the new content."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as origin,
        contextlib.closing(sqlite3.connect(target, timeout=30)) as destination,
    ):
        origin.backup(destination)


class SqliteDatabase:
    vendor = "sqlite"
    member = "database.sqlite3.gz"

    def __init__(self, settings_dict: dict[str, Any]) -> None:
        self.path = Path(settings_dict["NAME"])

    def dump(self, target: Path) -> dict[str, int]:
        plain = target.with_suffix("")
        _sqlite_copy(self.path, plain)
        with contextlib.closing(sqlite3.connect(plain)) as copy:
            # One self-contained file, without a -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            counts = _sqlite_counts(copy)
        with plain.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(source, packed, CHUNK_SIZE)
        plain.unlink()
        return counts

    def restore(self, member: Path, *, target: str | None = None, replace: Sequence[str] = ()) -> None:
        plain = member.with_suffix("")
        try:
            with gzip.open(member, "rb") as packed, plain.open("wb") as unpacked:
                shutil.copyfileobj(packed, unpacked, CHUNK_SIZE)
        except (OSError, EOFError) as exc:
            raise BackupCorrupt(f"the database copy in the archive cannot be unpacked ({exc})") from None
        try:
            with contextlib.closing(sqlite3.connect(plain)) as copy:
                verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupCorrupt(
                f"the database copy in the archive is not a SQLite database ({exc})"
            ) from None
        if verdict != "ok":
            raise BackupCorrupt(f"the database copy in the archive is damaged: {verdict}")
        _sqlite_copy(plain, Path(target) if target else self.path)
        plain.unlink()

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(dir=scratch_parent(), prefix="verify-") as folder:
            yield str(Path(folder) / "verify.sqlite3")

    def counts(self, target: str | None = None) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(target or self.path, timeout=30)) as database:
            return _sqlite_counts(database)


# libpq connection keywords and the environment variables its programs read them from.
LIBPQ_ENVIRONMENT = {
    "host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE", "service": "PGSERVICE",
}  # fmt: skip
PG_COUNT_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"


def _pg_counts(connection: psycopg.Connection[Any]) -> dict[str, int]:
    names = [row[0] for row in connection.execute(PG_COUNT_TABLES).fetchall()]
    counts = {}
    for name in names:
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


class PostgresDatabase:
    """PostgreSQL through its own client programs, which must be as new as the server.

    The password reaches them in PGPASSWORD, never on a command line (where ``ps`` shows it).
    """

    vendor = "postgresql"
    member = "database.pgdump"

    def __init__(self, settings_dict: dict[str, Any]) -> None:
        options = settings_dict.get("OPTIONS") or {}
        self.params: dict[str, str] = {
            key: str(value)
            for key, value in {
                "dbname": settings_dict.get("NAME"),
                "user": settings_dict.get("USER"),
                "password": settings_dict.get("PASSWORD"),
                "host": settings_dict.get("HOST"),
                "port": settings_dict.get("PORT"),
                **{key: value for key, value in options.items() if key in LIBPQ_ENVIRONMENT},
            }.items()
            if value not in (None, "")
        }
        self.params.setdefault("application_name", "docuelevate-backup")

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        params = {**self.params, **({"dbname": dbname} if dbname else {})}
        return psycopg.connect(make_conninfo("", **params), **kwargs)

    def environment(self, dbname: str | None = None, **extra: str) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        params = {**self.params, **({"dbname": dbname} if dbname else {})}
        env.update({LIBPQ_ENVIRONMENT[key]: value for key, value in params.items()})
        for name, value in extra.items():
            env[name] = f"{env[name]} {value}" if env.get(name) else value
        return env

    def program(self, name: str, server_version: int) -> str:
        """The client program ``name`` for this server: Debian keeps each major version in
        /usr/lib/postgresql/<major>/bin; ``pg_dump`` refuses a server newer than itself."""
        major = server_version // 10000
        candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{name}"), shutil.which(name)]
        found = next((str(path) for path in candidates if path and os.access(path, os.X_OK)), None)
        if found is None:
            raise BackupFailed(
                f"{name} is not installed; install the PostgreSQL {major} client programs "
                "(scripts/install-system-packages.sh, or apt-get install postgresql-client)"
            )
        answer = subprocess.run([found, "--version"], capture_output=True, text=True, check=False, timeout=30)
        version = re.search(r"\)\s+(\d+)", answer.stdout)
        if version is None or int(version.group(1)) < major:
            have = version.group(1) if version else "of unknown version"
            raise BackupFailed(
                f"{name} {have} cannot handle the PostgreSQL {major} server; "
                f"install postgresql-client-{major} (from apt.postgresql.org where Debian lacks it)"
            )
        return found

    def _server_version(self) -> int:
        with self.connect(connect_timeout=10) as connection:
            return connection.info.server_version

    def dump(self, target: Path) -> dict[str, int]:
        # The counts and pg_dump read one exported snapshot, so they describe the same data
        # even while documents keep arriving.
        with self.connect(connect_timeout=10) as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            row = connection.execute("SELECT pg_export_snapshot()").fetchone()
            snapshot = str(row[0]) if row else ""
            counts = _pg_counts(connection)
            pg_dump = self.program("pg_dump", connection.info.server_version)
            _run(
                [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}", f"--file={target}"],
                env=self.environment(),
                what="pg_dump",
            )
            connection.rollback()
        return counts

    def restore(self, member: Path, *, target: str | None = None, replace: Sequence[str] = ()) -> None:
        version = self._server_version()
        pg_restore, psql = self.program("pg_restore", version), self.program("psql", version)
        # pg_restore writes the SQL, psql runs it in ONE transaction after dropping the old
        # tables: a restore that fails half-way leaves the database as it was.
        psql_command = [
            psql,
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            "--single-transaction",
        ]
        if replace:
            tables = ", ".join(sql.Identifier(name).as_string() for name in replace)
            psql_command += ["--command", f"DROP TABLE IF EXISTS {tables} CASCADE"]
        psql_command += ["--file=-"]
        # No owners, grants or comments: the restoring user owns what it creates, and a
        # COMMENT ON EXTENSION would need the extension's owner.
        restore_command = [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--no-comments",
            "--file=-",
            str(member),
        ]
        env = self.environment(target, PGOPTIONS=f"-c lock_timeout={RESTORE_LOCK_TIMEOUT}")
        with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
            producer = subprocess.Popen(
                restore_command, stdout=subprocess.PIPE, stderr=restore_errors, env=self.environment(target)
            )
            assert producer.stdout is not None  # stdout=PIPE gives one
            consumer = subprocess.Popen(
                psql_command, stdin=producer.stdout, stdout=subprocess.DEVNULL, stderr=psql_errors, env=env
            )
            producer.stdout.close()  # psql holds the only reader now: pg_restore sees EPIPE if psql dies
            consumer.wait()
            producer.wait()
            for process, errors, what in (
                (producer, restore_errors, "pg_restore"),
                (consumer, psql_errors, "psql"),
            ):
                if process.returncode != 0:
                    errors.seek(0)
                    raise BackupFailed(f"{what} failed (exit {process.returncode}): {_tail(errors.read())}")

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        name = f"{self.params.get('dbname', 'docuelevate')[:40]}_verify_{secrets.token_hex(4)}"
        identifier = sql.Identifier(name)
        try:
            with self.connect(autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(identifier))
        except psycopg.errors.InsufficientPrivilege:
            raise BackupFailed(
                "the database user may not create the scratch database that verification restores into; "
                "grant it CREATEDB (ALTER ROLE ... CREATEDB)"
            ) from None
        try:
            yield name
        finally:
            with self.connect(autocommit=True, connect_timeout=10) as admin:
                force = " WITH (FORCE)" if admin.info.server_version >= 130000 else ""
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}" + force).format(identifier))

    def counts(self, target: str | None = None) -> dict[str, int]:
        with self.connect(target, autocommit=True, connect_timeout=10) as connection:
            return _pg_counts(connection)


def database(alias: str = DEFAULT_DB_ALIAS) -> Database:
    """The engine of the database the application uses."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return PostgresDatabase(connection.settings_dict)
    if connection.vendor == "sqlite":
        return SqliteDatabase(connection.settings_dict)
    raise InvalidInput(f"{connection.display_name} cannot be backed up; use PostgreSQL or SQLite")


def _tail(stderr: bytes, lines: int = 15) -> str:
    text = stderr.decode(errors="replace").strip()
    return " | ".join(text.splitlines()[-lines:]) or "no message"


def _run(command: list[str], *, env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, check=False)
    if result.returncode != 0:
        raise BackupFailed(f"{what} failed (exit {result.returncode}): {_tail(result.stderr)}")


def scratch_parent() -> Path:
    """Where restores and verifications unpack: the local scratch folder (never backed up)."""
    folder = Path(settings.SCRATCH_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
