"""What every test server shares: an address on 127.0.0.1, a root folder, stop and start."""

from __future__ import annotations

import abc
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"


class ServerFailedToStart(RuntimeError):
    """The server did not come up; the message ends with what it logged."""


def listening_socket(port: int = 0, *, backlog: int = 50) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (any free port for 0), reusable at once after a
    stop, so a restarted server gets its old port back while clients still hold old ones."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    return listener


def free_port() -> int:
    """A port free right now, for a program that binds it itself (a small race, retried by
    the caller when the program finds it taken)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(
    port: int, *, timeout: float = 10, greeting: bytes | None = None, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Whether a server accepts connections on ``port`` (and, if given, greets with
    ``greeting``) within ``timeout`` seconds, giving up as soon as ``alive()`` says it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((HOST, port), timeout=1) as connection:
                if greeting is None or connection.recv(len(greeting)) == greeting:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class LocalServer(abc.ABC):
    """A server on 127.0.0.1; ``port`` is known once started and kept across ``stop()`` and
    ``start()``, as a server that dies and comes back keeps it."""

    host = HOST

    def __init__(self) -> None:
        self.port = 0

    @property
    @abc.abstractmethod
    def running(self) -> bool: ...

    @abc.abstractmethod
    def start(self) -> None:
        """Start listening: on a free port the first time, on the same port afterwards."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop listening and drop every open connection, as a crashed server would."""

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and undo whatever ``start()`` set up beside the server itself."""
        if self.running:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class FileServer(LocalServer):
    """A server that writes what clients upload into the folder ``root``."""

    def __init__(self, *, root: Path) -> None:
        super().__init__()
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[str]:
        """Every file under the root folder, as sorted paths relative to it: what arrived,
        and any temporary file a client left behind."""
        return sorted(
            path.relative_to(self.root).as_posix() for path in self.root.rglob("*") if path.is_file()
        )
