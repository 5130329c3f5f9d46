"""A TCP relay in front of a test server that can freeze one connection mid-transfer.

For a protocol whose bytes a test cannot read on the wire (SSH encrypts everything), the
relay cannot tell an upload's first byte from a login; it decides on what the server has
already done instead: the condition a test gives (for SFTP, "a temporary file exists in
the server's root folder"). The client's bytes that arrive once the condition holds are
passed on no more, in either direction, as a network that stalls leaves them; when the
test releases the hold the connection is cut both ways.

Deciding at the client's next bytes, not at the moment the condition became true, is what
makes the hold land at the same place every time: an SFTP client writes a file's content
only after the server answered its OPEN, and the server answers only after it created the
file, so the content's first bytes always arrive after the condition holds, however
small the file and however quick the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from .servers.base import HOST, listening_socket

BUFFER_BYTES = 64 * 1024
# How often the accepting thread looks whether the relay was stopped.
ACCEPT_POLL_SECONDS = 0.05


@dataclass
class HeldConnection:
    """The connection the relay froze: ``started`` is set when it froze; once ``released``
    is set it is cut both ways. ``condition`` decides which client bytes are the first held."""

    condition: Callable[[], bool]
    started: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class _Connection:
    """A client's socket and the relay's socket to the server, shut down together."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.held: HeldConnection | None = None

    def cut(self) -> None:
        # shutdown, not close: it wakes the other direction's blocked recv, and the sockets
        # are closed once both directions have ended.
        for end in (self.client, self.server):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.client.close()
        self.server.close()


class HoldingRelay:
    """Listens on 127.0.0.1 (``host``, ``port``) and passes every connection on to
    ``upstream_port``, connecting anew each time, so the server behind it may restart."""

    host = HOST

    def __init__(self, *, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._pending_hold: HeldConnection | None = None
        self._holds: list[HeldConnection] = []
        self._connections: list[_Connection] = []

    def hold_when(self, condition: Callable[[], bool]) -> HeldConnection:
        """Freeze the first connection whose client sends bytes while ``condition()`` is
        true; later connections pass untouched (the client's retry must get through)."""
        held = HeldConnection(condition=condition)
        with self._lock:
            self._pending_hold = held
            self._holds.append(held)
        return held

    def start(self) -> None:
        listener = listening_socket()
        listener.settimeout(ACCEPT_POLL_SECONDS)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._accepting = threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        """Stop accepting, release every hold and cut every connection."""
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.join(timeout=10)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            holds, connections = list(self._holds), list(self._connections)
        for held in holds:
            held.released.set()
        for connection in connections:
            connection.cut()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)  # accepted sockets inherit the listener's timeout
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection((HOST, self.upstream_port), timeout=10)
        except OSError:
            client.close()  # the server is down: the client sees its connection refused-like
            return
        server.settimeout(None)
        connection = _Connection(client, server)
        with self._lock:
            self._connections.append(connection)
        upward = threading.Thread(
            target=self._pump, args=(connection, client, server), kwargs={"from_client": True}, daemon=True
        )
        upward.start()
        self._pump(connection, server, client, from_client=False)
        upward.join()
        connection.close()
        with self._lock:
            self._connections.remove(connection)

    def _pump(
        self, connection: _Connection, source: socket.socket, target: socket.socket, *, from_client: bool
    ) -> None:
        try:
            while True:
                chunk = source.recv(BUFFER_BYTES)
                if from_client and chunk and connection.held is None:
                    connection.held = self._take_hold()
                    if connection.held is not None:
                        connection.held.started.set()
                if connection.held is not None:
                    # Frozen: nothing passes, not even the server's end (a session killed
                    # by a restart), until the test lets the connection be cut.
                    connection.held.released.wait()
                    return
                if not chunk:
                    return
                target.sendall(chunk)
        except OSError:
            return
        finally:
            connection.cut()

    def _take_hold(self) -> HeldConnection | None:
        with self._lock:
            held = self._pending_hold
            if held is None or not held.condition():
                return None
            self._pending_hold = None
            return held
