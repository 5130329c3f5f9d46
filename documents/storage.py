"""The only door to document files.

Everything the pipeline keeps goes through the ``documents`` Django storage: the local
WORKDIR by default, an S3-compatible bucket with ``DOCUMENT_STORAGE=s3``. Code elsewhere
handles storage *names* (``originals/…``, ``processed/<uuid>/…``, ``tmp/<uuid>/…``) and
borrows local files through the context managers here, so api and workers share no volume
and nothing else knows where files physically are.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from docuelevate.errors import PayloadTooLarge

CHUNK_SIZE = 1024 * 1024
HEAD_SIZE = 64 * 1024  # enough for content sniffing, including office containers


def document_storage() -> Storage:
    return storages["documents"]


@dataclass(frozen=True)
class SpooledUpload:
    """An upload written to local scratch space while it was hashed."""

    path: Path
    sha256: str
    size: int
    head: bytes


@contextmanager
def spooled_upload(chunks: Iterable[bytes], *, max_size: int) -> Iterator[SpooledUpload]:
    """Write ``chunks`` to a private scratch file, hashing as they stream.

    The upload is never held in memory whole. Past ``max_size`` bytes the copy stops and
    PayloadTooLarge is raised; the partial file is removed either way on exit.
    """
    settings.SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    with tempfile.NamedTemporaryFile(dir=settings.SCRATCH_DIR, prefix="upload-", delete=False) as handle:
        path = Path(handle.name)
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise PayloadTooLarge(f"The file is larger than the limit of {max_size} bytes.")
                if len(head) < HEAD_SIZE:
                    head += chunk[: HEAD_SIZE - len(head)]
                digest.update(chunk)
                handle.write(chunk)
        except BaseException:
            handle.close()
            path.unlink(missing_ok=True)
            raise
    try:
        yield SpooledUpload(path=path, sha256=digest.hexdigest(), size=size, head=head)
    finally:
        path.unlink(missing_ok=True)


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Chunks of a binary stream, for ``spooled_upload``."""
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def original_name() -> str:
    """A fresh storage name for an original: never derived from anything a user sent."""
    return f"originals/{uuid.uuid4().hex}"


def artifact_name(document_uuid: uuid.UUID, label: str) -> str:
    """Storage name of an intermediate file of the pipeline (``tmp/<uuid>/<label>``)."""
    return f"tmp/{document_uuid.hex}/{label}"


def processed_folder(document_uuid: uuid.UUID) -> str:
    """The folder of one document's final files (``processed/<uuid>``)."""
    return f"processed/{document_uuid.hex}"


def processed_name(document_uuid: uuid.UUID, stem: str) -> str:
    """Storage name of a document's final PDF: ``processed/<uuid>/<stem>.pdf``.

    The folder belongs to one document, so two documents can never be given one name, not
    even when two workers file them at the same moment, and no ``_2`` suffix tells anyone
    that another document has the same title. The file's own name stays the readable one
    (``2024-03-12_Invoice.pdf``) that downloads are named after.
    """
    return f"{processed_folder(document_uuid)}/{stem}.pdf"


def thumbnail_name(document_uuid: uuid.UUID) -> str:
    """Storage name of the picture of a document's first page: ``processed/<uuid>/thumbnail.png``.

    In the document's own folder, so deleting the document removes it with the PDF; one
    fixed name, so reprocessing replaces it, and no processed PDF (``<stem>.pdf``) or
    sidecar (``<stem>.json``) can ever be given the same name.
    """
    return f"{processed_folder(document_uuid)}/thumbnail.png"


def sidecar_name(pdf_name: str) -> str:
    """The JSON sidecar beside a processed PDF."""
    return pdf_name.removesuffix(".pdf") + ".json"


def store_file(local_path: Path, name: str) -> str:
    """Put a local file into the storage under exactly ``name``, replacing what was there.

    Replacing rather than renaming keeps re-runs idempotent: a step run twice leaves one
    file, not ``name_1``.
    """
    storage = document_storage()
    if storage.exists(name):
        storage.delete(name)
    with local_path.open("rb") as handle:
        saved = storage.save(name, File(handle, name=Path(name).name))
    return saved


def store_bytes(content: bytes, name: str) -> str:
    """Like ``store_file`` for small generated content such as JSON sidecars."""
    with scratch_dir() as scratch:
        path = scratch / "content"
        path.write_bytes(content)
        return store_file(path, name)


def exists(name: str) -> bool:
    return bool(name) and document_storage().exists(name)


def delete(name: str) -> None:
    if name and document_storage().exists(name):
        document_storage().delete(name)


def delete_folder(prefix: str) -> None:
    """Remove every file directly under ``prefix`` (a ``tmp/<uuid>`` or ``processed/<uuid>`` folder).

    No ``exists(prefix)`` check first: on S3 a folder is only a key prefix, not an object,
    so it never "exists" and nothing would be removed. Listing a missing prefix there gives
    nothing; only the local storage raises for a folder that was never made.
    """
    storage = document_storage()
    try:
        _folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file_name in files:
        storage.delete(f"{prefix}/{file_name}")
    local_folder = _local_path(prefix)
    if local_folder is not None:
        shutil.rmtree(local_folder, ignore_errors=True)


def open_file(name: str) -> IO[bytes]:
    """Open a stored file for reading (downloads stream from here)."""
    return document_storage().open(name, "rb")


def size_of(name: str) -> int:
    return document_storage().size(name)


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A local file with the content of ``name``, for tools that need a path.

    On the local storage this is the stored file itself, which callers must treat as
    read-only; on remote storage it is a download into scratch space, removed afterwards.
    """
    local = _local_path(name)
    if local is not None:
        yield local
        return
    with scratch_dir() as scratch, document_storage().open(name, "rb") as remote:
        path = scratch / Path(name).name
        with path.open("wb") as handle:
            shutil.copyfileobj(remote, handle, CHUNK_SIZE)
        yield path


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private local folder for a step's work, removed with everything in it afterwards."""
    settings.SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.SCRATCH_DIR, prefix="step-") as folder:
        yield Path(folder)


def _local_path(name: str) -> Path | None:
    """The file's path when the storage is a local file system, else None."""
    try:
        return Path(document_storage().path(name))
    except NotImplementedError:
        return None
