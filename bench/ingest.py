"""Benchmark: a mailbox and a watched folder taken in by a poller killed mid-run, against
uploading the same files through the API, in one run.

    .venv/bin/python bench/ingest.py [--count 1000] [--kill-at 400] [--lease 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/docuelevate_bench_ingest] [--keep]

Starts Debian's Dovecot (``sources/tests/servers/dovecot.py``, IMAPS with a throwaway CA)
and a throwaway installation (SQLite in its own WORKDIR, or a throwaway PostgreSQL
database with ``--database-url``, dropped at the end; the embedded broker). It appends
``--count`` mails with one distinct small PDF each to an account's INBOX, writes
``--count`` other distinct PDFs to a watched folder, and configures one system-wide IMAP
source and one watched-folder source on them. The folder's ``settle_seconds`` is 1 instead
of the default 5: the files are complete before the poller starts, and the bench measures
taking them in, not waiting for a scanner.

Each channel is then taken in by ``manage.py poll_sources --once --source <name>`` in a
process of its own, SIGKILLed once ``--kill-at`` documents of that source exist. The
killed poller leaves its lease behind (``SOURCES_POLL_LEASE_SECONDS`` is ``--lease`` for
the run, 300 in production): the bench waits for it to run out and starts the poller again,
which must finish the channel. The channel's time is the two runs' working time (start to
kill, start to exit), the lease's wait printed beside it.

The baseline is the same files uploaded through the API (``POST /api/ui-upload``, a real
API token, by another user so deduplication cannot short-cut them) one after another by a
plain client (requests) against gunicorn with two workers, in the same run; rate limiting
is off for the run (600 uploads a minute would otherwise stop it). The ratio is
time(poller) / time(API) per channel.

"Ingested" means the Document row exists, as after an upload's answer: the pipeline is
off (its tasks wait in the embedded broker, which no worker reads), so neither channel
pays for OCR, and the comparison is between the doors alone.

Finally it counts, per channel: documents (must equal ``--count``), duplicates (a source
reference twice, the same content twice, or a row recorded as a duplicate), missing
content, ledger items not ingested, and for the folder the files left outside processed/,
for the mailbox the mail not marked seen; the same for the API's uploads. Any count that
is wrong ends the bench with exit status 1.

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _common import start_gunicorn

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

# Files in the watched folder are complete before the poller starts: no need for the
# production default's five seconds.
SETTLE_SECONDS = 1
POLLER_TIMEOUT = 1800
GUNICORN_WORKERS = 2


@dataclass
class Channel:
    """One door: its source's name and kind, and the files it must take in (name -> bytes)."""

    label: str
    kind: str
    source_name: str
    files: dict[str, bytes]
    hashes: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.hashes = {hashlib.sha256(content).hexdigest() for content in self.files.values()}


@dataclass
class PollerRuns:
    """How the killed poller and its successor went."""

    until_kill: float = 0.0
    killed_at: int = -1  # documents of the source when the kill landed; -1: it ended first
    lease_wait: float = 0.0
    to_the_end: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def working(self) -> float:
        return self.until_kill + self.to_the_end


# --- The installation ------------------------------------------------------------------------


def bench_environment(
    workdir: Path, *, database_url: str | None, ca_file: Path, lease: int
) -> dict[str, str]:
    """The installation's environment: this process's, the pollers' and gunicorn's alike."""
    env = {**os.environ, "WORKDIR": str(workdir), "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    # One secret for every process of the run: the mailbox's password is sealed with it.
    env.update(DJANGO_SETTINGS_MODULE="docuelevate.settings", SESSION_SECRET=secrets.token_urlsafe(48))
    env.update(PYTHONUNBUFFERED="1", IMAP_CA_BUNDLE=str(ca_file), SOURCES_POLL_LEASE_SECONDS=str(lease))
    env.update(RATE_LIMITING_ENABLED="false")
    # The embedded broker: the pipeline's tasks wait in WORKDIR, read by no worker.
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


def postgres_admin(database_url: str, statement: str) -> None:
    """CREATE/DROP DATABASE, which cannot run inside a transaction, from the server's
    ``postgres`` database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(sql.SQL(statement).format(sql.Identifier(name)))


# --- What comes in ---------------------------------------------------------------------------


def distinct_pdfs(prefix: str, count: int, run_mark: str) -> dict[str, bytes]:
    """``count`` small one-page PDFs, each with a text of its own (so no two share a hash
    and deduplication cannot hide a document taken twice)."""
    from documents.tests.samples import text_pdf

    return {
        f"{prefix}-{number:04d}.pdf": text_pdf(f"{prefix} {number} of bench run {run_mark}")
        for number in range(count)
    }


def fill_mailbox(dovecot: Any, account: Any, attachments: dict[str, bytes]) -> float:
    """One mail per attachment in INBOX; the seconds it took."""
    from sources.tests import mails

    started = time.perf_counter()
    messages = []
    for name, content in attachments.items():
        message = mails.new_mail(subject=f"Scan {name}")
        mails.add_pdf(message, filename=name, pdf=content)
        messages.append(mails.mail_bytes(message))
    dovecot.append_many(account, "INBOX", messages)
    return time.perf_counter() - started


def fill_folder(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)


def wait_until_settled(folder: Path) -> None:
    """Until the newest file is older than the settle time, so the first look takes them all."""
    newest = max(max(path.stat().st_mtime, path.stat().st_ctime) for path in folder.iterdir())
    time.sleep(max(0.0, newest + SETTLE_SECONDS + 0.2 - time.time()))


# --- The baseline: uploads through the API --------------------------------------------------


def api_uploads(url: str, token: str, files: dict[str, bytes]) -> float:
    """Seconds to upload ``files`` one after another, each answered before the next."""
    import requests

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        for name, content in files.items():
            answer = session.post(
                f"{url}/api/ui-upload", files={"file": (name, content, "application/pdf")}, timeout=60
            )
            if answer.status_code != 200:
                raise SystemExit(f"uploading {name} answered {answer.status_code}: {answer.text[:500]}")
        return time.perf_counter() - started


# --- The pollers -----------------------------------------------------------------------------


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def start_poller(env: dict[str, str], source_name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "poll_sources", "--once", "--source", source_name],
            cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def take_in_killed(env: dict[str, str], channel: Channel, *, kill_at: int, logs: Path) -> PollerRuns:
    """The channel taken in by a poller SIGKILLed after ``kill_at`` documents, then by a
    second one, started once the first one's lease has run out."""
    from django.utils import timezone

    from documents.models import Document
    from sources.models import Source

    source = Source.objects.get(name=channel.source_name)
    made = Document.objects.filter(source=channel.kind)
    runs = PollerRuns()

    log = logs / f"poller-{channel.kind}-1.log"
    started = time.perf_counter()
    poller = start_poller(env, channel.source_name, log)
    while poller.poll() is None and made.count() < kill_at:
        time.sleep(0.05)
    if poller.poll() is None:
        os.killpg(poller.pid, signal.SIGKILL)
        poller.wait()
        runs.killed_at = made.count()
    runs.until_kill = time.perf_counter() - started

    # The killed poller's lease holds the source until it runs out; a poller started
    # earlier would find the source busy and take nothing.
    source.refresh_from_db()
    waited = time.perf_counter()
    if source.lease_until is not None:
        while timezone.now() <= source.lease_until:
            time.sleep(0.1)
    runs.lease_wait = time.perf_counter() - waited

    log = logs / f"poller-{channel.kind}-2.log"
    started = time.perf_counter()
    poller = start_poller(env, channel.source_name, log)
    try:
        poller.wait(timeout=POLLER_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_group(poller, signal.SIGKILL)
    runs.to_the_end = time.perf_counter() - started
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    runs.outcome = json.loads(lines[-1]) if lines else {"status": f"exit {poller.returncode}"}
    if poller.returncode != 0:
        print(f"the second poller of {channel.label} exited with {poller.returncode}:")
        print(log.read_text(errors="replace")[-3000:])
    return runs


# --- Counting ---------------------------------------------------------------------------------


def tally(documents: Any, expected: set[str]) -> dict[str, int]:
    """Documents, duplicates and missing content among ``documents`` against ``expected``."""
    from django.db.models import Count

    from documents.models import DocumentStatus

    def repeated(column: str) -> int:
        # An upload has no source reference: only references given count.
        given = documents.exclude(**{column: ""})
        groups = given.values(column).annotate(n=Count("pk")).filter(n__gt=1).values_list("n", flat=True)
        return sum(n - 1 for n in groups)

    found = set(documents.values_list("filehash", flat=True))
    return {
        "documents": documents.count(),
        "duplicates": repeated("source_ref") + repeated("filehash")
        + documents.filter(status=DocumentStatus.DUPLICATE).count(),
        "missing": len(expected - found),
    }  # fmt: skip


def left_outside_processed(folder: Path) -> int:
    """Files anywhere in the watched folder but under processed/ (failed/ counts too)."""
    return sum(
        1 for path in folder.rglob("*") if path.is_file() and path.relative_to(folder).parts[0] != "processed"
    )


# --- Main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=1000, help="mails, and files, per channel (default 1000)"
    )
    parser.add_argument(
        "--kill-at", type=int, help="documents made before the kill (default 40%% of --count)"
    )
    parser.add_argument(
        "--lease", type=int, default=10, help="SOURCES_POLL_LEASE_SECONDS for the run (default 10)"
    )
    parser.add_argument(
        "--database-url", help="a throwaway PostgreSQL database to create and drop; SQLite without"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, WORKDIR)")
    args = parser.parse_args()
    kill_at = args.kill_at if args.kill_at is not None else max(1, args.count * 2 // 5)
    if args.count < 2 or not 0 < kill_at < args.count or args.lease < 1:
        raise SystemExit("need --count >= 2, 0 < --kill-at < --count and --lease >= 1")
    from sources.tests.servers.dovecot import DovecotServer, dovecot_missing

    if reason := dovecot_missing():
        raise SystemExit(f"no IMAP server: {reason}")

    scratch = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    from destinations.tests.servers.tls import make_tls_files

    tls = make_tls_files(scratch / "tls")
    env = bench_environment(
        scratch / "workdir", database_url=args.database_url, ca_file=tls.ca_file, lease=args.lease
    )
    if args.database_url:
        postgres_admin(args.database_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
        postgres_admin(args.database_url, "CREATE DATABASE {}")
    django_setup(env)
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import User
    from accounts.services import token_create
    from documents.models import Document
    from sources.models import ItemState, SourceItem, SourceKind
    from sources.services import source_create

    dovecot = DovecotServer(tls=tls)
    gunicorn = None
    try:
        dovecot.start()
        call_command("migrate", verbosity=0)
        # The sources' documents go to the first operator; the API's to another user, so an
        # upload is never a duplicate of a document a source made.
        operator = User.objects.create_user(username="operator", is_staff=True, is_superuser=True)
        uploader = User.objects.create_user(username="uploader")
        _, token = token_create(user=uploader, name="bench")

        run_mark = secrets.token_hex(4)
        mail = Channel(
            "mailbox (IMAP)", SourceKind.IMAP, "Bench mailbox", distinct_pdfs("mail", args.count, run_mark)
        )
        folder = Channel(
            "watched folder", SourceKind.WATCH, "Bench folder", distinct_pdfs("scan", args.count, run_mark)
        )
        account = dovecot.add_user("scanner")
        appended = fill_mailbox(dovecot, account, mail.files)
        watched = scratch / "watched"
        fill_folder(watched, folder.files)
        source_create(
            kind=SourceKind.IMAP, owner=None, name=mail.source_name,
            settings={"host": dovecot.host, "port": dovecot.port, "ssl": True, "username": account.username},
            secrets={"password": account.password},
        )  # fmt: skip
        source_create(
            kind=SourceKind.WATCH, owner=None, name=folder.source_name,
            settings={"path": str(watched), "settle_seconds": SETTLE_SECONDS},
        )  # fmt: skip
        print(f"{args.count:,} mails appended in {appended:.1f} s, {args.count:,} files written; "
              f"database {connections['default'].vendor}")  # fmt: skip

        gunicorn, url = start_gunicorn(env, scratch / "gunicorn.log", web_workers=GUNICORN_WORKERS)
        api_seconds = {channel.kind: api_uploads(url, token, channel.files) for channel in (mail, folder)}
        stop_group(gunicorn)
        gunicorn = None

        wait_until_settled(watched)
        runs = {
            channel.kind: take_in_killed(env, channel, kill_at=kill_at, logs=scratch)
            for channel in (mail, folder)
        }

        failures: list[str] = []
        print(f"\n{args.count:,} per channel; poller SIGKILLed after {kill_at:,} documents, "
              f"lease {args.lease} s; pipeline off (Document rows only)")  # fmt: skip
        for channel in (mail, folder):
            run = runs[channel.kind]
            ratio = run.working / api_seconds[channel.kind]
            killed = (
                f"killed at {run.killed_at:,} after {run.until_kill:.1f} s"
                if run.killed_at >= 0
                else "NOT killed"
            )
            print(f"\n{channel.label}:")
            api = api_seconds[channel.kind]
            print(f"  poller:  {run.working:.1f} s working ({killed}; again after waiting "
                  f"{run.lease_wait:.1f} s for the lease: {run.to_the_end:.1f} s, "
                  f"{run.outcome.get('status')})")  # fmt: skip
            print(f"  API:     {api:.1f} s ({args.count / api:.0f} uploads/s)")
            print(f"  ratio poller / API: {ratio:.2f}  ({args.count / run.working:.0f} documents/s)")
            counts = tally(Document.objects.filter(owner=operator, source=channel.kind), channel.hashes)
            counts["not ingested in the ledger"] = (
                SourceItem.objects.filter(source__name=channel.source_name)
                .exclude(state=ItemState.INGESTED)
                .count()
            )
            if channel.kind == SourceKind.WATCH:
                counts["files left outside processed/"] = left_outside_processed(watched)
            else:
                counts["mails not marked seen"] = sum(
                    "\\Seen" not in message.flags for message in dovecot.messages(account).messages
                )
            uploads = Document.objects.filter(owner=uploader, filehash__in=channel.hashes)
            api_counts = tally(uploads, channel.hashes)
            print("  counts: " + ", ".join(f"{name} {value:,}" for name, value in counts.items()))
            print("  API counts: " + ", ".join(f"{name} {value:,}" for name, value in api_counts.items()))
            for name, value in counts.items():
                if value != (args.count if name == "documents" else 0):
                    failures.append(f"{channel.label}: {name} {value}")
            for name, value in api_counts.items():
                if value != (args.count if name == "documents" else 0):
                    failures.append(f"{channel.label} API: {name} {value}")
            if run.killed_at < 0:
                failures.append(f"{channel.label}: the poller finished before the kill")
            if run.outcome.get("status") != "done":
                failures.append(f"{channel.label}: the second poller ended {run.outcome}")
    finally:
        if gunicorn is not None:
            stop_group(gunicorn)
        dovecot.close()
        connections.close_all()
        if args.database_url:
            postgres_admin(args.database_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
        if args.keep:
            print(f"\nkept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        print(f"\nFAILED: {'; '.join(failures)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
