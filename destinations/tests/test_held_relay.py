"""The relay the SFTP tests hold uploads with: it passes bytes both ways, freezes one
connection once the test's condition holds, cuts it when released, and lets the next pass."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from destinations.tests.held_relay import HoldingRelay
from destinations.tests.servers.base import HOST, listening_socket


class EchoServer:
    """Answers every byte it gets with the same byte, and counts what reached it."""

    def __init__(self) -> None:
        self._listener = listening_socket()
        self.port: int = self._listener.getsockname()[1]
        self.received = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    def _echo(self, connection: socket.socket) -> None:
        with connection:
            while chunk := connection.recv(4096):
                self.received += chunk
                connection.sendall(chunk)

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def relay(echo: EchoServer) -> Iterator[HoldingRelay]:
    with HoldingRelay(upstream_port=echo.port) as relay:
        yield relay


def connect(relay: HoldingRelay) -> socket.socket:
    return socket.create_connection((HOST, relay.port), timeout=10)


def test_bytes_pass_both_ways_through_the_relay(relay: HoldingRelay) -> None:
    with connect(relay) as client:
        client.sendall(b"hello")
        assert client.recv(5) == b"hello"


def test_a_held_connection_passes_nothing_until_released_then_is_cut_and_the_next_passes(
    relay: HoldingRelay, echo: EchoServer
) -> None:
    armed = threading.Event()
    held = relay.hold_when(armed.is_set)
    with connect(relay) as first:
        first.sendall(b"before")
        assert first.recv(6) == b"before"  # the condition does not hold yet
        armed.set()
        first.sendall(b"after")
        assert held.started.wait(10)
        assert bytes(echo.received) == b"before"  # the held bytes never reached the server
        held.released.set()
        assert first.recv(5) == b""  # cut

    with connect(relay) as second:  # one hold only: a client's retry gets through
        second.sendall(b"again")
        assert second.recv(5) == b"again"
