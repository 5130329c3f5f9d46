"""The WebDAV test server with a hand on the wire: it records every request, answers one
with a status of the test's choosing, and holds an upload part-way, as a server that dies
mid-transfer leaves it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .servers.webdav import WebDavServer


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HeldUpload:
    """The next PUT: the server stores its first ``after_bytes`` bytes, sets ``started`` and
    reads no more until ``released`` (or ``seconds`` have passed); then the transfer breaks
    off. Stopping the server meanwhile drops the connection, as a crash would."""

    after_bytes: int
    seconds: float = 2
    started: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class _HeldInput:
    def __init__(self, stream: Any, held: HeldUpload) -> None:
        self._stream = stream
        self._held = held
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        if self._read >= self._held.after_bytes:
            self._held.started.set()
            self._held.released.wait(self._held.seconds)
            raise ConnectionResetError("the test cut the upload")
        wanted = self._held.after_bytes - self._read
        chunk: bytes = self._stream.read(wanted if size < 0 else min(size, wanted))
        self._read += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


class ScriptedWebDavServer(WebDavServer):
    """``WebDavServer`` plus ``seen`` (every request), ``answer`` and ``hold_upload``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[SeenRequest] = []
        self._answers: dict[str, tuple[int, bytes]] = {}
        self._held: HeldUpload | None = None
        self._lock = threading.Lock()

    def answer(self, method: str, status: int, body: bytes = b"") -> None:
        """Answer the next ``method`` request with ``status`` (and ``body``), not wsgidav."""
        with self._lock:
            self._answers[method] = (status, body)

    def hold_upload(self, *, after_bytes: int, seconds: float = 2) -> HeldUpload:
        """Hold the next PUT after ``after_bytes`` bytes (see ``HeldUpload``); a test that
        must act while the upload is held (kill its client) gives it more ``seconds``."""
        held = HeldUpload(after_bytes=after_bytes, seconds=seconds)
        with self._lock:
            self._held = held
        return held

    def requests_of(self, method: str) -> list[SeenRequest]:
        return [request for request in self.seen if request.method == method]

    def _application(self) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
        dav = super()._application()

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            method = environ["REQUEST_METHOD"]
            headers = {
                name[5:].replace("_", "-").title(): str(value)
                for name, value in environ.items()
                if name.startswith("HTTP_")
            }
            with self._lock:
                self.seen.append(SeenRequest(method, environ.get("PATH_INFO", ""), headers))
                scripted = self._answers.pop(method, None)
                held = self._held if method == "PUT" and scripted is None else None
                if held is not None:
                    self._held = None
            if scripted is not None:
                status, body = scripted
                content_type = "application/xml; charset=utf-8" if body.startswith(b"<?xml") else "text/plain"
                start_response(
                    f"{status} {HTTPStatus(status).phrase}",
                    [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                )
                return [body]
            if held is not None:
                environ["wsgi.input"] = _HeldInput(environ["wsgi.input"], held)
            result: Iterable[bytes] = dav(environ, start_response)
            return result

        return application
