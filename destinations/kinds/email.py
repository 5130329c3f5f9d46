"""E-mail: the processed PDF as an attachment, sent over SMTP to one recipient.

The connection is encrypted with STARTTLS (``starttls``, port 587 by default) or from the
first byte (``tls``, port 465), the server's certificate verified against the system's
authorities (or the bundle ``SSL_CERT_FILE`` names); ``none`` is plain SMTP, for a relay
on a trusted network. AUTH is used when a user name is set.

SMTP cannot be asked what it already has, so ``stat`` knows nothing and ``remove`` does
nothing: a sent mail cannot be taken back. What "exactly once" can mean here:

- a mail is handed over only by the server's "250" to the end of DATA; a failure before
  that (no connection, a 4xx, a refusal) sent nothing, and the retry sends it once;
- the Message-ID is derived from the delivery (the document, the destination and the
  content's hash), the same on every attempt: when the connection breaks after the body
  was sent, or the worker dies before the delivery is recorded, the next attempt sends
  the mail again under the same Message-ID, so the copies are recognisably one message
  (and many mail systems keep only one). Sending it again is the choice: a missing
  document is worse than a recognisable second copy.

The whole message is built in memory (SMTP has no streaming upload), so attachments are
capped at ``max_attachment_size`` (DEST_EMAIL_MAX_ATTACHMENT_SIZE); a larger file fails
with the reason, as most mail servers would refuse it anyway.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate, getaddresses, make_msgid, parseaddr
from pathlib import PurePosixPath
from typing import Any, Self

from django.conf import settings as django_settings

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    DocumentFacts,
    EnvironmentDestination,
    Kind,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.fields import unknown_refuse
from destinations.models import DestinationKind
from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput

logger = logging.getLogger(__name__)

TIMEOUT = 60.0  # seconds per SMTP exchange
# The same default as DEST_EMAIL_MAX_ATTACHMENT_SIZE: 15 MiB, some 20 MiB once encoded.
DEFAULT_MAX_ATTACHMENT_SIZE = 15 * 1024 * 1024
# Replies about signing in: required (530), mechanism too weak (534), refused (535),
# encryption required for it (538).
_AUTH_CODES = frozenset({530, 534, 535, 538})
# A host name, or an IPv4 or IPv6 address as it is (no brackets).
_HOST = re.compile(r"[A-Za-z0-9.:-]{1,253}")
_MAX_SUBJECT = 200
# SMTP's line endings; headers unfolded up to SMTP's own line limit, so the Message-ID (longer
# than 78 characters) stays on its line as it was recorded.
_POLICY = SMTP_POLICY.clone(max_line_length=998)


class Security(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # TLS from the first byte ("SMTPS")
    NONE = "none"


DEFAULT_PORTS = {Security.STARTTLS: 587, Security.TLS: 465, Security.NONE: 25}


class _SentUncertain(Exception):
    """The connection broke after the message's body went out: the server may have it."""


class EmailKind(Kind):
    """Sends each document to one recipient through one SMTP server."""

    name = DestinationKind.EMAIL
    setting_names = ("host", "port", "security", "username", "sender", "recipient")
    secret_names = ("password",)
    help_texts = {
        "host": "The SMTP server that sends the mail, e.g. smtp.example.com.",
        "port": "Empty: by security, 587 (starttls), 465 (tls) or 25 (none).",
        "security": "starttls (encryption after connecting, usually port 587), tls (encrypted from the "
        "start, usually 465) or none (plain text, for a relay on a trusted network). Empty: starttls.",
        "username": "For SMTP sign-in, e.g. scans@example.com; with a password. Empty: no sign-in.",
        "sender": "The From address, e.g. DocuElevate <scans@example.com>. Empty: the user name, "
        "when it is an address.",
        "recipient": "The address every document is mailed to, e.g. archive@example.com.",
        "password": "The SMTP account's password.",
    }

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        recipient: str,
        port: int | None = None,
        security: Security = Security.STARTTLS,
        username: str = "",
        password: str = "",
        max_attachment_size: int = DEFAULT_MAX_ATTACHMENT_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.host = host
        self.security = Security(security)
        self.port = port or DEFAULT_PORTS[self.security]
        self.sender = sender
        self.recipient = recipient
        self.username = username
        self._password = password
        self.max_attachment_size = max_attachment_size
        # None: the system's authorities (or SSL_CERT_FILE's bundle), checking the host name.
        self.ssl_context = ssl_context
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<EmailKind {self.host}:{self.port} {self.security} to {self.recipient}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown_refuse(settings, cls.setting_names, what="E-mail")
        unknown_refuse(secrets, cls.secret_names, what="E-mail")
        host = str(settings.get("host") or "").strip()
        if not _HOST.fullmatch(host):
            raise InvalidInput("The mail server (host) is missing or not a host name.")
        try:
            security = Security(str(settings.get("security") or Security.STARTTLS))
        except ValueError:
            raise InvalidInput(f"The security must be one of {', '.join(Security)}.") from None
        port = _checked_port(settings.get("port"), default=DEFAULT_PORTS[security])
        username = str(settings.get("username") or "").strip()
        password = str(secrets.get("password") or "")
        if _has_line_break(username):
            raise InvalidInput("The user name must not contain a line break.")
        if bool(username) != bool(password):
            raise InvalidInput("The user name and the password go together; give both, or neither.")
        if password and security == Security.NONE and not system_wide:
            raise InvalidInput("A password is only sent over an encrypted connection; use starttls or tls.")
        sender = str(settings.get("sender") or "").strip() or (username if "@" in username else "")
        recipient = str(settings.get("recipient") or "").strip()
        cleaned = {
            "host": host,
            "port": port,
            "security": str(security),
            "username": username,
            "sender": _checked_address(sender, what="The sender", named=True),
            "recipient": _checked_address(recipient, what="The recipient", named=False),
        }
        if not system_wide:
            # SSRF: the one place a user's e-mail destination names a host.
            public_host_check(host, port=port, what="The mail server")
        return cleaned, ({"password": password} if password else {})

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            host=settings["host"],
            port=int(settings["port"]),
            security=Security(settings["security"]),
            username=settings.get("username", ""),
            password=secrets.get("password", ""),
            sender=settings["sender"],
            recipient=settings["recipient"],
            max_attachment_size=django_settings.DEST_EMAIL_MAX_ATTACHMENT_SIZE,
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        if not django_settings.DEST_EMAIL_ENABLED:
            return None
        port = django_settings.DEST_EMAIL_PORT
        if not django_settings.DEST_EMAIL_USE_TLS:
            security = Security.NONE
        else:
            # DEST_EMAIL_USE_TLS means encryption; port 465 speaks it from the first byte.
            security = Security.TLS if port == DEFAULT_PORTS[Security.TLS] else Security.STARTTLS
        password = django_settings.DEST_EMAIL_PASSWORD
        return EnvironmentDestination(
            name="E-mail (environment)",
            settings={
                "host": django_settings.DEST_EMAIL_HOST,
                "port": port,
                "security": str(security),
                "username": django_settings.DEST_EMAIL_USERNAME,
                "sender": django_settings.DEST_EMAIL_SENDER,
                "recipient": django_settings.DEST_EMAIL_DEFAULT_RECIPIENT,
            },
            secrets={"password": password} if password else {},
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        """Nothing can be known of mail once sent: always None."""
        return None

    def remove(self, path: str) -> None:
        """A sent mail cannot be taken back: nothing to do."""

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        filename = PurePosixPath(path).name or "document.pdf"
        if local.size > self.max_attachment_size:
            raise DeliveryFailed(
                f"{filename} is {_megabytes(local.size)}; mail to {self.recipient} takes attachments of at "
                f"most {_megabytes(self.max_attachment_size)} (DEST_EMAIL_MAX_ATTACHMENT_SIZE)."
            )
        message = self._message(local, filename=filename)
        message_id = str(message["Message-ID"])
        raw = message.as_bytes(policy=_POLICY)
        try:
            with self._connection() as smtp:
                _send(smtp, raw, sender=_address_only(self.sender), recipient=self.recipient)
        except _SentUncertain:
            raise DeliveryTemporarilyFailed(
                f"The connection to {self.host} broke off after the mail was sent, before the server "
                f"confirmed it; the next attempt sends it again under the same Message-ID {message_id}."
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._translated(exc, doing=f"send {filename}") from None
        logger.info("mail %s sent through %s:%s", message_id, self.host, self.port)
        return Uploaded(path=path, remote_id=message_id)

    def check(self, *, folder: str) -> None:
        """Sign in and have the server accept the sender and the recipient, then reset:
        nothing is sent."""
        try:
            with self._connection() as smtp:
                code, reply = smtp.mail(_address_only(self.sender))
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, self.sender)
                code, reply = smtp.rcpt(self.recipient)
                if code not in {250, 251}:
                    raise smtplib.SMTPRecipientsRefused({self.recipient: (code, reply)})
                smtp.rset()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._translated(exc, doing="accept a test mail") from None

    # --- The message ------------------------------------------------------------------------

    def _message(self, local: LocalFile, *, filename: str) -> EmailMessage:
        about = local.facts
        domain = _address_only(self.sender).rpartition("@")[2]
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.recipient
        message["Subject"] = _subject(about, filename)
        message["Date"] = formatdate(localtime=True)
        # The same on every attempt of this delivery of this content: a repeat is recognisable.
        message_id = f"<{about.delivery_key}@{domain}>" if about.delivery_key else make_msgid(domain=domain)
        message["Message-ID"] = message_id
        message.set_content(_body(about, filename))
        maintype, _, subtype = local.content_type.partition("/")
        with local.path.open("rb") as handle:
            content = handle.read(self.max_attachment_size + 1)
        message.add_attachment(
            content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename
        )
        return message

    # --- SMTP -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[smtplib.SMTP]:
        """A connection, encrypted as configured and signed in when a user name is set."""
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == Security.TLS:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == Security.STARTTLS:
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password)
            yield smtp
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()  # the mail is the server's already; a goodbye lost changes nothing
        finally:
            smtp.close()

    def _translated(self, exc: Exception, *, doing: str) -> DeliveryFailed:
        """The delivery error for an SMTP or connection error, decided on its class and
        the server's reply code."""
        where = f"The mail server {self.host}:{self.port}"
        code = _reply_code(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DestinationMisconfigured(f"{where}: its certificate is not trusted for its name.")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DestinationMisconfigured(
                f"{where} does not offer what this destination needs (STARTTLS, AUTH); check the port "
                "and the security."
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError) or code in _AUTH_CODES:
            return DestinationMisconfigured(
                f"{where} refused the sign-in ({code}): check the user name and password, and the security."
            )
        if code and 400 <= code < 500:
            return DeliveryTemporarilyFailed(f"{where} could not {doing} for now ({code}).")
        if code and code >= 500:
            return DeliveryFailed(f"{where} refused to {doing} ({code}).")
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return DeliveryTemporarilyFailed(f"{where}: the connection broke off during TLS.")
        if isinstance(exc, ssl.SSLError):
            return DestinationMisconfigured(
                f"{where}: TLS could not be set up; check the port and the security."
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryTemporarilyFailed(f"{where} closed the connection.")
        if isinstance(exc, smtplib.SMTPException):
            return DestinationMisconfigured(f"{where} could not {doing} ({exc.__class__.__name__}).")
        # The connection's own trouble: refused, reset, timed out, a name that did not resolve.
        return DeliveryTemporarilyFailed(f"{where} could not be reached ({exc.__class__.__name__}).")


def _send(smtp: smtplib.SMTP, raw: bytes, *, sender: str, recipient: str) -> None:
    """MAIL, RCPT and DATA, step by step, to know whether a broken connection happened
    before the body went out (nothing sent) or after (the server may have it)."""
    options = [f"SIZE={len(raw)}"] if smtp.has_extn("size") else []
    code, reply = smtp.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in {250, 251}:
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPResponseException:
        raise  # DATA itself refused: nothing went out
    except OSError:
        # SMTPServerDisconnected, a reset, a timeout: the body may have gone out already.
        raise _SentUncertain from None
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def _reply_code(exc: Exception) -> int:
    if isinstance(exc, smtplib.SMTPResponseException):
        return int(exc.smtp_code)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [int(code) for code, _reply in exc.recipients.values()]
        return codes[0] if codes else 0
    return 0


def _subject(about: DocumentFacts, filename: str) -> str:
    details = ", ".join(
        part
        for part in (
            about.document_type,
            about.correspondent,
            about.created.isoformat() if about.created else "",
        )
        if part
    )
    subject = _one_line(about.title) or filename
    subject = f"{subject} ({_one_line(details)})" if details else subject
    return subject[:_MAX_SUBJECT]


def _body(about: DocumentFacts, filename: str) -> str:
    facts = [
        ("Title", about.title),
        ("Type", about.document_type),
        ("Correspondent", about.correspondent),
        ("Date", about.created.isoformat() if about.created else ""),
    ]
    lines = [f"{label}: {_one_line(value)}" for label, value in facts if _one_line(value)]
    return "\n".join(
        [f"DocuElevate delivers a processed document: {filename}", "", *lines, "", "The PDF is attached.", ""]
    )


def _one_line(text: str) -> str:
    """``text`` on one line, without control characters: document values become headers."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _has_line_break(text: str) -> bool:
    return any(character in text for character in "\r\n")


def _checked_address(text: str, *, what: str, named: bool) -> str:
    """A mail address (``named``: optionally with a display name, ``Name <a@b>``), written
    back in a normal form; InvalidInput for anything else."""
    if not text:
        raise InvalidInput(f"{what} address is missing.")
    found = getaddresses([text])
    name, address = found[0] if len(found) == 1 else ("", "")
    if _has_line_break(text) or not address or (name and not named):
        raise InvalidInput(f"{what} is not one mail address.")
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        raise InvalidInput(f"{what} is not a mail address.") from None
    if not parsed.username or ("." not in parsed.domain and parsed.domain != "localhost"):
        raise InvalidInput(f"{what} is not a mail address.")
    if not address.isascii():
        raise InvalidInput(f"{what} must be written in ASCII (a domain as xn--…).")
    return formataddr((name, address)) if name else address


def _address_only(text: str) -> str:
    return parseaddr(text)[1]


def _checked_port(value: Any, *, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("The port must be a number from 1 to 65535.") from None
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise InvalidInput("The port must be a number from 1 to 65535.")
    return port


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
