"""An SMTP server (aiosmtpd) that keeps every message it accepts, in a thread of the test.

Plain, with STARTTLS required before anything else (``starttls``), or with TLS from the
first byte (``implicit_tls``, port 465 style); with ``username`` and ``password``, AUTH
LOGIN and PLAIN are offered and required. Each message keeps its raw bytes as received,
so a test compares an attachment byte for byte, and how it came: over TLS or not, as whom.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .base import LocalServer, listening_socket
from .tls import TlsFiles


@dataclass(frozen=True)
class ReceivedMessage:
    sender: str
    recipients: list[str]
    data: bytes
    over_tls: bool
    login: str | None


class _Recorder:
    """aiosmtpd handler: accepts every message (from a logged-in client when ``login_required``)
    and keeps it."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.received = threading.Condition()
        self.login_required = False

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # Enforced here rather than by aiosmtpd's auth_required, which warns whenever AUTH
        # is allowed without TLS, as a server with no TLS at all has to.
        if self.login_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        credentials = session.auth_data if session.authenticated else None
        transport = server.transport
        message = ReceivedMessage(
            sender=envelope.mail_from or "",
            recipients=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            # Encrypted from the first byte or since STARTTLS alike.
            over_tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            login=credentials.login.decode() if isinstance(credentials, LoginPassword) else None,
        )
        with self.received:
            self.messages.append(message)
            self.received.notify_all()
        return "250 Message accepted for delivery"


class _SocketController(Controller):
    """aiosmtpd's thread controller, serving a socket bound beforehand (port 0 gives a
    free port race-free; aiosmtpd binds by itself and must be told a port)."""

    def __init__(self, handler: Any, *, listener: socket.socket, **kwargs: Any) -> None:
        super().__init__(
            handler, hostname=listener.getsockname()[0], port=listener.getsockname()[1], **kwargs
        )
        self._listener = listener

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._listener, ssl=self.ssl_context)


class SmtpServer(LocalServer):
    """aiosmtpd on 127.0.0.1; what it accepted is in ``messages``."""

    def __init__(
        self,
        *,
        tls: TlsFiles | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__()
        if (starttls or implicit_tls) and tls is None:
            raise ValueError("STARTTLS and implicit TLS need the TLS files")
        self.tls = tls
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.username = username
        self.password = password or (secrets.token_urlsafe(12) if username else None)
        self._recorder = _Recorder()
        self._recorder.login_required = username is not None
        self._controller: _SocketController | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def messages(self) -> list[ReceivedMessage]:
        return list(self._recorder.messages)

    def wait_for_messages(self, count: int, timeout: float = 10) -> list[ReceivedMessage]:
        """The messages once ``count`` have arrived (fewer if the time runs out)."""
        with self._recorder.received:
            self._recorder.received.wait_for(lambda: len(self._recorder.messages) >= count, timeout)
        return self.messages

    def start(self) -> None:
        # A loop of its own each time: aiosmtpd closes it when the server stops. The ready
        # timeout leaves room for a busy machine.
        options: dict[str, Any] = {"loop": asyncio.new_event_loop(), "ready_timeout": 30}
        if self.implicit_tls:
            assert self.tls is not None
            options["ssl_context"] = self.tls.server_context()
        if self.starttls:
            assert self.tls is not None
            options["tls_context"] = self.tls.server_context()
            options["require_starttls"] = True
        if self.username:
            options["authenticator"] = self._authenticate
            # Over a plain connection too when the server has no TLS at all; with STARTTLS,
            # only once the connection is encrypted. aiosmtpd counts only STARTTLS as TLS, so
            # with TLS from the first byte (every byte encrypted already) it must not ask.
            options["auth_require_tls"] = self.starttls
        listener = listening_socket(self.port)
        self.port = listener.getsockname()[1]
        controller = _SocketController(self._recorder, listener=listener, **options)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and auth_data.login == self.username.encode()
            and auth_data.password == self.password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
