"""Uploaded files held to MAX_UPLOAD_SIZE while they arrive, not once they are on disk.

Django's stock handler writes every file to a temporary file in full before any view
runs, so a 2 GB file took 2 GB of scratch space before the ingest refused it. This
handler counts each file's bytes as they arrive and, the moment one passes the limit,
deletes its partial temporary file and drops the rest of its bytes. The file stays among
the request's files as an OversizedUpload, so the view answers for it like for any other
refused file (413 when it is the only one, an "error" entry among several) instead of it
silently vanishing.

How much the handler reads at all is bounded one layer out: docuelevate.bodylimit refuses
a multipart body over MAX_UPLOAD_SIZE + MAX_REQUEST_BODY_SIZE, declared or chunked.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import NoReturn

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from docuelevate.errors import PayloadTooLarge


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


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler, holding each file to MAX_UPLOAD_SIZE as it streams in."""

    oversized = False

    def new_file(self, *args: object, **kwargs: object) -> None:
        super().new_file(*args, **kwargs)  # type: ignore[arg-type]  # passed through as Django gives them
        self.oversized = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.oversized:
            return None  # the rest of a refused file: read, never kept
        if start + len(raw_data) > settings.MAX_UPLOAD_SIZE:
            self.oversized = True
            # Closing the temporary file deletes it; forgetting it keeps Django from closing
            # or removing it a second time (MultiPartParser._close_files, upload_interrupted).
            self.file.close()
            del self.file
            return None
        super().receive_data_chunk(raw_data, start)
        return None

    def file_complete(self, file_size: int) -> UploadedFile[bytes] | None:
        if self.oversized:
            return OversizedUpload(
                name=self.file_name or "upload",
                content_type=self.content_type or "",
                size=file_size,
                charset=self.charset,
                content_type_extra=self.content_type_extra,
            )
        return super().file_complete(file_size)
