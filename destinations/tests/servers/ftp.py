"""An FTP server (pyftpdlib), plain or with explicit TLS (AUTH TLS), in a thread of the test.

One user with a password, whose home is the root folder. ``uploads`` lets a test make the
next uploads slow, hold one mid-transfer until it says so (the moment to kill a worker), or
drop the connection mid-transfer, each after a byte count it chooses, so a fault happens at
the same point on every run.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .base import FileServer, listening_socket
from .tls import TlsFiles

# pyftpdlib ships no type information (hence the ignores), and runs on asyncore and
# asynchat, which Python 3.11 warns about on import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
    from pyftpdlib.filesystems import AbstractedFS  # type: ignore[import-untyped]
    from pyftpdlib.handlers import (  # type: ignore[import-untyped]
        DTPHandler,
        FTPHandler,
        TLS_DTPHandler,
        TLS_FTPHandler,
    )
    from pyftpdlib.ioloop import IOLoop  # type: ignore[import-untyped]
    from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]

# Every right on the home folder: list, read, create folders, write, append, rename, delete.
ALL_PERMISSIONS = "elradfmwMT"
HOLD_POLL_SECONDS = 0.02

Rule = Literal["hold", "drop"]


class UploadControl:
    """How the server treats the next uploads (STOR), set by the test from its own thread.

    - ``limit_rate(n)``: every upload is read at about n bytes a second.
    - ``hold_after(n)``: the next upload to pass n bytes stops being read there (the client
      blocks, its bytes sit in the socket) until ``release()``; ``held`` is set meanwhile.
    - ``drop_after(n)``: the next upload to pass n bytes loses its connections, control and
      data, without a reply, as when a server crashes; what arrived stays on disk under the
      name the client gave, as a crashed server leaves it. ``dropped`` is set then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_per_second: int | None = None
        # The byte count at which each one-shot rule takes the upload that reaches it.
        self._thresholds: dict[Rule, int] = {}
        self.held = threading.Event()
        self.released = threading.Event()
        self.dropped = threading.Event()

    def limit_rate(self, bytes_per_second: int | None) -> None:
        self.bytes_per_second = bytes_per_second

    def hold_after(self, size: int) -> None:
        with self._lock:
            self._thresholds["hold"] = size
            self.held.clear()
            self.released.clear()

    def wait_until_held(self, timeout: float = 30) -> bool:
        return self.held.wait(timeout)

    def release(self) -> None:
        self.released.set()

    def drop_after(self, size: int) -> None:
        with self._lock:
            self._thresholds["drop"] = size
            self.dropped.clear()

    def reset(self) -> None:
        """Back to a plain server; an upload on hold goes on."""
        self.limit_rate(None)
        with self._lock:
            self._thresholds.clear()
        self.release()

    def claims(self, rule: Rule, received: int) -> bool:
        """Whether ``rule`` takes the upload that has received ``received`` bytes: the first
        to reach its threshold, and no other after it."""
        with self._lock:
            threshold = self._thresholds.get(rule)
            if threshold is None or received < threshold:
                return False
            del self._thresholds[rule]
            return True


class _ControlledUpload(DTPHandler):  # type: ignore[misc]  # pyftpdlib is untyped
    """A data channel that applies the server's UploadControl after each chunk it reads.

    A paused channel leaves the IO loop (nothing is read, the client's TCP window fills) and
    comes back on a timer; it is closed with its control channel when the server stops.
    Mixed in before TLS_DTPHandler, it controls encrypted uploads alike.
    """

    upload_control: UploadControl
    ac_in_buffer_size: int  # asynchat's read size, an int once DTPHandler has set it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_byte_at: float | None = None
        rate = self.upload_control.bytes_per_second
        if rate:
            # Small reads, so a slow upload trickles instead of arriving in bursts.
            self.ac_in_buffer_size = max(512, min(self.ac_in_buffer_size, rate // 8))

    def handle_read_event(self) -> None:
        super().handle_read_event()
        if self.receive and not self._closed and self.tot_bytes_received:
            self._apply_upload_control()

    def _apply_upload_control(self) -> None:
        control = self.upload_control
        received = self.tot_bytes_received
        if control.claims("drop", received):
            control.dropped.set()
            self.cmd_channel.close()  # closes this data channel too
            return
        if control.claims("hold", received):
            control.held.set()
            self._pause(HOLD_POLL_SECONDS, self._resume_when_released)
            return
        rate = control.bytes_per_second
        if rate:
            now = time.monotonic()
            self._first_byte_at = self._first_byte_at or now
            ahead = received / rate - (now - self._first_byte_at)
            if ahead > 0:
                self._pause(ahead, self._resume)

    def _pause(self, seconds: float, then: Callable[[], None]) -> None:
        self.del_channel()
        self.call_later(seconds, then)

    def _resume(self) -> None:
        if not self._closed:
            self.add_channel(events=self.ioloop.READ)

    def _resume_when_released(self) -> None:
        if self.upload_control.released.is_set():
            self._resume()
        elif not self._closed:
            self.call_later(HOLD_POLL_SECONDS, self._resume_when_released)


class _NoOverwriteFS(AbstractedFS):  # type: ignore[misc]  # pyftpdlib is untyped
    """Refuses to rename onto an existing file (550), as some servers do (IIS, some NAS)."""

    def rename(self, src: str, dst: str) -> None:
        if os.path.lexists(dst):
            raise OSError(errno.EEXIST, "the target exists")
        super().rename(src, dst)


class FtpServer(FileServer):
    """pyftpdlib on 127.0.0.1. With ``tls``, explicit FTPS: the server offers AUTH TLS and,
    with ``tls_required`` (the default), refuses to log in or move data without it.

    ``permissions`` are pyftpdlib's letters for the user (``elr``: read only);
    ``rename_replaces=False`` makes RNTO refuse an existing target, as some servers do.
    """

    def __init__(
        self,
        *,
        root: Path,
        username: str = "deliver",
        password: str | None = None,
        tls: TlsFiles | None = None,
        tls_required: bool = True,
        permissions: str = ALL_PERMISSIONS,
        rename_replaces: bool = True,
    ) -> None:
        super().__init__(root=root)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.tls = tls
        self.tls_required = tls_required
        self.permissions = permissions
        self.rename_replaces = rename_replaces
        self.uploads = UploadControl()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        listener = listening_socket(self.port)
        self.port = listener.getsockname()[1]
        server = FTPServer(listener, self._handler_class(), ioloop=IOLoop.factory())
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(server, self._stopping), name=f"ftp-server-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout=10)
        self._thread = None

    @staticmethod
    def _serve(server: FTPServer, stopping: threading.Event) -> None:
        # The IO loop is not thread-safe: it runs, and is closed, in this thread alone. Its
        # own loop() would also set up logging for the whole process the first time.
        ioloop = server.ioloop
        try:
            while not stopping.is_set():
                ioloop.poll(0.05)
                ioloop.sched.poll()
        finally:
            server.close_all()

    def _handler_class(self) -> type[FTPHandler]:
        """Handler classes of this server's own: pyftpdlib configures them by class
        attributes, which must not leak into another server."""
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.username, self.password, str(self.root), perm=self.permissions)
        control = {"upload_control": self.uploads}
        # A wrong password is answered at once, not after pyftpdlib's default 3 s.
        options: dict[str, Any] = {"authorizer": authorizer, "auth_failed_timeout": 0.01}
        if not self.rename_replaces:
            options["abstracted_fs"] = _NoOverwriteFS
        if self.tls is None:
            data_handler = type("ControlledDTPHandler", (_ControlledUpload,), control)
            return type("TestFTPHandler", (FTPHandler,), {**options, "dtp_handler": data_handler})
        tls_data_handler = type("ControlledTLSDTPHandler", (_ControlledUpload, TLS_DTPHandler), control)
        return type(
            "TestTLSFTPHandler",
            (TLS_FTPHandler,),
            {
                **options,
                "dtp_handler": tls_data_handler,
                "certfile": str(self.tls.cert_file),
                "keyfile": str(self.tls.key_file),
                "ssl_context": None,
                "tls_control_required": self.tls_required,
                "tls_data_required": self.tls_required,
            },
        )
