"""Uploaded files held to MAX_UPLOAD_SIZE while they arrive, not once they are on disk.

Django's stock handler writes every file to a temporary file in full before any view
runs, so a 2 GB file took 2 GB of scratch space before the ingest refused it. This
handler counts each file's bytes as they arrive and, the moment one passes the limit,
deletes its partial temporary file and drops the rest of its bytes. The file stays among
the request's files as an OversizedUpload, so the view answers for it like for any other
refused file (413 when it is the only one, an "error" entry among several) instead of it
silently vanishing. The same holds for WORKDIR's free-space floor (docuelevate.diskspace):
below it, or when a write meets a full disk, the file is dropped the same way and stands
as a NoRoomUpload, answered with 507.

How much the handler reads at all is bounded one layer out: docuelevate.bodylimit refuses
a multipart body over MAX_UPLOAD_SIZE + MAX_REQUEST_BODY_SIZE, declared or chunked.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import NoReturn

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler

from docuelevate import diskspace
from docuelevate.errors import PayloadTooLarge
from documents.storage import CHUNK_SIZE


def file_too_large() -> PayloadTooLarge:
    # The same words as the ingest's own check (documents.storage.spooled_upload).
    return PayloadTooLarge(f"The file is larger than the limit of {settings.MAX_UPLOAD_SIZE} bytes.")


class OversizedUpload(UploadedFile[bytes]):
    """Stands in for a file refused for its size: its name and the size seen, none of its bytes.

    Reading it raises PayloadTooLarge, which is how the ingest (and so the view) learns of it.
    """

    def __init__(
        self,
        *,
        name: str,
        content_type: str,
        size: int,
        charset: str | None,
        content_type_extra: dict[str, bytes] | None,
    ) -> None:
        super().__init__(io.BytesIO(), name, content_type, size, charset, content_type_extra)

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        raise file_too_large()

    def read(self, *args: object, **kwargs: object) -> NoReturn:
        raise file_too_large()


class NoRoomUpload(OversizedUpload):
    """Stands in for a file refused because WORKDIR fell below its free-space floor (or the
    disk filled) while it arrived; reading it raises InsufficientStorage (507)."""

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        raise diskspace.no_room_error()

    def read(self, *args: object, **kwargs: object) -> NoReturn:
        raise diskspace.no_room_error()


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler, holding each file to MAX_UPLOAD_SIZE as it streams in,
    and to WORKDIR's free-space floor (docuelevate.diskspace)."""

    # Why the current file was dropped: None while it is kept.
    refused: type[OversizedUpload] | None = None

    def new_file(self, *args: object, **kwargs: object) -> None:
        self.refused = None
        if not diskspace.has_room():
            # No temporary file at all: nothing is written for a file that cannot be kept.
            self.refused = NoRoomUpload
            FileUploadHandler.new_file(self, *args, **kwargs)  # type: ignore[arg-type]  # as Django gives them
            return
        super().new_file(*args, **kwargs)  # type: ignore[arg-type]  # passed through as Django gives them

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.refused is not None:
            return None  # the rest of a refused file: read, never kept
        if start + len(raw_data) > settings.MAX_UPLOAD_SIZE:
            self._drop(OversizedUpload)
            return None
        # Once per CHUNK_SIZE: several uploads at once share the floor.
        crossed = (start + len(raw_data)) // CHUNK_SIZE != start // CHUNK_SIZE
        if crossed and not diskspace.has_room():
            self._drop(NoRoomUpload)
            return None
        try:
            super().receive_data_chunk(raw_data, start)
        except OSError as exc:
            if not diskspace.is_disk_full(exc):
                raise
            self._drop(NoRoomUpload)
        return None

    def _drop(self, refusal: type[OversizedUpload]) -> None:
        self.refused = refusal
        # Closing the temporary file deletes it (even when flushing its buffer fails again on
        # a full disk); forgetting it keeps Django from closing or removing it a second time
        # (MultiPartParser._close_files, upload_interrupted).
        with contextlib.suppress(OSError):
            self.file.close()
        del self.file

    def file_complete(self, file_size: int) -> UploadedFile[bytes] | None:
        if self.refused is not None:
            return self.refused(
                name=self.file_name or "upload",
                content_type=self.content_type or "",
                size=file_size,
                charset=self.charset,
                content_type_extra=self.content_type_extra,
            )
        return super().file_complete(file_size)
