"""A token introspection endpoint (RFC 7662) on 127.0.0.1, for Dovecot's oauth2 passdb.

Gmail and Microsoft 365 check the bearer token of an XOAUTH2 sign-in against their own
token service; the test Dovecot asks this endpoint instead, so a test decides which access
tokens are good and for which account (``grant``). Every token asked about is kept in
``asked``, to show what the IMAP server was really given.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class IntrospectionEndpoint:
    url: str = ""
    # access token -> the account it signs in as
    granted: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(self, access_token: str, username: str) -> None:
        """Let ``access_token`` sign in as ``username`` from now on."""
        with self._lock:
            self.granted[access_token] = username

    def answer(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.asked.append(token)
            username = self.granted.get(token)
        # An unknown token is inactive, and says nothing else (RFC 7662 section 2.2).
        return {"active": True, "username": username} if username else {"active": False}


def _handler_for(endpoint: IntrospectionEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            body = json.dumps(endpoint.answer((form.get("token") or [""])[0])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_introspection_endpoint() -> Iterator[IntrospectionEndpoint]:
    """An IntrospectionEndpoint on a free port of 127.0.0.1 for the ``with`` block."""
    endpoint = IntrospectionEndpoint()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(endpoint))
    host, port = httpd.server_address[:2]
    endpoint.url = f"http://{host!s}:{port}/introspect"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
