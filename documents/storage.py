"""The only door to document files.

Everything the pipeline keeps goes through the ``documents`` Django storage: the local
WORKDIR by default, an S3-compatible bucket with ``DOCUMENT_STORAGE=s3``. Code elsewhere
handles storage *names* (``originals/…``, ``processed/<uuid>/…``, ``tmp/<uuid>/…``) and
borrows local files through the context managers here, so api and workers share no volume
and nothing else knows where files physically are.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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

from docuelevate import diskspace
from docuelevate.errors import PayloadTooLarge

CHUNK_SIZE = 1024 * 1024
HEAD_SIZE = 64 * 1024  # enough for content sniffing, including office containers
# Bytes of one folder or file name under processed/<uuid>/: file systems allow 255, and the
# ``.json`` of a sidecar and the ``.partial-`` name of a file being written need room too.
MAX_NAME_SEGMENT_BYTES = 200
# Characters of a whole stored name (``Document.processed_file`` is a CharField(500)).
MAX_STORED_NAME = 500
# Files being written under a name of their own until complete (``store_file``); nothing
# else in a document's folder starts with a dot (names are cut of dots at their ends).
PARTIAL_PREFIX = ".partial-"


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
    PayloadTooLarge is raised; below WORKDIR's free-space floor (checked before the first
    byte and after every CHUNK_SIZE), or when the disk fills, InsufficientStorage. The partial
    file is removed either way on exit.
    """
    settings.SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    diskspace.require_room()
    digest = hashlib.sha256()
    size = 0
    checked = 0  # bytes written when the free space was last looked at
    head = b""
    with tempfile.NamedTemporaryFile(dir=settings.SCRATCH_DIR, prefix="upload-", delete=False) as handle:
        path = Path(handle.name)
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise PayloadTooLarge(f"The file is larger than the limit of {max_size} bytes.")
                if size - checked >= CHUNK_SIZE:
                    # Several uploads at once share the floor: stop this one while room is left.
                    checked = size
                    diskspace.require_room()
                if len(head) < HEAD_SIZE:
                    head += chunk[: HEAD_SIZE - len(head)]
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
        except OSError as exc:
            # Closing flushes what is buffered, which fails the same way on a full disk.
            with contextlib.suppress(OSError):
                handle.close()
            path.unlink(missing_ok=True)
            if diskspace.is_disk_full(exc):
                raise diskspace.no_room_error() from exc
            raise
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
    that another document has the same title. ``stem`` may have folders of its own (a
    filename template's ``2024/ACME/Invoice``): each is cut to MAX_NAME_SEGMENT_BYTES, and
    the whole name to what ``Document.processed_file`` holds, so a long template or title
    can never make a name the file system or the database refuses.
    """
    parts = [_cut(part) for part in stem.split("/")]
    relative = "/".join(part for part in parts if part) or "document"
    folder = processed_folder(document_uuid)
    room = MAX_STORED_NAME - len(folder) - len("/.json")
    if len(relative) > room:
        # Too deep or too long: the end goes (the file name is the last part of a template).
        relative = (
            "/".join(part for part in (_cut(p) for p in relative[:room].split("/")) if part) or "document"
        )
    return f"{folder}/{relative}.pdf"


def _cut(part: str) -> str:
    """One folder or file name: at most MAX_NAME_SEGMENT_BYTES, no dot or space at its ends."""
    cut = part.encode()[:MAX_NAME_SEGMENT_BYTES].decode(errors="ignore")
    return cut.strip(" .")


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
    file, not ``name_1``. The replacement is whole or not at all, so a worker killed while
    writing never leaves ``name`` cut short or missing: on a local disk the file is written
    under a ``.partial-`` name beside it and renamed over ``name`` (one atomic rename); on
    S3 an object is only ever replaced whole by the upload (``file_overwrite``).
    """
    storage = document_storage()
    target = _local_path(name)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex}")
        try:
            with local_path.open("rb") as source, partial.open("wb") as handle:
                shutil.copyfileobj(source, handle, CHUNK_SIZE)
                handle.flush()
                os.fsync(handle.fileno())
            mode = getattr(storage, "file_permissions_mode", None)
            if mode is not None:
                partial.chmod(mode)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return name
    if not getattr(storage, "file_overwrite", False) and storage.exists(name):
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


def processed_files(document_uuid: uuid.UUID) -> list[str]:
    """Every file in a document's own folder ``processed/<uuid>/``, at any depth (a filename
    template makes folders), ``.partial-`` files of an interrupted write included."""
    storage = document_storage()
    found: list[str] = []
    pending = [processed_folder(document_uuid)]
    while pending:
        prefix = pending.pop()
        try:
            folders, files = storage.listdir(prefix)
        except FileNotFoundError:
            continue
        found.extend(f"{prefix}/{file_name}" for file_name in files)
        pending.extend(f"{prefix}/{folder}" for folder in folders)
    return sorted(found)


def processed_tidy(document_uuid: uuid.UUID, *, keep: Iterable[str]) -> list[str]:
    """Delete every file in the document's own folder but ``keep``, and the folders left
    empty; returns what went.

    This is how a move ends, and how an interrupted one is repaired: a move writes the new
    name first, points the database at it, then calls this with what the database names,
    so whatever a killed move left behind (the old name, a half-written ``.partial-``) goes.
    """
    kept = set(keep)
    gone = [name for name in processed_files(document_uuid) if name not in kept]
    storage = document_storage()
    for name in gone:
        storage.delete(name)
    root = _local_path(processed_folder(document_uuid))
    if root is not None and root.is_dir():
        # Deepest first, so a folder whose only content was an empty folder goes too.
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
    return gone


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
