"""A real HTTP server on 127.0.0.1 that answers with recorded exchanges, in order.

A recording is a JSON file in ``recordings/``::

    {"description": "...",
     "exchanges": [{"request": {"method": ..., "path": ..., "headers": {...}, "json" | "body_text": ...},
                    "response": {"status": ..., "headers": {...}, "json" | "body_text" | "body_base64": ...},
                    "repeat": false}]}

A recorded request's ``json`` may list only some top-level fields; those are compared.
``{any}`` in a recorded path stands for a name the client makes up (a random test file's),
any characters but ``/``, ``?`` and ``&``.
``{server}`` in a response header or body stands for this server's base URL (the recorded
host is not reachable from a test). An exchange with ``"repeat": true`` answers every
further request. The server answers 599 when a request does not match the recording.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parent / "recordings"


def load_recording(name: str, folder: Path = RECORDINGS) -> dict[str, Any]:
    """The recording ``<folder>/<name>.json`` (by default this app's ``recordings/``)."""
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class ReceivedRequest:
    """What a client actually sent."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ReplayServer:
    """Serves the exchanges of one recording; ``received`` keeps every request."""

    url: str = ""
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    received: list[ReceivedRequest] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering, to provoke client timeouts
    _position: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def play(self, name: str, folder: Path = RECORDINGS) -> dict[str, Any]:
        """Answer with the exchanges of recording ``name`` from now on; returns the recording."""
        recording = load_recording(name, folder)
        self.exchanges = recording["exchanges"]
        self._position = 0
        return recording

    def next_exchange(self, request: ReceivedRequest) -> dict[str, Any] | None:
        with self._lock:
            self.received.append(request)
            if self._position >= len(self.exchanges):
                return None
            exchange = self.exchanges[self._position]
            if not exchange.get("repeat"):
                self._position += 1
            return exchange


def assert_matches_recording(received: ReceivedRequest, recorded: dict[str, Any]) -> None:
    """Method, path with query, the recorded headers and body fields were sent as recorded."""
    assert received.method == recorded["method"]
    assert _path_matches(received.path, recorded["path"]), (received.path, recorded["path"])
    for name, value in recorded.get("headers", {}).items():
        assert received.headers.get(name.lower()) == value, name
    if "json" in recorded:
        # A recording may keep only the top-level fields that matter to its test.
        body = received.json()
        for name, value in recorded["json"].items():
            assert body.get(name) == value, name
    if "body_text" in recorded:
        assert received.body == recorded["body_text"].encode()


def _is_recorded(request: ReceivedRequest, exchange: dict[str, Any]) -> bool:
    recorded = exchange["request"]
    return request.method == recorded["method"] and _path_matches(request.path, recorded["path"])


def _path_matches(path: str, recorded: str) -> bool:
    if "{any}" not in recorded:
        return path == recorded
    pattern = "[^/?&]+".join(re.escape(part) for part in recorded.split("{any}"))
    return re.fullmatch(pattern, path) is not None


def _rendered(response: dict[str, Any], url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a recorded response, with ``{server}`` filled in."""
    headers = {name: value.replace("{server}", url) for name, value in response["headers"].items()}
    if "body_base64" in response:  # a file's bytes (a PDF downloaded), as they were
        return response["status"], headers, base64.b64decode(response["body_base64"])
    body = json.dumps(response["json"]) if "json" in response else response.get("body_text", "")
    return response["status"], headers, body.replace("{server}", url).encode()


def _handler_for(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._replay()

        def do_POST(self) -> None:
            self._replay()

        def do_PATCH(self) -> None:
            self._replay()

        def do_PUT(self) -> None:
            self._replay()

        def do_DELETE(self) -> None:
            self._replay()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _replay(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = ReceivedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length),
            )
            exchange = server.next_exchange(request)
            if server.delay:
                time.sleep(server.delay)  # a slow server is what such a test is about
            if exchange is None or not _is_recorded(request, exchange):
                self._answer(599, {"Content-Type": "text/plain"}, b"request does not match the recording")
                return
            self._answer(*_rendered(exchange["response"], server.url))

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing left to tell it

    return Handler


@contextmanager
def running_replay_server() -> Iterator[ReplayServer]:
    """A ReplayServer on a free port of 127.0.0.1 for the duration of the ``with`` block."""
    replay = ReplayServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(replay))
    host, port = httpd.server_address[:2]
    replay.url = f"http://{host!s}:{port}"
    # A short poll interval keeps shutdown (and so every test) quick.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
