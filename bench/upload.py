"""Benchmark: a 1 GiB upload through a real gunicorn, accepted and stored, and the memory the
web worker needs for it.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--rounds 1] [--chunked]

Starts a throwaway installation (SQLite, embedded broker, its own WORKDIR) and gunicorn as
the image starts it (the project's gunicorn.conf.py, a sync worker, GUNICORN_TIMEOUT's
default of 120 s), with one web worker so the one that takes the upload is known, and
MAX_UPLOAD_SIZE raised above the file for the run. No Celery worker runs: the document
waits for OCR in the embedded broker, which is not what is measured.

After a small warm-up upload (so the worker has loaded what any first request loads), a
PDF-looking file of --size-mib (a PDF header, then incompressible bytes) is posted to
``/api/ui-upload`` as multipart/form-data with a declared length, as browsers and most
clients send it (``--chunked``: with chunked transfer encoding instead, which
docuelevate.bodylimit spools). The worker's resident memory is sampled every 50 ms.

Prints the worker's RSS growth, peak over its warm level (target < 64 MiB), checks the
answer (200, a document id) and that the stored original has every byte (size and
SHA-256), and prints the upload's seconds against a plain copy of the same bytes on the
same disk in the same round (the baseline: the upload writes the bytes three times, to
the upload's temporary file, the hashing spool and the storage).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
from _common import (
    MANAGE,
    PROJECT_DIR,
    api_token,
    installation_create,
    installation_env,
    process_rss_kib,
    start_gunicorn,
    stop_gunicorn,
)

CHUNK = 1024 * 1024
TARGET_GROWTH_MIB = 64


def make_body(path: Path, size: int, boundary: str) -> str:
    """A multipart/form-data body with one PDF-looking file of ``size`` bytes; its SHA-256."""
    digest = hashlib.sha256()
    filler = os.urandom(CHUNK)  # incompressible, so no layer could cheat by compressing
    with path.open("wb") as body:
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="large.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n".encode()
        )
        head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        body.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            piece = filler[: min(CHUNK, left)]
            body.write(piece)
            digest.update(piece)
            left -= len(piece)
        body.write(f"\r\n--{boundary}--\r\n".encode())
    return digest.hexdigest()


def web_worker_pid(arbiter: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{arbiter}\n" in status:
                return int(entry.name)
    raise SystemExit("gunicorn has no worker")


def stored_original(env: dict[str, str], document_id: int) -> tuple[int, str]:
    """Size and SHA-256 of the document's stored original, read back through the storage."""
    code = f"""
import hashlib
from documents.models import Document
from documents import storage
document = Document.objects.get(pk={document_id})
digest, size = hashlib.sha256(), 0
with storage.document_storage().open(document.original_file) as handle:
    while chunk := handle.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
print(size, digest.hexdigest(), document.file_size)
"""
    result = subprocess.run(
        [*MANAGE, "shell", "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True
    )
    size, sha256, recorded = result.stdout.strip().splitlines()[-1].split()
    if int(recorded) != int(size):
        raise SystemExit(f"the document records {recorded} bytes, its stored original has {size}")
    return int(size), sha256


class Sampler:
    """The peak resident memory of one process, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, process_rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, process_rss_kib(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def chunks_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def one_round(scratch: Path, size: int, *, chunked: bool) -> dict[str, float]:
    workdir = scratch / "workdir"
    body = scratch / "body"
    boundary = uuid.uuid4().hex
    sha256 = make_body(body, size, boundary)
    env = installation_env(
        workdir, MAX_UPLOAD_SIZE=str(size + CHUNK), RATE_LIMITING_ENABLED="false", PYTHONUNBUFFERED="1"
    )
    installation_create(env)
    token = api_token(env)
    headers = {"Authorization": f"Bearer {token}"}
    server, url = start_gunicorn(env, scratch / "gunicorn.log")
    try:
        worker = web_worker_pid(server.pid)
        warm = requests.post(
            f"{url}/api/ui-upload", headers=headers, timeout=60,
            files={"file": ("warm.pdf", b"%PDF-1.7\n" + os.urandom(3 * CHUNK), "application/pdf")},
        )  # fmt: skip
        if warm.status_code != 200:
            raise SystemExit(f"the warm-up upload answered {warm.status_code}: {warm.text[:500]}")
        time.sleep(1)
        before = process_rss_kib(worker)
        content_type = f"multipart/form-data; boundary={boundary}"
        with Sampler(worker) as sampler:
            started = time.perf_counter()
            if chunked:
                answer = requests.post(
                    f"{url}/api/ui-upload", data=chunks_of(body), timeout=600,
                    headers={**headers, "Content-Type": content_type},
                )  # fmt: skip
            else:
                with body.open("rb") as handle:
                    answer = requests.post(
                        f"{url}/api/ui-upload", data=handle, timeout=600,
                        headers={**headers, "Content-Type": content_type},
                    )  # fmt: skip
            seconds = time.perf_counter() - started
        after = process_rss_kib(worker)
        if answer.status_code != 200:
            raise SystemExit(f"the upload answered {answer.status_code}: {answer.text[:500]}")
        if web_worker_pid(server.pid) != worker:
            raise SystemExit("the web worker was replaced during the upload")
        document_id = int(answer.json()["document_id"])
    finally:
        stop_gunicorn(server)
    stored_size, stored_sha256 = stored_original(env, document_id)
    if (stored_size, stored_sha256) != (size, sha256):
        raise SystemExit(f"stored {stored_size} bytes ({stored_sha256}), sent {size} ({sha256})")
    # The baseline: the same bytes copied once on the same disk, then the copy flushed like
    # the storage flushes the original.
    started = time.perf_counter()
    copy = scratch / "copy"
    with body.open("rb") as source, copy.open("wb") as target:
        shutil.copyfileobj(source, target, CHUNK)
        target.flush()
        os.fsync(target.fileno())
    plain = time.perf_counter() - started
    return {
        "seconds": seconds, "plain": plain, "before": before, "peak": sampler.peak, "after": after,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--chunked", action="store_true", help="chunked transfer encoding, no length")
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    results = []
    for round_number in range(1, args.rounds + 1):
        scratch = Path(tempfile.mkdtemp(prefix="bench-upload-"))
        try:
            result = one_round(scratch, size, chunked=args.chunked)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        results.append(result)
        print(
            f"round {round_number}: upload {result['seconds']:.1f} s, plain copy {result['plain']:.1f} s, "
            f"worker RSS {result['before'] / 1024:.0f} -> peak {result['peak'] / 1024:.0f} MiB",
            flush=True,
        )

    growth = [(result["peak"] - result["before"]) / 1024 for result in results]
    ratios = [result["seconds"] / result["plain"] for result in results]
    framing = "chunked" if args.chunked else "with Content-Length"
    print(f"\n{args.size_mib} MiB PDF-looking upload ({framing}) through gunicorn: accepted, stored whole")
    print(f"web worker RSS growth, peak over warm: {max(growth):.1f} MiB (worst of {len(growth)};"
          f" target < {TARGET_GROWTH_MIB})")  # fmt: skip
    kept = (results[-1]["after"] - results[-1]["before"]) / 1024
    print(f"web worker RSS after the upload:       {kept:+.1f} MiB")
    print(
        f"upload seconds / one plain copy:       {statistics.median(ratios):.2f}"
        f" (median of {len(ratios)}; {statistics.median(r['seconds'] for r in results):.1f} s)"
    )


if __name__ == "__main__":
    main()
