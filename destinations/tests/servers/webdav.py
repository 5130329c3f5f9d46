"""A WebDAV server (wsgidav under cheroot) with basic auth, in threads of the test.

The share is mounted at ``/`` for plain WebDAV, or, for Nextcloud, where Nextcloud serves
a user's files: ``/remote.php/dav/files/<user>/``. wsgidav writes a PUT straight into the
final name, so an interrupted upload leaves a partial file there, as many servers do; a
client that wants none uploads under a temporary name and MOVEs it.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from wsgidav.wsgidav_app import WsgiDAVApp  # type: ignore[import-untyped]  # ships no type information

from .base import FileServer, free_port
from .tls import TlsFiles

NEXTCLOUD_FILES_PATH = "/remote.php/dav/files/{username}"
# A stopped server drops uploads in flight after this long instead of waiting for them.
SHUTDOWN_SECONDS = 1


class WebDavServer(FileServer):
    """wsgidav on 127.0.0.1; ``url`` is the share's address (with a trailing slash), over
    HTTPS with a certificate of ``tls``'s CA when given."""

    def __init__(
        self,
        *,
        root: Path,
        username: str = "deliver",
        password: str | None = None,
        nextcloud: bool = False,
        tls: TlsFiles | None = None,
    ) -> None:
        super().__init__(root=root)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.mount_path = NEXTCLOUD_FILES_PATH.format(username=username) if nextcloud else ""
        self.tls = tls
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """The server's address, as an operator enters it for Nextcloud (no share path)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.mount_path}/"

    def start(self) -> None:
        # A port picked free rather than port 0: cheroot sets SO_REUSEADDR only on a port it
        # is given, and without it a restart cannot bind while the connections the stop cut
        # wait out TIME_WAIT. Taken meanwhile: another one, on the first start only (a
        # restart keeps its port, as clients expect).
        tries = 1 if self.port else 5
        for attempt in range(1, tries + 1):
            server = self._server_on(self.port or free_port())
            try:
                server.prepare()  # binds
                break
            except OSError:
                if attempt == tries:
                    raise
        self.port = server.bind_addr[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=f"webdav-server-{self.port}", daemon=True)
        self._thread.start()

    def _server_on(self, port: int) -> wsgi.Server:
        server = wsgi.Server(
            (self.host, port),
            self._application(),
            numthreads=8,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        # cheroot looks for stop() this often (half a second by default, at the end of each test).
        server.expiration_interval = 0.05
        if self.tls is not None:
            server.ssl_adapter = BuiltinSSLAdapter(str(self.tls.cert_file), str(self.tls.key_file))
        return server

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def _application(self) -> WsgiDAVApp:
        share = self.mount_path or "/"
        return WsgiDAVApp(
            {
                "provider_mapping": {share: str(self.root)},
                "simple_dc": {"user_mapping": {share: {self.username: {"password": self.password}}}},
                "http_authenticator": {
                    "domain_controller": None,  # wsgidav's simple one, from simple_dc
                    "accept_basic": True,
                    "accept_digest": False,
                    "default_to_digest": False,
                },
                "dir_browser": {"enable": False},
                "lock_storage": True,
                "property_manager": True,
                # Quiet, and leave the process's logging alone.
                "verbose": 1,
                "logging": {"enable": False},
            }
        )
