"""Request bodies held to their limits at the WSGI door, before Django reads a byte.

Django reads a body only as far as CONTENT_LENGTH says, and knows nothing of
``Transfer-Encoding: chunked``: gunicorn decodes chunked bodies (``wsgi.input_terminated``)
but leaves CONTENT_LENGTH unset, so Django saw an empty body and the limits in Django
(docuelevate.middleware, documents.uploads) never applied. This layer, wrapped around the
Django application in docuelevate.wsgi:

- spools a chunked body to a temporary file (memory up to SPOOL_MEMORY_SIZE, then an
  unnamed file under SCRATCH_DIR) while counting, refuses with 413 the moment the count
  passes the limit, without reading further, and otherwise hands Django the spool with a
  correct CONTENT_LENGTH, so chunked uploads and chunked JSON simply work;
- refuses a multipart body whose declared length is over the limit before reading it;
- refuses a multipart body with 507 when WORKDIR is below its free-space floor
  (MIN_FREE_DISK_MB, docuelevate.diskspace), counting a declared length as already
  written, and stops a chunked spool with 507 when the floor is reached or the disk fills;
- leaves every other request untouched (a declared non-multipart length is Django's
  RequestBodyLimitMiddleware's; probes carry no body).

The limit is MAX_REQUEST_BODY_SIZE, and for multipart/form-data MAX_UPLOAD_SIZE plus
MAX_REQUEST_BODY_SIZE: the files of one request together, with room for form fields and
multipart framing. Each file is then held to MAX_UPLOAD_SIZE on its own by the upload
handler, so one request never puts more than that on disk however it is framed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse

from docuelevate import diskspace
from docuelevate.views import error_response

# A chunked JSON body of a few KB stays in memory; anything larger goes to disk.
SPOOL_MEMORY_SIZE = 256 * 1024
# How much is read at a time: also how far past the limit a refused body is read at most.
READ_SIZE = 64 * 1024
# Bytes spooled between two looks at WORKDIR's free space.
NO_ROOM_CHECK_EVERY = 1024 * 1024


def is_multipart(environ: WSGIEnvironment) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).lower().startswith("multipart/form-data")


def body_limit(environ: WSGIEnvironment) -> int:
    """The most bytes this request's body may have."""
    if is_multipart(environ):
        return int(settings.MAX_UPLOAD_SIZE) + int(settings.MAX_REQUEST_BODY_SIZE)
    return int(settings.MAX_REQUEST_BODY_SIZE)


def _is_chunked(environ: WSGIEnvironment) -> bool:
    # Only when the server decoded the chunks and marks the end of the body; a server that
    # does not (wsgiref) would hand over the raw framing or block at the end, so such a
    # request keeps Django's old reading: no length, no body.
    encoding = str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    return (
        "chunked" in encoding
        and bool(environ.get("wsgi.input_terminated"))
        and not environ.get("CONTENT_LENGTH")
    )


def _declared_length(environ: WSGIEnvironment) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django treats a malformed length as no body, and so does this


class BodyLimitMiddleware:
    """WSGI middleware: see the module docstring."""

    def __init__(self, application: WSGIApplication) -> None:
        self.application = application

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        limit = body_limit(environ)
        if _is_chunked(environ):
            if is_multipart(environ) and not diskspace.has_room():
                return _refuse_no_room(environ, start_response)
            return self._spooled(environ, start_response, limit)
        if is_multipart(environ) and _declared_length(environ) > limit:
            return _refuse(environ, start_response)
        if is_multipart(environ) and not diskspace.has_room(incoming=_declared_length(environ)):
            # Before a byte is read: the upload would take WORKDIR below its floor.
            return _refuse_no_room(environ, start_response)
        return self.application(environ, start_response)

    def _spooled(
        self, environ: WSGIEnvironment, start_response: StartResponse, limit: int
    ) -> Iterable[bytes]:
        settings.SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
        # Past the memory threshold the spool becomes an unnamed file (O_TMPFILE on Linux),
        # so even a killed worker leaves nothing behind in SCRATCH_DIR.
        # Not a with-block: the spool lives until the server closes the response (_ClosingResponse).
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY_SIZE, dir=str(settings.SCRATCH_DIR)
        )
        try:
            size = _copy_within(environ["wsgi.input"], spool, limit)
        except OSError as exc:
            spool.close()
            if diskspace.is_disk_full(exc):
                return _refuse_no_room(environ, start_response)
            raise
        except BaseException:
            spool.close()
            raise
        if size is None:
            spool.close()
            return _refuse(environ, start_response)
        if size < 0:
            spool.close()
            return _refuse_no_room(environ, start_response)
        spool.seek(0)
        environ["wsgi.input"] = spool
        environ["CONTENT_LENGTH"] = str(size)
        # From here on the body is an ordinary one of known length.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            response = self.application(environ, start_response)
        except BaseException:
            spool.close()
            raise
        return _ClosingResponse(response, spool)


def _copy_within(source: IO[bytes], target: IO[bytes], limit: int) -> int | None:
    """Copy ``source`` to ``target``; the size, or None as soon as it passes ``limit``, or
    -1 as soon as WORKDIR falls below its free-space floor (looked at once per MiB)."""
    size = 0
    while chunk := source.read(READ_SIZE):
        size += len(chunk)
        if size > limit:
            return None
        if size % NO_ROOM_CHECK_EVERY < len(chunk) and not diskspace.has_room():
            return -1
        target.write(chunk)
    return size


def _refuse(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """413 in the same shape as Django's: ``{"detail": ...}`` under /api/, the error page elsewhere."""
    if is_multipart(environ):
        detail = f"The upload is larger than the limit of {settings.MAX_UPLOAD_SIZE} bytes."
    else:
        detail = f"The request body is larger than the limit of {settings.MAX_REQUEST_BODY_SIZE} bytes."
    return _answer(environ, start_response, status=413, detail=detail)


def _refuse_no_room(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """507 with the ingest's own words (docuelevate.diskspace): the body would not fit."""
    return _answer(environ, start_response, status=507, detail=diskspace.no_room_error().message)


def _answer(
    environ: WSGIEnvironment, start_response: StartResponse, *, status: int, detail: str
) -> list[bytes]:
    # Building the request reads nothing: it only wraps the input.
    response: HttpResponse = error_response(WSGIRequest(environ), status=status, detail=detail)
    response["Content-Length"] = str(len(response.content))
    # No "Connection: close" header: PEP 3333 forbids hop-by-hop headers from applications
    # (wsgiref asserts on it) and gunicorn drops it. gunicorn closes the connection itself:
    # sync workers after every request, gthread ones when the unread body is over 64 KB.
    start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
    return [response.content]


class _ClosingResponse:
    """The application's response, which also closes the spooled body when the server closes it."""

    def __init__(self, response: Iterable[bytes], spool: IO[bytes]) -> None:
        self._response = response
        self._spool = spool

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._response)

    def close(self) -> None:
        try:
            close = getattr(self._response, "close", None)
            if close is not None:
                close()  # Django's request_finished: database connections, uploaded files
        finally:
            self._spool.close()
