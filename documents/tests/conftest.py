"""Fixtures for document tests: the sample documents, files made on the spot, a live worker."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from conftest import child_env, current_database_url
from documents import storage
from documents.models import Document
from documents.pipeline.runner import pipeline_run_sync
from documents.services import document_ingest
from documents.tests.samples import Samples


@pytest.fixture
def document_storage(settings, tmp_path: Path) -> Path:
    """A private local document storage (WORKDIR) for one test."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    settings.WORKDIR = workdir
    settings.SCRATCH_DIR = workdir / "tmp"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(workdir)},
        },
    }
    return workdir


IngestFn = Callable[..., Document]


@pytest.fixture
def ingest(owner: User, document_storage: Path) -> IngestFn:
    """Ingest bytes or a file for ``owner`` without queueing; returns the document."""

    def ingest_(content: bytes | Path, filename: str | None = None, *, user: User | None = None) -> Document:
        data = content.read_bytes() if isinstance(content, Path) else content
        name = filename or (content.name if isinstance(content, Path) else "upload.bin")
        result = document_ingest(owner=user or owner, chunks=[data], filename=name, enqueue=False)
        return result.document

    return ingest_


@pytest.fixture
def process(ingest: IngestFn, engines: None) -> Callable[..., Document]:
    """Ingest and run the whole pipeline in this process, with the real engines."""

    def process_(content: bytes | Path, filename: str | None = None) -> Document:
        document = ingest(content, filename)
        return pipeline_run_sync(document_id=document.pk)

    return process_


def store_thumbnail(document: Document) -> bytes:
    """Give ``document`` a thumbnail (a small PNG made here) as finalize would; returns it."""
    buffer = io.BytesIO()
    Image.new("RGB", (30, 42), (200, 30, 30)).save(buffer, format="PNG")
    storage.store_bytes(buffer.getvalue(), storage.thumbnail_name(document.uuid))
    return buffer.getvalue()


def stored_bytes(name: str) -> bytes:
    with storage.open_file(name) as handle:
        return handle.read()


# --- Hostile and broken inputs, made on the spot --------------------------------------------


def encrypted_pdf(source: Path, target: Path) -> Path:
    with pikepdf.open(source) as pdf:
        pdf.save(target, encryption=pikepdf.Encryption(owner="owner-secret", user="user-secret"))
    return target


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # IHDR data starts at byte 16: width, height (big-endian), then the chunk's CRC at 29.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def deflate_repeated(chunk: bytes, count: int, *, tail: bytes = b"") -> bytes:
    """A valid zlib stream of ``chunk`` ``count`` times and then ``tail``, made in the time
    of packing ``chunk`` once: a full flush forgets the history, so every repetition packs
    to the same bytes, which are repeated; the checksum is counted over the whole."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(count):
        checksum = zlib.adler32(chunk, checksum)
    checksum = zlib.adler32(tail, checksum)
    end = packer.compress(tail) + packer.flush()
    return b"\x78\xda" + body * count + end + struct.pack(">I", checksum)


def pdf_drawing_image(
    width: int,
    height: int,
    *,
    page: tuple[float, float] = (612, 792),
    drawn: tuple[float, float] | None = None,
) -> bytes:
    """A one-page PDF drawing a 1-bit image of ``width`` x ``height`` pixels, all zeros,
    Flate-compressed twice: 35,000 x 35,000 pixels (150 MB decoded) take about 1 KB.

    The image fills the page, or is drawn ``drawn`` points wide and high at its corner.
    """
    row = bytes((width + 7) // 8)
    once = deflate_repeated(row * 1000, height // 1000, tail=row * (height % 1000))
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, b"")
    # write() stores the bytes as encoded, and saving without recompression keeps them so.
    image.write(zlib.compress(once, 9), filter=[pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode])
    image.update(pikepdf.Dictionary(
        Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=width, Height=height,
        BitsPerComponent=1, ColorSpace=pikepdf.Name.DeviceGray,
    ))  # fmt: skip
    sheet = pdf.add_blank_page(page_size=page)
    sheet.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    drawn_width, drawn_height = drawn or page
    sheet.Contents = pikepdf.Stream(pdf, f"q {drawn_width} 0 0 {drawn_height} 0 0 cm /Im0 Do Q".encode())
    buffer = io.BytesIO()
    pdf.save(buffer, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return buffer.getvalue()


def pdf_with_page_box(width: float, height: float) -> bytes:
    """A page of ``width`` x ``height`` points with a drawing and no text, so OCR would
    render it at 400 dpi: 14,400 points (200 inches) is PDF's largest page."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(width, height))
    page.Contents = pikepdf.Stream(
        pdf, f"0.2 g {width / 4} {height / 4} {width / 2} {height / 2} re f".encode()
    )
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def zip_bomb_docx(megabytes: int = 64) -> bytes:
    """A .docx-shaped zip whose one entry inflates from a few KB to ``megabytes`` MB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w") as entry:
            block = b"\0" * (1024 * 1024)
            for _ in range(megabytes):
                entry.write(block)
    return buffer.getvalue()


def lying_zip_docx(*, declared: int = 400 * 1024, inflated_megabytes: int = 629) -> bytes:
    """A .docx-shaped zip whose entry says it holds ``declared`` bytes but inflates to far more.

    Its sizes pass any check that believes them (600 KB packed, 400 KB unpacked); only
    inflating the data shows what it is. Written by hand, since zipfile records true sizes.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # A full flush forgets the history, so every megabyte of zeros packs to the same bytes.
    megabyte = packer.compress(b"\0" * (1024 * 1024)) + packer.flush(zlib.Z_FULL_FLUSH)
    data = megabyte * inflated_megabytes + packer.flush()
    name = b"word/document.xml"
    crc = 0  # never checked: nothing honest reads this far
    sizes = (crc, len(data), declared, len(name))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, *sizes, 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, 0)
    directory = central + name
    directory_offset = len(local) + len(name) + len(data)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), directory_offset, 0)
    return local + name + data + directory + end


# --- A live worker on the test database ------------------------------------------------------


@pytest.fixture
def worker_env(transactional_db: None, settings) -> dict[str, str]:
    """Environment for a worker sharing this test's database, storage and broker."""
    env = child_env(dict(os.environ))
    env.update(WORKDIR=str(settings.WORKDIR), DATABASE_URL=current_database_url(), PYTHONUNBUFFERED="1")
    # Messages left by an earlier run of the suite would otherwise reach this worker.
    shutil.rmtree(Path(settings.WORKDIR) / "broker" / "queue", ignore_errors=True)
    (Path(settings.WORKDIR) / "broker" / "queue").mkdir(parents=True, exist_ok=True)
    if os.environ.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        for queue in ("document_processor", "default", "celery"):
            client.delete(queue)
    return env


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What reached the broker: every pipeline and search task sent, captured instead of sent.

    Each entry has the task's ``task`` name, ``args`` and the other sending options.
    """
    calls: list[dict[str, Any]] = []

    def capture(name: str) -> Callable[..., None]:
        def apply_async(args: Any = None, kwargs: Any = None, **options: Any) -> None:
            calls.append({"task": name, "args": args, "kwargs": kwargs, **options})

        return apply_async

    for task in (
        "documents.tasks.pipeline_step_task",
        "documents.tasks.document_fetch_url_task",
        "search.tasks.search_index_document_task",
        "search.tasks.search_index_documents_task",
        "search.tasks.search_remove_document_task",
    ):
        monkeypatch.setattr(f"{task}.apply_async", capture(task))
    return calls


@pytest.fixture
def trivial(samples: Samples) -> Path:
    """The smallest valid PDF (one empty page): processing it takes a fraction of a second."""
    return samples / "blank.pdf"


@pytest.fixture
def api(owner: User) -> APIClient:
    """An API client authenticated as ``owner``."""
    client = APIClient()
    client.force_authenticate(owner)
    return client
