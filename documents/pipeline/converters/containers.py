"""Zip containers (OOXML, OpenDocument) checked and mended before a converter opens them."""

from __future__ import annotations

import struct
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from documents.pipeline.base import StepFailed
from documents.pipeline.isolation import CAPPED_ENGINE_ENVIRONMENT, memory_capped, minimal_environment

# A container that inflates to more than this, or to more than the ratio times its own
# size, is refused before anything unpacks it.
MAX_UNPACKED_BYTES = 512 * 1024**2
MAX_COMPRESSION_RATIO = 200
# Bytes read, and at most produced, per inflation round: memory stays bounded whatever
# an entry holds.
CHUNK = 1024 * 1024
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
# zip's address space while it rebuilds a container: it copies entries a buffer at a time
# (it rebuilt a 16 MB ODT within 8 MiB), so this is ample and far below a worker's share.
ZIP_REPAIR_MEMORY_LIMIT = 256 * 1024 * 1024


def refuse_zip_bomb(path: Path) -> None:
    """Refuse a zip container whose contents would inflate to something enormous.

    The sizes a zip declares are whatever its maker wrote, so they are not believed: each
    entry's data is inflated here, a chunk at a time and thrown away, and the bytes it
    really yields are counted until a limit is passed.
    """
    packed = path.stat().st_size or 1
    limit = min(MAX_UNPACKED_BYTES, packed * MAX_COMPRESSION_RATIO)
    inflated = 0
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
            for entry in archive.infolist():
                for produced in _inflated_sizes(raw, entry):
                    inflated += produced
                    if inflated > limit:
                        raise StepFailed(
                            f"The file inflates to more than {inflated} bytes from {packed}; "
                            "refused as a possible zip bomb."
                        )
    except (zipfile.BadZipFile, struct.error):
        raise StepFailed("The file is a damaged zip container.") from None


def _inflated_sizes(raw: BinaryIO, entry: zipfile.ZipInfo) -> Iterator[int]:
    """Sizes of the chunks an entry's data inflates to, read from its local header on."""
    header = _local_header(raw, entry)
    if header is None or len(header) < LOCAL_HEADER.size:
        return  # a directory pointing nowhere: container_is_damaged and the repair deal with it
    fields = LOCAL_HEADER.unpack(header)
    method, name_length, extra_length = fields[4], fields[10], fields[11]
    raw.seek(name_length + extra_length, 1)
    if method == zipfile.ZIP_STORED:
        # Stored data is as long as it is in the file; it cannot grow.
        yield entry.compress_size
        return
    if method != zipfile.ZIP_DEFLATED:
        raise StepFailed(f"The zip container uses compression method {method}, which office files never use.")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = b""
    while not inflater.eof:
        pending = pending or raw.read(CHUNK)
        if not pending:
            return  # the data stops early: a truncated file, left to the converter to judge
        try:
            yield len(inflater.decompress(pending, CHUNK))
        except zlib.error:
            return  # corrupt data cannot inflate any further; the converter judges the rest
        pending = inflater.unconsumed_tail


def container_is_damaged(path: Path) -> bool:
    """True when the zip's directory points at offsets where no file entry starts.

    Such files (one byte lost in transfer, a truncated download) open in no office program
    until their directory is rebuilt.
    """
    with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
        return any(_local_header(raw, entry) is None for entry in archive.infolist())


def _local_header(raw: BinaryIO, entry: zipfile.ZipInfo) -> bytes | None:
    """The bytes where the entry's local header should be, or None where none starts."""
    if entry.header_offset < 0:
        return None
    raw.seek(entry.header_offset)
    header = raw.read(LOCAL_HEADER.size)
    return header if header[:4] == LOCAL_HEADER_SIGNATURE else None


def repair_container(source: Path, destination: Path) -> None:
    """Rebuild a damaged zip container from its entries (``zip -FF``)."""
    # zip appends ".zip" to a name without an extension, so it gets one it cannot miss.
    damaged = destination.with_name("damaged.zip")
    damaged.symlink_to(source)
    try:
        # No input and no captured output: zip asks questions on a terminal and may talk a lot.
        result = subprocess.run(
            memory_capped(["zip", "-FF", str(damaged), "--out", str(destination)], ZIP_REPAIR_MEMORY_LIMIT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            env={**minimal_environment(destination.parent), **CAPPED_ENGINE_ENVIRONMENT},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StepFailed("Repairing the damaged zip container took too long.") from None
    if result.returncode != 0 or not destination.exists():
        raise StepFailed("The file is a damaged zip container that could not be repaired.")
