"""Prometheus metrics for /metrics, correct with any number of gunicorn workers.

Two kinds of numbers, each gathered where it is true for the whole installation:

- What the database and the broker know (documents by status and by source, pipeline
  outcomes, step durations, deliveries and destinations, sources and the age of their last
  successful poll, queue lengths, workers online, backup age) is
  read at scrape time by ``DatabaseCollector``: whichever worker answers the scrape, every
  replica says the same.
- HTTP request latency happens in each worker process. They write it to memory-mapped
  files (prometheus-client's multiprocess mode) in a folder per web server under
  METRICS_DIR, and a scrape adds up the files of all workers of that server, including
  workers gunicorn has since replaced. A new server starts with a new folder and removes
  the folders of servers no longer running, so no gunicorn config is needed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

PREFIX = "docuelevate"
# Step durations range from a fraction of a second (finalize) to many minutes (OCR of a
# long scan, bounded by STEP_TIMEOUT).
STEP_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Deliveries take from a fraction of a second (a small file to S3) to the better part of an
# hour (a large file to a slow server, bounded by the delivery's time limit).
DELIVERY_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SERVER_FOLDER_PREFIX = "server-"


# --- One folder per web server ----------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None when it is not running.

    With the pid, it names a process uniquely: a pid reused after a restart (pid 1 in a
    container) starts at another time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "0"  # no /proc here: the pid alone has to do
    # The command name, in parentheses, may hold spaces; the start time is field 22.
    return stat.rsplit(")", 1)[1].split()[19]


def _process_running(pid: int, started: str) -> bool:
    if started == "0":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return _start_time(pid) == started


def server_folder(root: Path) -> Path:
    """This web server's folder under ``root``, created, with dead servers' folders removed.

    The server is the parent process: the gunicorn master of a worker (every worker of one
    master shares the folder), the autoreloader of runserver. The host name keeps replicas
    that share a volume apart: each only ever removes folders of its own host.
    """
    parent = os.getppid()
    host = socket.gethostname().replace("/", "_")
    mine = f"{SERVER_FOLDER_PREFIX}{host}-"
    folder = root / f"{mine}{parent}-{_start_time(parent) or '0'}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"METRICS_DIR {root} cannot be written ({exc.strerror}).") from None
    for other in root.glob(f"{mine}*"):
        # Exactly "<pid>-<start>" after our host name: "server-vm-2-…" of host vm-2 is not ours.
        owner = re.fullmatch(r"(\d+)-(\d+)", other.name.removeprefix(mine))
        if other != folder and owner and not _process_running(int(owner[1]), owner[2]):
            shutil.rmtree(other, ignore_errors=True)
    return folder


# Set beside PROMETHEUS_MULTIPROC_DIR when we chose the folder: a process started from this
# one (a test starting gunicorn) inherits both, and must choose its own server's folder.
CHOSEN_HERE_ENV = "DOCUELEVATE_METRICS_FOLDER_CHOSEN"
_chosen: tuple[int, Path] | None = None  # (pid, folder) of this process's choice


def use_multiprocess_mode() -> Path:
    """Point prometheus-client at this server's folder, once per process; return the folder.

    An operator's own PROMETHEUS_MULTIPROC_DIR is used as it is (and kept clean by them).
    """
    global _chosen
    if _chosen is not None and _chosen[0] == os.getpid():
        return _chosen[1]
    if MULTIPROC_ENV in os.environ and CHOSEN_HERE_ENV not in os.environ:
        folder = Path(os.environ[MULTIPROC_ENV])
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = server_folder(Path(settings.METRICS_DIR))
        os.environ[MULTIPROC_ENV] = str(folder)
        os.environ[CHOSEN_HERE_ENV] = "1"
    # prometheus-client chooses how to store values when it is first imported, which may
    # have happened before the lines above; choose again before any metric of ours exists.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    _chosen = (os.getpid(), folder)
    return folder


use_multiprocess_mode()

HTTP_REQUEST_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name (never the raw path), method and status.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUEST_DURATION.labels(route=route, method=method, status=str(status)).observe(seconds)


# --- Read at scrape time ----------------------------------------------------------------------


class DatabaseCollector(Collector):
    """The numbers the database and the broker hold, read when Prometheus asks.

    Each group is read on its own: a broker that does not answer leaves out the queue
    lengths, not the document counts. The counters are counts of rows (log entries of the
    append-only processing log), so deleting documents lowers them; Prometheus treats that
    as a counter reset.
    """

    def collect(self) -> Iterator[Metric]:
        groups = (
            self._documents,
            self._steps,
            self._deliveries,
            self._destinations,
            self._sources,
            self._broker,
            self._backup,
        )
        for group in groups:
            try:
                yield from group()
            except DatabaseError:
                logger.warning("metrics: %s could not be read", group.__name__, exc_info=True)
        info = GaugeMetricFamily(f"{PREFIX}_info", "The running DocuElevate version.", labels=["version"])
        info.add_metric([settings.VERSION], 1)
        yield info

    def _documents(self) -> Iterator[Metric]:
        from documents.models import Document, DocumentStatus, ProcessingLog, StepStatus
        from documents.pipeline.steps import STEP_NAMES

        by_status = GaugeMetricFamily(
            f"{PREFIX}_documents", "Documents in the archive, by status.", labels=["status"]
        )
        counts = dict.fromkeys(DocumentStatus.values, 0)
        for row in Document.objects.order_by().values("status").annotate(count=Count("id")):
            counts[row["status"]] = row["count"]
        for status, count in counts.items():
            by_status.add_metric([status], count)
        yield by_status

        # One pass over the log: a run completes with its last step, fails with any step's
        # final failure (retries are logged as pending), and a duplicate ends at ingest.
        outcomes = ProcessingLog.objects.aggregate(
            completed=Count(
                "id", filter=Q(step_name=STEP_NAMES[-1], status__in=[StepStatus.SUCCESS, StepStatus.SKIPPED])
            ),
            failed=Count("id", filter=Q(status=StepStatus.FAILURE)),
            duplicate=Count("id", filter=Q(step_name="ingest", status=DocumentStatus.DUPLICATE)),
        )
        processed = CounterMetricFamily(
            f"{PREFIX}_documents_processed",
            "Pipeline runs that ended, by outcome (completed, failed, duplicate).",
            labels=["outcome"],
        )
        for outcome, count in outcomes.items():
            processed.add_metric([outcome], count)
        yield processed

    def _steps(self) -> Iterator[Metric]:
        from documents.models import ProcessingStep

        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{index}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(STEP_BUCKETS)
        }
        rows = (
            ProcessingStep.objects.filter(started_at__isnull=False, finished_at__isnull=False)
            .annotate(duration=duration)
            .order_by()
            .values("name")
            .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        )
        family = HistogramMetricFamily(
            f"{PREFIX}_step_duration_seconds",
            "How long pipeline steps took: the latest run of each step of each document.",
            labels=["step"],
        )
        # The bucket columns are named in a loop, which the row's inferred type cannot follow.
        for row in cast(Iterable[dict[str, Any]], rows):
            cumulative = [(str(bound), row[f"le_{index}"]) for index, bound in enumerate(STEP_BUCKETS)]
            cumulative.append(("+Inf", row["count"]))
            total = row["total"].total_seconds() if row["total"] else 0.0
            family.add_metric([row["name"]], cumulative, total)
        yield family

    def _deliveries(self) -> Iterator[Metric]:
        from destinations.models import Delivery, DeliveryStatus

        by_status = GaugeMetricFamily(
            f"{PREFIX}_deliveries",
            "Deliveries (one per document and destination), by the destination's kind and status.",
            labels=["kind", "status"],
        )
        counts: dict[tuple[str, str], int] = {}
        for row in (
            Delivery.objects.order_by().values("destination__kind", "status").annotate(count=Count("id"))
        ):
            counts[(row["destination__kind"], row["status"])] = row["count"]
        # Every status of every kind that has deliveries, so an alert on "failed" sees a 0.
        for kind in sorted({kind for kind, _status in counts}):
            for status in DeliveryStatus.values:
                by_status.add_metric([kind, status], counts.get((kind, status), 0))
        yield by_status
        yield self._delivery_durations()

    def _destinations(self) -> Iterator[Metric]:
        from destinations.models import Destination, HealthStatus

        destinations = GaugeMetricFamily(
            f"{PREFIX}_destinations",
            "Enabled destinations, by kind and health (ok, failing, unknown: not checked yet).",
            labels=["kind", "health"],
        )
        health: dict[tuple[str, str], int] = {}
        rows = Destination.objects.filter(enabled=True).order_by().values("kind", "health_status")
        for row in rows.annotate(count=Count("id")):
            health[(row["kind"], row["health_status"])] = row["count"]
        for kind in sorted({kind for kind, _health in health}):
            for state in HealthStatus.values:
                destinations.add_metric([kind, state], health.get((kind, state), 0))
        yield destinations

    def _sources(self) -> Iterator[Metric]:
        from documents.models import Document
        from sources.models import Source

        # One GROUP BY over the documents, on the column every ingest writes.
        by_source = GaugeMetricFamily(
            f"{PREFIX}_documents_by_source",
            "Documents in the archive, by where they came in (upload, url, imap, watch, …).",
            labels=["source"],
        )
        for row in Document.objects.order_by().values("source").annotate(count=Count("id")):
            by_source.add_metric([row["source"]], row["count"])
        yield by_source

        # No counter of failed polls: a poll leaves no row behind but its source's last
        # outcome, and a counter kept in a worker's memory would be neither shared nor kept.
        enabled = list(
            Source.objects.filter(enabled=True)
            .order_by("kind", "name", "pk")
            .values("kind", "name", "owner_id", "last_error", "last_poll_at", "last_success_at")
        )
        health: dict[tuple[str, str], int] = {}
        for source in enabled:
            state = "failing" if source["last_error"] else "ok" if source["last_poll_at"] else "unknown"
            health[(source["kind"], state)] = health.get((source["kind"], state), 0) + 1
        sources = GaugeMetricFamily(
            f"{PREFIX}_sources",
            "Enabled sources, by kind and how their last poll went (ok, failing, unknown: not polled yet).",
            labels=["kind", "health"],
        )
        for kind in sorted({kind for kind, _state in health}):
            for state in ("ok", "failing", "unknown"):
                sources.add_metric([kind, state], health.get((kind, state), 0))
        yield sources

        # Per source only for the system-wide ones (the installation's own doors, few and
        # named by operators); users' own mailboxes would make a series each.
        age = GaugeMetricFamily(
            f"{PREFIX}_source_last_success_age_seconds",
            "Seconds since the last successful poll of each enabled system-wide source.",
            labels=["kind", "name"],
        )
        now = timezone.now()
        for source in enabled:
            if source["owner_id"] is None and source["last_success_at"] is not None:
                seconds = (now - source["last_success_at"]).total_seconds()
                age.add_metric([source["kind"], source["name"]], seconds)
        yield age

    def _delivery_durations(self) -> Metric:
        from destinations.models import Delivery, DeliveryStatus

        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{index}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(DELIVERY_BUCKETS)
        }
        delivered = (
            Delivery.objects.filter(
                status=DeliveryStatus.DELIVERED, started_at__isnull=False, finished_at__isnull=False
            )
            .annotate(duration=duration)
            .order_by()
            .values("destination__kind")
            .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        )
        family = HistogramMetricFamily(
            f"{PREFIX}_delivery_duration_seconds",
            "How long deliveries took: the last attempt of each delivered delivery, by kind.",
            labels=["kind"],
        )
        for row in cast(Iterable[dict[str, Any]], delivered):
            cumulative = [(str(bound), row[f"le_{index}"]) for index, bound in enumerate(DELIVERY_BUCKETS)]
            cumulative.append(("+Inf", row["count"]))
            total = row["total"].total_seconds() if row["total"] else 0.0
            family.add_metric([row["destination__kind"]], cumulative, total)
        return family

    def _broker(self) -> Iterator[Metric]:
        from ops.probes.broker import queue_lengths, workers_online

        queues = GaugeMetricFamily(
            f"{PREFIX}_celery_queue_length",
            "Messages waiting in each Celery queue (Redis broker only).",
            labels=["queue"],
        )
        for queue, length in queue_lengths().items():
            if length is not None:
                queues.add_metric([queue], length)
        yield queues
        yield GaugeMetricFamily(
            f"{PREFIX}_celery_workers_online", "Celery workers answering a ping.", value=workers_online()
        )

    def _backup(self) -> Iterator[Metric]:
        from ops.probes.backup import newest_successful_backup

        newest = newest_successful_backup()
        # Absent, not zero, when no backup ever succeeded: alert on absent() too.
        if newest is not None and newest.finished_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_backup_age_seconds",
                "Seconds since the newest successful backup finished.",
                value=(timezone.now() - newest.finished_at).total_seconds(),
            )


def scrape() -> bytes:
    """The whole exposition: every worker's request timings plus the scrape-time numbers."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(use_multiprocess_mode()))  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    registry.register(DatabaseCollector())
    return generate_latest(registry)
