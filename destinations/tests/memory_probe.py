"""Run deliveries in a process of their own and report how much its memory grew.

``python -m destinations.tests.memory_probe <warm-up delivery id> <measured delivery id>``
runs both deliveries with ``destinations.services.delivery_run``, as a worker runs them,
against the database and storage its environment names (the test's, see ``worker_env``),
and prints one line of JSON: the measured run's outcome and message, the resident set size
(RSS) just before it and the peak RSS while it ran, in bytes.

Why a process of its own: the test servers of S3, FTP and WebDAV run in threads of the
test process, so the test's own memory would count what the servers hold. And why RSS
rather than tracemalloc: a buffer that a C library (OpenSSL, the socket layer, the
hashing) holds never reaches Python's allocator, yet it is memory the worker pays for.

The warm-up delivery (a small file to the same destination) loads what every delivery
loads once (the kind's libraries, boto3's service model, database connections), so the
growth measured afterwards is what the large file costs, not what the first one does.
The peak is the kernel's high-water mark (VmHWM), set back to the current RSS right
before the measured run by writing 5 to ``/proc/self/clear_refs`` (Linux 4.0 and later):
a peak that lasted a millisecond still counts, which sampling could miss.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: set VmHWM to the current RSS


def memory_kib(field: str) -> int:
    """A size from /proc/self/status (``VmRSS``, ``VmHWM``), in KiB as the kernel gives it."""
    for line in STATUS.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise LookupError(f"{field} is not in {STATUS}")


def main(arguments: list[str]) -> None:
    warm_up_id, measured_id = (int(argument) for argument in arguments)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")
    import django

    django.setup()
    from destinations.services import delivery_run

    warm_up = delivery_run(delivery_id=warm_up_id, retries_allowed=False)
    CLEAR_REFS.write_text(RESET_PEAK)
    before = memory_kib("VmRSS")
    run = delivery_run(delivery_id=measured_id, retries_allowed=False)
    peak = memory_kib("VmHWM")
    report = {
        "warm_up": warm_up.outcome.value,
        "outcome": run.outcome.value,
        "message": run.message,
        "rss_before": before * 1024,
        "peak_rss": peak * 1024,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
