"""Benchmark: the worker process tree's peak memory on a hostile PDF and on corpus scans,
against plain ocrmypdf on the same files, in one run.

    .venv/bin/python bench/memory.py [--rounds 1] [--files linn.pdf,multipage.pdf]

The hostile file is made here: one page, about 1 KB, whose 1-bit image is 35,000 x 35,000
pixels (zeros, Flate-compressed twice); so is the largest page OCR still renders under the
default MAX_IMAGE_PIXELS, 100 megapixels of colour (--no-colour-page leaves it out, it
takes a minute a side). For each file, in alternating rounds, it measures

- plain ``ocrmypdf`` with its defaults (the baseline; ``-l eng+deu --skip-text`` as in
  bench/pipeline.py, since plain refuses a PDF with text otherwise): the peak of the summed resident memory
  of its process tree (Ghostscript, tesseract, its own Python), sampled from /proc every
  50 ms; and its largest single process from ``getrusage(RUSAGE_CHILDREN).ru_maxrss``,
  exact but per process;
- the pipeline: one real Celery worker (SQLite, embedded broker, its own WORKDIR,
  concurrency 1) processing the file from ``manage.py ingest --wait``: the peak of the
  summed resident memory of the worker and every process it started, sampled the same way.

Prints the peaks, their ratio to the baseline, how each document ended, and the target
(the worker tree at most 1.5 GB on any input). Sampling every 50 ms can miss a peak
shorter than that; the figures are lower bounds of the same kind on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from _common import (
    MANAGE,
    PROJECT_DIR,
    corpus_files,
    installation_create,
    installation_env,
    tree_rss_kib,
    workers,
)

DEFAULT_FILES = "linn.pdf,multipage.pdf"
TARGET_BYTES = 1.5e9
SAMPLE_SECONDS = 0.05
MIB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    peak: int  # bytes, the summed tree
    ended: str
    largest_process: int | None = None  # bytes, plain's largest single process (ru_maxrss)


def hostile_pdf(path: Path, side: int = 35_000) -> Path:
    """One letter page filled by a 1-bit image of ``side`` x ``side`` zeros, about 1 KB."""
    row = bytes((side + 7) // 8)
    # Packed once, repeated: a full flush forgets the history, so each block packs the same.
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(row * 1000) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = row * (side % 1000)
    checksum = 1
    for _ in range(side // 1000):
        checksum = zlib.adler32(row * 1000, checksum)
    checksum = zlib.adler32(tail, checksum)
    end = packer.compress(tail) + packer.flush()
    once = b"\x78\xda" + block * (side // 1000) + end + struct.pack(">I", checksum)
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, b"")
    image.write(zlib.compress(once, 9), filter=[pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode])
    image.update(
        pikepdf.Dictionary(
            Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side, Height=side,
            BitsPerComponent=1, ColorSpace=pikepdf.Name.DeviceGray,
        )
    )  # fmt: skip
    page = pdf.add_blank_page(page_size=(612, 792))
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pikepdf.Stream(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    pdf.save(path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return path


def colour_page_pdf(path: Path, side: int = 10_000) -> Path:
    """One page of ``side`` x ``side`` RGB pixels at 400 dpi: 100 megapixels, the largest
    page the default MAX_IMAGE_PIXELS lets OCR render (zeros, packed like the hostile one)."""
    row = bytes(side * 3)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(row * 100) + packer.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side // 100):
        checksum = zlib.adler32(row * 100, checksum)
    data = b"\x78\xda" + block * (side // 100) + packer.flush() + struct.pack(">I", checksum)
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, b"")
    image.write(data, filter=pikepdf.Name.FlateDecode)
    image.update(
        pikepdf.Dictionary(
            Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side, Height=side,
            BitsPerComponent=8, ColorSpace=pikepdf.Name.DeviceRGB,
        )
    )  # fmt: skip
    points = side / 400 * 72
    page = pdf.add_blank_page(page_size=(points, points))
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pikepdf.Stream(pdf, f"q {points} 0 0 {points} 0 0 cm /Im0 Do Q".encode())
    pdf.save(path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return path


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of ``root_pid`` and all its descendants, summed."""
    return tree_rss_kib(root_pid)[1] * 1024


def peak_while(root_pid: int, running: Callable[[], bool]) -> int:
    peak = 0
    while running():
        peak = max(peak, tree_rss_bytes(root_pid))
        time.sleep(SAMPLE_SECONDS)
    return peak


def plain_ocrmypdf(path: Path, scratch: Path) -> Run:
    """Plain ocrmypdf with its defaults, with the pipeline's languages and ``--skip-text``
    (without it, plain refuses any PDF with a page of text), tesseract single-threaded as
    the pipeline runs it: bench/pipeline.py's baseline."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    process = subprocess.Popen(
        [sys.executable, "-m", "ocrmypdf", "-l", "eng+deu", "--skip-text", "--quiet", str(path),
         str(scratch / f"plain-{path.name}")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    peak = peak_while(process.pid, lambda: process.poll() is None)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or [""]
    return Run(
        peak=peak,
        ended="completed" if process.returncode == 0 else f"exit {process.returncode}: {last[0][:120]}",
        # ru_maxrss of the children only ever grows: it names this run's largest process
        # when that is larger than every earlier one's, else it says nothing new.
        largest_process=largest * 1024 if largest > before else None,
    )


def pipeline_run(env: dict[str, str], worker: subprocess.Popen[bytes], path: Path) -> Run:
    """The file through ``manage.py ingest --wait`` into the installation of ``env``, and the
    peak of ``worker``'s process tree meanwhile."""
    ingest = subprocess.Popen(
        [*MANAGE, "ingest", "--wait", "--json", str(path)],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    peak = peak_while(worker.pid, lambda: ingest.poll() is None)
    lines = [line for line in (ingest.stdout.read() if ingest.stdout else "").splitlines() if line.strip()]
    result = json.loads(lines[-1]) if lines else {}
    ended = str(result.get("status"))
    if result.get("error"):
        ended += f": {str(result['error'])[:120]}"
    return Run(peak=peak, ended=ended)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--files", default=DEFAULT_FILES, help="corpus files, comma-separated")
    parser.add_argument("--no-colour-page", action="store_true", help="leave out the 100-megapixel page")
    args = parser.parse_args()
    corpus = corpus_files(args.files) if args.files else []

    results: dict[str, dict[str, list[Run]]] = {}
    for round_number in range(1, args.rounds + 1):
        scratch = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        try:
            files = [hostile_pdf(scratch / "hostile-35000.pdf"), *corpus]
            if not args.no_colour_page:
                files.append(colour_page_pdf(scratch / "colour-100mp.pdf"))
            env = installation_env(scratch / "workdir")
            installation_create(env)
            # One worker process with one pool process, the pipeline's whole tree measured.
            with workers(env, scratch / "worker.log", count=1, concurrency=1) as (worker,):
                for path in files:
                    runs = results.setdefault(path.name, {"plain": [], "pipeline": []})
                    # Alternating which goes first, so neither always meets a warmer machine.
                    order = ("plain", "pipeline") if round_number % 2 else ("pipeline", "plain")
                    for side in order:
                        runs[side].append(
                            plain_ocrmypdf(path, scratch)
                            if side == "plain"
                            else pipeline_run(env, worker, path)
                        )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"round {round_number} done", flush=True)

    print(f"\npeak resident memory of the process tree (max of {args.rounds} round(s)); target <= 1.5 GB")
    print(f"{'file':<22}{'plain ocrmypdf':>16}{'pipeline':>12}{'ratio':>8}  how each ended")
    for name, runs in results.items():
        plain = max(run.peak for run in runs["plain"])
        pipeline = max(run.peak for run in runs["pipeline"])
        verdict = "ok" if pipeline <= TARGET_BYTES else "OVER TARGET"
        print(
            f"{name:<22}{plain / MIB:>12.0f} MiB{pipeline / MIB:>8.0f} MiB{pipeline / plain:>8.2f}  "
            f"plain: {runs['plain'][-1].ended}; pipeline: {runs['pipeline'][-1].ended} ({verdict})"
        )
        largest = [run.largest_process for run in runs["plain"] if run.largest_process]
        if largest:
            print(f"{'':<22}plain's largest single process (ru_maxrss): {max(largest) / MIB:.0f} MiB")


if __name__ == "__main__":
    main()
