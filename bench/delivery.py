"""Benchmark: deliveries by a real worker to S3, FTP and WebDAV against plain uploads, in one run.

    .venv/bin/python bench/delivery.py [--documents 100] [--size-kib 256] [--concurrency 2]
        [--broker redis://127.0.0.1:6379/14] [--outage 3] [--large-mib 1024] [--keep]

Starts three local servers (moto's S3 server in a process, pyftpdlib FTP and wsgidav
WebDAV in threads of this process: the classes of ``destinations/tests/servers/``), a
throwaway installation (SQLite, its own WORKDIR, the embedded broker or ``--broker``) with
one system-wide destination on each, and ``--documents`` processed documents of
``--size-kib`` each (generated PDFs). A real Celery worker then delivers every document to
every destination, scheduled as the pipeline schedules them after finalize; the FTP server
is stopped when a third of its deliveries have landed and started again ``--outage``
seconds later on the same port, so those deliveries fail, retry and still land once.

The baseline is what a person would otherwise run: the same files uploaded one after
another with each protocol's ordinary client (boto3 ``upload_file``, ftplib
``storbinary``, requests ``PUT``), timed in the same run. Prints deliveries per second,
the p95 latency from finalize (the delivery's request) to delivered, the ratio
pipeline / plain, what one S3 client costs (a boto3 Session per destination object, as
before, against the process's shared one), and then counts, on the servers themselves,
duplicates, missing files, files with other content and leftover temporary files: every
one must be 0, or the bench exits with 1. Finally a ``--large-mib`` file (0: skip) is
delivered to S3, FTP, SFTP (when Debian's sshd is installed) and WebDAV by the delivery
service in a process of its own each, whose peak RSS growth is printed (the target for a
1 GiB file: under 64 MiB).

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import ftplib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

BUCKET = "deliveries"
FOLDER = "archive"
S3_KEYS = {"access_key_id": "AKIADOCUELEVATEBENCH", "secret_access_key": "bench-secret-key-0123456789"}
# Retries a few seconds apart instead of the production minutes, so the FTP outage costs
# the run seconds, not a quarter of an hour; attempts are as configured by default.
RETRY_DELAYS = "2,4,8"
# Remote names: <folder>/bench-007.pdf, and a rename policy's "bench-007 (2).pdf".
DELIVERED_NAME = re.compile(rf"^{FOLDER}/bench-(\d+)(?: \(\d+\))?\.pdf$")
TARGET_LARGE_GROWTH_MIB = 64


def bench_environment(workdir: Path, broker: str | None) -> dict[str, str]:
    """The installation's environment: this process's and the worker's alike."""
    env = {**os.environ, "WORKDIR": str(workdir), "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    env.update(DJANGO_SETTINGS_MODULE="docuelevate.settings", TASK_RETRY_DELAYS=RETRY_DELAYS)
    # One secret for every process of the run: the destinations' secrets are sealed with it.
    env.update(PYTHONUNBUFFERED="1", SESSION_SECRET=secrets.token_urlsafe(48))
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    if broker:
        env["CELERY_BROKER_URL"] = broker
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


# --- Documents ---------------------------------------------------------------------------------


def make_pdf(path: Path, *, size: int, label: str) -> None:
    """A valid one-page PDF of about ``size`` bytes: random bytes in an uncompressed stream,
    so no two documents are alike."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.BenchFiller = pdf.make_stream(os.urandom(max(0, size - 600)))
    pdf.docinfo["/Title"] = label
    pdf.save(path, compress_streams=False)


def make_large_file(path: Path, *, size: int) -> None:
    """``size`` bytes: a PDF header, random bytes written a chunk at a time, an end."""
    chunk = 8 * 1024**2
    with path.open("wb") as handle:
        handle.write(b"%PDF-1.7\n")
        left = size - 16
        while left > 0:
            handle.write(os.urandom(min(chunk, left)))
            left -= chunk
        handle.write(b"\n%%EOF\n")


def processed_documents(owner: Any, files: list[Path]) -> list[int]:
    """Completed documents whose processed PDFs are ``files`` (stored as the pipeline does)."""
    from documents import storage
    from documents.models import Document, DocumentStatus

    ids = []
    for path in files:
        content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
        document = Document.objects.create(
            owner=owner,
            original_filename=path.name,
            filehash=content_hash,
            file_size=path.stat().st_size,
            mime_type="application/pdf",
            original_file=f"originals/{content_hash}",
            status=DocumentStatus.COMPLETED,
        )
        document.processed_file = storage.store_file(path, storage.processed_name(document.uuid, path.stem))
        document.save(update_fields=["processed_file"])
        ids.append(document.pk)
    return ids


# --- The servers -------------------------------------------------------------------------------


@dataclass
class Servers:
    s3: Any
    ftp: Any
    webdav: Any

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEYS["access_key_id"],
            aws_secret_access_key=S3_KEYS["secret_access_key"],
        )

    def destinations(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Each kind's settings and secrets, as an operator enters them."""
        return {
            "s3": ({"bucket": BUCKET, "folder": FOLDER, "endpoint_url": self.s3.endpoint}, S3_KEYS),
            "ftp": (
                {
                    "host": self.ftp.host,
                    "port": self.ftp.port,
                    "username": self.ftp.username,
                    "folder": FOLDER,
                    "use_tls": False,
                    "allow_plaintext": True,
                },
                {"password": self.ftp.password},
            ),
            "webdav": (
                {"url": self.webdav.url, "folder": FOLDER, "username": self.webdav.username},
                {"password": self.webdav.password},
            ),
        }

    def remote_files(self) -> dict[str, dict[str, bytes]]:
        """Every file on each server (path -> content)."""
        client = self.s3_client()
        s3: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                s3[item["Key"]] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        found = {"s3": s3}
        for kind, server in (("ftp", self.ftp), ("webdav", self.webdav)):
            found[kind] = {name: (server.root / name).read_bytes() for name in server.files()}
        return found

    def unfinished_s3_uploads(self) -> int:
        listing = self.s3_client().list_multipart_uploads(Bucket=BUCKET)
        return len(listing.get("Uploads", []))


def start_servers(scratch: Path) -> Servers:
    from destinations.tests.servers.ftp import FtpServer
    from destinations.tests.servers.s3 import S3ServerProcess
    from destinations.tests.servers.webdav import WebDavServer

    # The run restarts FTP, not S3: S3 needs no data kept, and moto's recorder would cost it.
    s3 = S3ServerProcess(workdir=scratch / "moto", keep_data=False)
    s3.start()
    ftp = FtpServer(root=scratch / "ftp-root")
    ftp.start()
    webdav = WebDavServer(root=scratch / "webdav-root")
    webdav.start()
    servers = Servers(s3=s3, ftp=ftp, webdav=webdav)
    servers.s3_client().create_bucket(Bucket=BUCKET)
    return servers


# --- The baseline: plain uploads ---------------------------------------------------------------


def plain_uploads(servers: Servers, files: list[Path]) -> dict[str, float]:
    """Seconds per protocol to upload the files one after another with its ordinary client,
    into a folder of their own (removed afterwards)."""
    import requests

    timings = {}
    client = servers.s3_client()
    started = time.perf_counter()
    for path in files:
        client.upload_file(str(path), BUCKET, f"plain/{path.name}")
    timings["s3"] = time.perf_counter() - started

    started = time.perf_counter()
    ftp = ftplib.FTP()  # noqa: S321 - the bench's own server speaks plain FTP
    ftp.connect(servers.ftp.host, servers.ftp.port, timeout=30)
    ftp.login(servers.ftp.username, servers.ftp.password)
    ftp.mkd("plain")
    for path in files:
        with path.open("rb") as handle:
            ftp.storbinary(f"STOR plain/{path.name}", handle)
    ftp.quit()
    timings["ftp"] = time.perf_counter() - started

    started = time.perf_counter()
    with requests.Session() as session:
        session.auth = (servers.webdav.username, servers.webdav.password)
        session.request("MKCOL", f"{servers.webdav.url}plain/", timeout=30).raise_for_status()
        for path in files:
            with path.open("rb") as handle:
                session.put(
                    f"{servers.webdav.url}plain/{path.name}", data=handle, timeout=60
                ).raise_for_status()
    timings["webdav"] = time.perf_counter() - started

    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="plain/"):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    shutil.rmtree(servers.ftp.root / "plain")
    shutil.rmtree(servers.webdav.root / "plain")
    return timings


# --- The worker ----------------------------------------------------------------------------------


def start_worker(env: dict[str, str], log: Path, concurrency: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "docuelevate", "worker", "--queues",
             "document_processor,default,celery", "--concurrency", str(concurrency), "--loglevel", "INFO",
             "--hostname", "bench-delivery@%h", "--without-mingle", "--without-gossip"],
            cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    # A round trip through broker, worker and result backend: the worker takes work now.
    from celery.exceptions import TimeoutError as CeleryTimeout

    from ops.tasks import ping_task

    try:
        ping_task.delay().get(timeout=120)
    except CeleryTimeout:
        stop_worker(worker)
        raise SystemExit(f"the worker did not start:\n{log.read_text(errors='replace')[-4000:]}") from None
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    except ProcessLookupError:
        pass


def clear_redis_queues(broker: str) -> None:
    """Messages of an earlier run would reach this worker."""
    import redis

    client = redis.Redis.from_url(broker)
    for queue in ("document_processor", "default", "celery"):
        client.delete(queue)


# --- The run -----------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    elapsed: float
    latencies: list[float]
    statuses: dict[str, int]
    outage_at: int


def deliver_all(
    document_ids: list[int], servers: Servers, *, outage: float, log: Path, timeout: float = 900
) -> PipelineRun:
    """Schedule every document's deliveries as the pipeline does after finalize, stop the FTP
    server once a third of its deliveries have landed, restart it, and wait until every
    delivery has ended."""
    from destinations.models import Delivery, DeliveryStatus
    from destinations.services import deliveries_schedule

    done = {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED}
    started = time.perf_counter()
    for document_id in document_ids:
        deliveries_schedule(document_id=document_id)
    expected = Delivery.objects.count()
    ftp_third = len(document_ids) // 3
    outage_at = -1
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status__in=done).count() < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"deliveries did not end in {timeout:g} s:\n{log.read_text()[-4000:]}")
        ftp_delivered = Delivery.objects.filter(
            destination__kind="ftp", status=DeliveryStatus.DELIVERED
        ).count()
        if outage_at < 0 and ftp_delivered >= ftp_third:
            outage_at = ftp_delivered
            servers.ftp.stop()  # drops the uploads in flight, as a crash would
            time.sleep(outage)
            servers.ftp.start()  # the same port
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    latencies = [
        (delivery.delivered_at - delivery.requested_at).total_seconds()
        for delivery in Delivery.objects.filter(status=DeliveryStatus.DELIVERED)
        if delivery.delivered_at is not None
    ]
    statuses: dict[str, int] = {}
    for delivery in Delivery.objects.all():
        statuses[delivery.status] = statuses.get(delivery.status, 0) + 1
    return PipelineRun(elapsed=elapsed, latencies=latencies, statuses=statuses, outage_at=outage_at)


@dataclass
class Tally:
    duplicates: int = 0
    missing: int = 0
    wrong_content: int = 0
    temporary: int = 0


def tally(servers: Servers, files: list[Path]) -> dict[str, Tally]:
    """What each server holds, against one file per document."""
    expected = {int(path.stem.split("-")[1]): path.read_bytes() for path in files}
    counts = {}
    for kind, found in servers.remote_files().items():
        count = Tally()
        seen: set[int] = set()
        for name, content in found.items():
            matched = DELIVERED_NAME.match(name)
            if matched is None:
                count.temporary += 1  # a hidden upload name, a .part file: nothing else is sent
                continue
            number = int(matched[1])
            if number in seen:
                count.duplicates += 1
            seen.add(number)
            if content != expected.get(number):
                count.wrong_content += 1
        count.missing = len(set(expected) - seen)
        if kind == "s3":
            count.temporary += servers.unfinished_s3_uploads()
        counts[kind] = count
    return counts


def s3_client_costs(endpoint: str, rounds: int = 20) -> tuple[float, float]:
    """Median ms to build an S3 client as a destination object did before (a boto3 Session
    of its own) and as it does now (from the process's one Session)."""
    import boto3

    from destinations.kinds.s3 import s3_client

    options = {
        "region_name": "us-east-1",
        "endpoint_url": endpoint,
        "aws_access_key_id": S3_KEYS["access_key_id"],
        "aws_secret_access_key": S3_KEYS["secret_access_key"],
    }

    def median_ms(make: Callable[[], Any]) -> float:
        costs = []
        for _ in range(rounds):
            started = time.perf_counter()
            make().close()
            costs.append((time.perf_counter() - started) * 1000)
        return statistics.median(costs)

    s3_client(**options).close()  # the shared Session exists from the first delivery on
    return median_ms(lambda: boto3.session.Session().client("s3", **options)), median_ms(
        lambda: s3_client(**options)
    )


# --- A large file --------------------------------------------------------------------------------


def peak_rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status)[1])  # type: ignore[index]  # Linux has it


def run_one_delivery(delivery_id: int) -> None:
    """In a process of its own: one delivery through the service, as a worker runs it;
    prints its outcome and the growth of the peak RSS as JSON."""
    from destinations.models import Delivery
    from destinations.services import delivery_run

    delivery = Delivery.objects.select_related("destination").get(pk=delivery_id)
    # Everything a worker has loaded before its first delivery, then the baseline.
    from destinations.kinds import kind_for

    kind_for(delivery.destination).close()
    before = peak_rss_kib()
    started = time.perf_counter()
    run = delivery_run(delivery_id=delivery_id, retries_allowed=False)
    seconds = time.perf_counter() - started
    growth = peak_rss_kib() - before
    outcome = {"outcome": run.outcome.value, "message": run.message, "growth_kib": growth, "seconds": seconds}
    print(json.dumps(outcome))


def large_file_growth(
    env: dict[str, str], scratch: Path, owner: Any, servers: Servers, size: int
) -> list[tuple[str, dict[str, Any]]]:
    """Deliver one ``size``-byte document to every destination (SFTP added when sshd runs
    here), each delivery in a process of its own; each kind with its outcome and growth."""
    from destinations.models import Delivery
    from destinations.services import deliveries_schedule, destination_create
    from destinations.tests.servers.sftp import SftpServer, make_client_keys, sshd_missing

    sftp = None
    if reason := sshd_missing():
        print(f"SFTP left out: {reason}")
    else:
        keys = make_client_keys(scratch / "ssh-keys")
        sftp = SftpServer(client_keys=[keys.plain])
        sftp.start()
        destination_create(
            kind="sftp",
            name="bench sftp",
            owner=None,
            settings={
                "host": sftp.host,
                "port": sftp.port,
                "username": sftp.username,
                "folder": FOLDER,
                "host_key": sftp.host_key.fingerprint,
            },
            secrets={"private_key": keys.plain.private_key.read_text()},
        )
    try:
        path = scratch / "bench-large.pdf"
        make_large_file(path, size=size)
        (document_id,) = processed_documents(owner, [path])
        path.unlink()
        results = []
        for delivery_id in deliveries_schedule(document_id=document_id, enqueue=False):
            kind = Delivery.objects.get(pk=delivery_id).destination.kind
            child = subprocess.run(
                [sys.executable, __file__, "--run-delivery", str(delivery_id)],
                cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if child.returncode != 0:
                results.append((kind, {"outcome": "crashed", "message": child.stderr[-2000:]}))
                continue
            results.append((kind, json.loads(child.stdout.strip().splitlines()[-1])))
        return results
    finally:
        if sftp is not None:
            sftp.close()


# --- Main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument("--broker", help="a Redis URL; the embedded file broker without")
    parser.add_argument("--outage", type=float, default=3, help="seconds the FTP server stays down")
    parser.add_argument("--large-mib", type=int, default=1024, help="0: no large-file measurement")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--run-delivery", type=int, help=argparse.SUPPRESS)  # the large-file child
    args = parser.parse_args()
    if args.run_delivery is not None:
        django_setup(dict(os.environ))
        run_one_delivery(args.run_delivery)
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    env = bench_environment(scratch / "workdir", args.broker)
    django_setup(env)
    from django.core.management import call_command

    from accounts.models import User
    from destinations.services import destination_create

    servers = start_servers(scratch)
    worker = None
    try:
        call_command("migrate", verbosity=0)
        owner = User.objects.create_user(username="bench", password=uuid.uuid4().hex)
        files_dir = scratch / "files"
        files_dir.mkdir()
        files = []
        for number in range(args.documents):
            path = files_dir / f"bench-{number:03d}.pdf"
            make_pdf(path, size=args.size_kib * 1024, label=path.stem)
            files.append(path)
        document_ids = processed_documents(owner, files)
        for kind, (settings, keys) in servers.destinations().items():
            destination_create(kind=kind, name=f"bench {kind}", owner=None, settings=settings, secrets=keys)

        plain = plain_uploads(servers, files)
        if args.broker:
            clear_redis_queues(args.broker)
        log = scratch / "worker.log"
        worker = start_worker(env, log, args.concurrency)
        run = deliver_all(document_ids, servers, outage=args.outage, log=log)
        stop_worker(worker)
        worker = None
        counts = tally(servers, files)
        before_ms, after_ms = s3_client_costs(servers.s3.endpoint)
        large = (
            large_file_growth(env, scratch, owner, servers, args.large_mib * 1024**2)
            if args.large_mib
            else []
        )
    finally:
        if worker is not None:
            stop_worker(worker)
        servers.s3.stop()
        servers.ftp.stop()
        servers.webdav.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    deliveries = sum(run.statuses.values())
    plain_total = sum(plain.values())
    p95 = statistics.quantiles(run.latencies, n=20)[-1] if len(run.latencies) >= 2 else float("nan")
    print(f"\n{args.documents} documents of {args.size_kib} KiB to S3, FTP and WebDAV; broker "
          f"{args.broker or 'embedded (files)'}; worker concurrency {args.concurrency}")  # fmt: skip
    print(f"FTP stopped after {run.outage_at} of its deliveries, down {args.outage:g} s, back on its port")
    print(f"deliveries: {deliveries} ({', '.join(f'{k} {v}' for k, v in sorted(run.statuses.items()))})")
    rate = deliveries / run.elapsed
    p50 = statistics.median(run.latencies) if run.latencies else float("nan")
    print(f"pipeline, scheduled to last delivered:   {run.elapsed:.1f} s, {rate:.1f} deliveries/s")
    print(f"latency finalize -> delivered:           p50 {p50:.1f} s, p95 {p95:.1f} s")
    print(f"plain uploads, one after another:        {plain_total:.1f} s "
          f"(S3 {plain['s3']:.1f}, FTP {plain['ftp']:.1f}, WebDAV {plain['webdav']:.1f})")  # fmt: skip
    print(f"ratio pipeline / plain:                  {run.elapsed / plain_total:.2f}")
    print(f"S3 client per destination object:       {before_ms:.0f} ms with a Session of its own (before), "
          f"{after_ms:.0f} ms from the shared one (now)")  # fmt: skip
    failures = []
    for kind, count in counts.items():
        print(f"{kind:>6}: duplicates {count.duplicates}, missing {count.missing}, other content "
              f"{count.wrong_content}, temporary files left {count.temporary}")  # fmt: skip
        if count.duplicates or count.missing or count.wrong_content or count.temporary:
            failures.append(kind)
    if run.statuses.get("delivered", 0) != deliveries:
        failures.append("not every delivery delivered")
    for kind, result in large:
        if result.get("outcome") != "delivered":
            print(f"{args.large_mib} MiB to {kind}: {result.get('outcome')}: {result.get('message')}")
            failures.append(f"large file to {kind}")
            continue
        growth = result["growth_kib"] / 1024
        print(f"{args.large_mib} MiB to {kind:>6}: peak RSS growth {growth:.1f} MiB "
              f"(target < {TARGET_LARGE_GROWTH_MIB}), {result['seconds']:.1f} s")  # fmt: skip
        if growth >= TARGET_LARGE_GROWTH_MIB:
            failures.append(f"memory of {kind}")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
