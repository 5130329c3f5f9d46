"""A real S3 API (moto's server) on 127.0.0.1, in a thread of the test or in a process.

``S3Server`` serves moto's app in threads of the test, behind a small WSGI layer of our own
that counts object writes and can hold one; its buckets live in the test process, so they
outlast a restart. ``S3ServerProcess`` runs ``python -m moto.server`` as a child process,
which can be killed as a crash would and started again on the same port. moto keeps its
buckets in memory only; with ``keep_data`` the process records every request it takes
(moto's recorder) and replays the recording when it starts again, so the buckets and
objects are back as they were.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .base import LocalServer, ServerFailedToStart, free_port, wait_for_port

REQUEST_TIMEOUT = 10
# Replaying a recording resends every write the server took, bodies and all.
REPLAY_TIMEOUT = 600


class _MotoApi(LocalServer):
    """What both servers answer beside S3 itself: moto's own API."""

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def authentication(self, *, enforced: bool) -> None:
        """moto checks access keys (unknown ones are refused) only while enforced."""
        count = "0" if enforced else "inf"
        requests.post(
            f"{self.endpoint}/moto-api/reset-auth", data=count, timeout=REQUEST_TIMEOUT
        ).raise_for_status()


@dataclass
class HeldUpload:
    """An upload the server holds: ``started`` is set when it arrives; the client's request
    then waits until ``release`` and is answered 503, its body never stored, as a
    connection cut mid-transfer would leave it."""

    key_part: str
    started: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class S3Server(_MotoApi):
    """moto's S3 app served by werkzeug in threads of this process, behind a small WSGI
    layer of our own that counts object writes (``writes``) and can hold one (``hold``)."""

    def __init__(self) -> None:
        super().__init__()
        # Imported here: only a test or bench that starts this server needs moto's server.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._moto = DomainDispatcherApplication(create_backend_app)
        self.writes: list[str] = []  # "PUT /bucket/key" of every object write
        self._held: HeldUpload | None = None
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        # werkzeug's server sets SO_REUSEADDR: a restart gets the same port back at once.
        server = make_server(
            self.host, self.port, self._app, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = server.server_port
        # A short poll interval keeps shutdown (and so every test) quick.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"s3-server-{self.port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method in {"PUT", "POST"} and path.count("/") >= 2 and not path.startswith("/moto-api"):
            with self._lock:
                held = self._held if self._held and self._held.key_part in path else None
                if held is not None:
                    self._held = None
                else:
                    self.writes.append(f"{method} {path}")
            if held is not None:
                held.started.set()
                held.released.wait(60)
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"held by the test"]
        return self._moto(environ, start_response)

    def hold(self, key_part: str) -> HeldUpload:
        """Hold the next write of an object whose key contains ``key_part``."""
        held = HeldUpload(key_part=key_part)
        with self._lock:
            self._held = held
        return held


class S3ServerProcess(_MotoApi):
    """``python -m moto.server`` on 127.0.0.1 in a process of its own (its output in
    ``workdir/moto.log``); ``stop()`` kills it as a crash would, ``start()`` brings it back
    on the same port. With ``keep_data``, the buckets and objects come back too (see the
    module's docstring); without, a restarted server is empty."""

    def __init__(self, *, workdir: Path, keep_data: bool = True) -> None:
        super().__init__()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep_data = keep_data
        self.log = workdir / "moto.log"
        self.recording = workdir / "moto-recording.jsonl"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.keep_data:
            env.update(MOTO_ENABLE_RECORDING="true", MOTO_RECORDER_FILEPATH=str(self.recording))
        # A port picked free may be taken before moto binds it: then another one, on the first
        # start only (a restart keeps its port, as the destinations' settings expect).
        for _ in range(5 if not self.port else 1):
            port = self.port or free_port()
            with self.log.open("ab") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(port)],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True,
                )  # fmt: skip
            if wait_for_port(port, timeout=60, alive=functools.partial(_alive, process)):
                self.port = port
                self._process = process
                self._replay()
                return
            _kill(process)
        raise ServerFailedToStart(f"moto's server did not start:\n{self.log_tail()}")

    def _replay(self) -> None:
        """The buckets and objects of the run before, from the requests it recorded."""
        if not self.keep_data or not self.recording.exists() or not self.recording.stat().st_size:
            return
        # moto's replay sends each recorded request to the server itself, one at a time.
        requests.post(
            f"{self.endpoint}/moto-api/recorder/replay-recording", timeout=REPLAY_TIMEOUT
        ).raise_for_status()

    def stop(self) -> None:
        if self._process is not None:
            _kill(self._process)
            self._process = None

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else "(no log)"


def _alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
