"""FTP and FTPS (explicit TLS: AUTH TLS on the usual port), with the standard library.

TLS by default: the control connection is secured before the password is sent, the
server's certificate checked against the system's CAs (and ``FTP_CA_BUNDLE``'s, for a
private CA), and every data connection is protected (PROT P). Plain FTP only where TLS is
turned off and plain text allowed, both in so many words (``use_tls`` off,
``allow_plaintext`` on). With TLS on there is no fallback: a server that refuses AUTH TLS,
or a certificate that fails the check, ends the connection before the password is sent
(someone in between could refuse TLS on the server's behalf just to read it).

Passive mode (ftplib connects data connections to the control connection's address,
whatever address the server's PASV answer names). Files stream from disk a block at a
time, so a large file costs a bounded amount of memory.

No half file under the final name: the file is stored under a temporary name in the same
folder and renamed (RNFR/RNTO). A server that refuses to rename over an existing file has
that file deleted first (a moment without a file at that name, never a half one). The
temporary name (``.<name>.<16 hex digits of the SHA-256>.part``) depends only on the name
and the content, so what a killed run left is overwritten and renamed by the next run of
the same content: nothing stays behind.

FTP tells a file's size (SIZE) but not its hash (the HASH command is a draft that few
servers speak): ``stat`` gives the size, and ``content_sha256`` reads the file back
(RETR), which the delivery service does only when the size matches the file it delivers.

Errors are decided on the reply's code and the exception's class, never on its text.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import io
import re
import ssl
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self

from django.conf import settings as django_settings

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    EnvironmentDestination,
    Kind,
    ListedEntry,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.fields import flag_clean, server_clean, text_clean
from destinations.models import DestinationKind
from docuelevate.errors import InvalidInput

DEFAULT_PORT = 21
# Bytes read from disk and sent per write on the data connection.
BLOCK_SIZE = 256 * 1024
# Seconds any one exchange may take: a server silent for longer is taken for gone.
TIMEOUT = 60.0
# Replies (RFC 959) that mean the account cannot sign in, or the server will not have it
# write where it was asked to: the destination's settings need a person.
_LOGIN_REFUSED = frozenset({530, 532})
_NOT_ALLOWED = 550
_NO_ROOM = 552  # exceeded storage allocation: may pass once space is freed


class _SecuredFtp(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session: vsftpd
    (``require_ssl_reuse``, its default) and others refuse data connections that do not,
    as a guard against a stranger taking over the data port."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[Any, int | None]:
        # The plain data connection first, secured right below.
        connection, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321
        if self._prot_p:  # type: ignore[attr-defined]  # ftplib's own flag, set by prot_p()
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            connection = self.context.wrap_socket(connection, server_hostname=self.host, session=session)
        return connection, size


class FtpKind(Kind):
    """Delivers to one account on an FTP server, below the destination's folder."""

    name = DestinationKind.FTP
    setting_names = ("host", "port", "username", "folder", "folder_from_root", "use_tls", "allow_plaintext")
    secret_names = ("password",)
    flag_settings = {"use_tls": True, "allow_plaintext": False, "folder_from_root": False}
    help_texts = {
        "host": "The server's host name alone, without ftp://, e.g. ftp.example.com.",
        "port": "Empty: 21, the usual port; e.g. 2121.",
        "username": "The account to sign in as, e.g. scanner.",
        "folder": "Inside the login folder, e.g. scans; with a leading / counted from the server's root, "
        "e.g. /srv/scans. Empty: the login folder.",
        "folder_from_root": "Count the folder from the server's root rather than the login folder "
        "(a folder starting with / does the same).",
        "use_tls": "Encrypt with explicit TLS (FTPS, AUTH TLS), the server's certificate checked.",
        "allow_plaintext": "Allow plain, unencrypted FTP: needed when TLS is off; "
        "only on a network you trust.",
        "password": "The account's password, e.g. s3cret-Passw0rd.",
    }

    def __init__(
        self,
        *,
        host: str,
        username: str,
        password: str = "",
        port: int = DEFAULT_PORT,
        use_tls: bool = True,
        allow_plaintext: bool = False,
        folder_from_root: bool = False,
        ca_bundle: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.use_tls = use_tls
        self.allow_plaintext = allow_plaintext
        self.folder_from_root = folder_from_root
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        # Whether the connection is encrypted, once there is one.
        self.secured: bool | None = None
        self._client: ftplib.FTP | None = None
        self._broken = False  # the connection failed mid-exchange: close it, say nothing
        self._folders_made: set[str] = set()

    def __repr__(self) -> str:
        return f"<FtpKind {self.username}@{self.host}:{self.port} tls={self.use_tls}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, port = server_clean(
            settings,
            secrets,
            setting_names=cls.setting_names,
            secret_names=cls.secret_names,
            default_port=DEFAULT_PORT,
            what="FTP",
            system_wide=system_wide,
        )
        folder = str(settings.get("folder") or "").strip()
        use_tls = flag_clean(settings.get("use_tls"), default=True, name="use_tls")
        allow_plaintext = flag_clean(settings.get("allow_plaintext"), default=False, name="allow_plaintext")
        if not use_tls and not allow_plaintext:
            raise InvalidInput(
                "Plain FTP sends the password and every document readable to anyone on the way. "
                "Use TLS, or allow plain text explicitly (allow_plaintext, FTP_ALLOW_PLAINTEXT=true) "
                "on a network you trust."
            )
        password = str(secrets.get("password") or "")
        if "\r" in password or "\n" in password:
            raise InvalidInput("The FTP password contains a line break, which FTP cannot send.")
        cleaned = {
            "host": host,
            "port": port,
            "username": text_clean(settings.get("username"), name="username", required=True),
            "folder": folder,
            # "/scans" counts from the server's root, "scans" from the login folder.
            "folder_from_root": folder.startswith("/")
            or flag_clean(settings.get("folder_from_root"), default=False, name="folder_from_root"),
            "use_tls": use_tls,
            "allow_plaintext": allow_plaintext,
        }
        return cleaned, {"password": password} if password else {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            host=settings["host"],
            port=int(settings.get("port") or DEFAULT_PORT),
            username=settings["username"],
            password=secrets.get("password", ""),
            use_tls=bool(settings.get("use_tls", True)),
            allow_plaintext=bool(settings.get("allow_plaintext", False)),
            folder_from_root=bool(settings.get("folder_from_root", False)),
            ca_bundle=django_settings.FTP_CA_BUNDLE,
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.FTP_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``FTP_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``FTP_INGEST_*``) signs in with the same account."""
        password = django_settings.FTP_PASSWORD
        return EnvironmentDestination(
            name="FTP (environment)",
            settings={
                "host": django_settings.FTP_HOST,
                "port": django_settings.FTP_PORT,
                "username": django_settings.FTP_USERNAME,
                "folder": django_settings.FTP_FOLDER,
                "use_tls": django_settings.FTP_USE_TLS,
                "allow_plaintext": django_settings.FTP_ALLOW_PLAINTEXT,
            },
            secrets={"password": password} if password else {},
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        with self._speaking(f"look at {path}") as client:
            try:
                size = client.size(self._remote(path))
            except ftplib.error_perm as exc:
                if _code(exc) == _NOT_ALLOWED:  # no such file
                    return None
                raise
        # A server that answers SIZE without a size: something is there, of unknown size.
        return RemoteFile(
            path=path, size=-1 if size is None else size, sha256=None, remote_id=self._url(path)
        )

    def content_sha256(self, path: str) -> str | None:
        digest = hashlib.sha256()
        with self._speaking(f"read {path} back") as client:
            try:
                client.retrbinary(f"RETR {self._remote(path)}", digest.update, blocksize=BLOCK_SIZE)
            except ftplib.error_perm as exc:
                if _code(exc) == _NOT_ALLOWED:
                    return None
                raise
        return digest.hexdigest()

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        folder, _, name = path.rpartition("/")
        temporary = _joined(folder, f".{name}.{local.sha256[:16]}.part")
        with self._speaking(f"write {path}") as client:
            self._make_folders(client, folder)
            with local.path.open("rb") as handle:
                client.storbinary(f"STOR {self._remote(temporary)}", handle, blocksize=BLOCK_SIZE)
        self._whole(temporary, local, what=path)
        self._rename(temporary, path)
        self._whole(path, local, what=path)
        return Uploaded(path=path, remote_id=self._url(path))

    def remove(self, path: str) -> None:
        with self._speaking(f"remove {path}") as client:
            try:
                client.delete(self._remote(path))
            except ftplib.error_perm as exc:
                if _code(exc) == _NOT_ALLOWED and self.stat(path) is None:
                    return  # not there: nothing to remove
                raise

    def check(self, *, folder: str) -> None:
        probe = _joined(folder, f".docuelevate-check-{uuid.uuid4().hex}")
        try:
            with self._speaking("write a test file") as client:
                self._make_folders(client, folder)
                client.storbinary(f"STOR {self._remote(probe)}", io.BytesIO(b""))
        except DeliveryTemporarilyFailed:
            raise
        except DeliveryFailed as exc:
            # Refused outright: no document could be written there either.
            raise DestinationMisconfigured(exc.message) from None
        try:
            with self._speaking("remove the test file") as client:
                client.delete(self._remote(probe))
        except DeliveryFailed:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again: delete {probe} on the FTP "
                f"server {self.host} by hand, and allow the account to delete files."
            ) from None

    # --- Reading a folder (for sources.kinds.remote) -------------------------------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The files and folders directly in ``folder`` (MLSD: type, size and modification
        time in UTC, in one listing the server formats the same way everywhere)."""
        entries: list[ListedEntry] = []
        with self._speaking(f"list {folder or 'the login folder'}") as client:
            for name, facts in client.mlsd(self._remote(folder), facts=["type", "size", "modify"]):
                kind = facts.get("type", "").lower()
                if kind not in {"file", "dir"}:
                    continue  # cdir, pdir (the folder itself, its parent), links, devices
                entries.append(
                    ListedEntry(
                        path=_joined(folder, name),
                        is_folder=kind == "dir",
                        size=int(facts["size"]) if facts.get("size", "").isdigit() else -1,
                        modified=_mlsd_time(facts.get("modify", "")),
                    )
                )
            # MLSD is read as text (TYPE A); RETR and SIZE must see the bytes as they are.
            client.voidcmd("TYPE I")
        return entries

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The file at ``path``, a block at a time as it arrives (RETR)."""
        try:
            with self._speaking(f"read {path}") as client:
                connection = client.transfercmd(f"RETR {self._remote(path)}")
                with connection:
                    while block := connection.recv(BLOCK_SIZE):
                        yield block
                    if isinstance(connection, ssl.SSLSocket):
                        connection.unwrap()
                client.voidresp()
        except GeneratorExit:
            # Left half read: the server's answer to RETR is still due, so this connection
            # is out of step; the next exchange starts on a new one.
            self._broken = True
            self.close()
            raise

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target`` on the server (RNFR/RNTO)."""
        self._rename(source, target)

    def make_folder(self, folder: str) -> None:
        with self._speaking(f"make the folder {folder}") as client:
            self._make_folders(client, folder)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if not self._broken:
            try:
                client.quit()
                return
            except (ftplib.Error, OSError, EOFError):
                pass
        client.close()

    # --- The connection -------------------------------------------------------------------

    @contextmanager
    def _speaking(self, doing: str) -> Iterator[ftplib.FTP]:
        """The signed-in connection, with every protocol or network error of the block
        turned into the delivery error it means."""
        client = self._connection()
        try:
            yield client
        except (ftplib.Error, OSError, EOFError) as exc:
            if not isinstance(exc, ftplib.error_perm | ftplib.error_temp):
                self._broken = True  # the exchange broke off mid-way: no QUIT on it
            raise self._failure(exc, doing=doing) from None

    def _connection(self) -> ftplib.FTP:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> ftplib.FTP:
        client: ftplib.FTP
        if self.use_tls:
            client = _SecuredFtp(context=self._tls_context(), timeout=self.timeout, encoding="utf-8")
        elif self.allow_plaintext:
            # Plain FTP, as the destination explicitly allows.
            client = ftplib.FTP(timeout=self.timeout, encoding="utf-8")  # noqa: S321
        else:
            raise DestinationMisconfigured("Plain FTP is not allowed for this destination; turn TLS on.")
        try:
            try:
                client.connect(self.host, self.port)
                self.secured = isinstance(client, ftplib.FTP_TLS) and self._secure(client)
            except (ftplib.Error, OSError, EOFError) as exc:
                raise self._failure(exc, doing="connect") from None
            try:
                if isinstance(client, ftplib.FTP_TLS):
                    client.login(self.username, self._password, secure=self.secured)
                else:
                    client.login(self.username, self._password)
            except ftplib.error_perm as exc:
                raise DestinationMisconfigured(
                    f"The FTP server at {self.host}:{self.port} refused to sign in {self.username} "
                    f"({_code(exc)}); check the user name and the password"
                    + ("." if self.secured else ", and whether the server requires TLS.")
                ) from None
            except (ftplib.Error, OSError, EOFError) as exc:
                raise self._failure(exc, doing=f"sign in as {self.username}") from None
            try:
                if isinstance(client, ftplib.FTP_TLS) and self.secured:
                    client.prot_p()  # the data connections encrypted too
                client.voidcmd("TYPE I")  # bytes as they are; SIZE needs it on many servers
            except (ftplib.Error, OSError, EOFError) as exc:
                raise self._failure(exc, doing="set up the transfers") from None
        except DeliveryFailed:
            client.close()
            raise
        return client

    def _secure(self, client: ftplib.FTP_TLS) -> bool:
        """AUTH TLS: True once the control connection is encrypted; DestinationMisconfigured
        for a server that refuses TLS or shows a certificate that fails the check."""
        where = f"{self.host}:{self.port}"
        try:
            client.auth()
        except ftplib.error_perm as exc:
            raise DestinationMisconfigured(
                f"The FTP server at {where} does not offer TLS (AUTH TLS refused with {_code(exc)}); "
                "nothing was sent. Enable TLS on the server, or, on a network you trust, turn TLS off "
                "for this destination and allow plain text (FTP_USE_TLS=false, FTP_ALLOW_PLAINTEXT=true)."
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DestinationMisconfigured(
                f"The FTP server at {where} showed a certificate this server does not trust "
                f"({exc.verify_message}); nothing was sent. Give the server a certificate for "
                f"{self.host} from a public CA, or name its CA in FTP_CA_BUNDLE."
            ) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            raise  # the connection went during the handshake: temporary, as any lost connection
        except ssl.SSLError as exc:
            raise DestinationMisconfigured(
                f"TLS with the FTP server at {where} failed ({exc.reason or exc.__class__.__name__}); "
                "it may speak only outdated TLS versions."
            ) from None
        return True

    def _tls_context(self) -> ssl.SSLContext:
        """Certificates checked against the system's CAs, and ``ca_bundle``'s if given."""
        context = ssl.create_default_context()
        if self.ca_bundle:
            context.load_verify_locations(cafile=self.ca_bundle)
        return context

    def _failure(self, exc: BaseException, *, doing: str) -> DeliveryFailed:
        return ftp_failure(exc, server=f"{self.host}:{self.port}", doing=doing, timeout=self.timeout)

    # --- Files ----------------------------------------------------------------------------

    def _remote(self, path: str) -> str:
        """``path`` as the server takes it: from its root, or from the login folder."""
        return f"/{path}" if self.folder_from_root else path

    def _url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ftp://{host}:{self.port}/{self._remote(path)}"

    def _make_folders(self, client: ftplib.FTP, folder: str) -> None:
        """Create ``folder`` and its parents where missing (each asked once per connection)."""
        parts = [part for part in folder.split("/") if part]
        for depth in range(1, len(parts) + 1):
            current = self._remote("/".join(parts[:depth]))
            if current in self._folders_made:
                continue
            # A refusal means there already, or not allowed, which the write that follows says.
            with contextlib.suppress(ftplib.error_perm):
                client.mkd(current)
            self._folders_made.add(current)

    def _rename(self, temporary: str, path: str) -> None:
        """RNFR/RNTO; where the server refuses to replace an existing file, delete it first.
        Only once RNFR has found the temporary file: a run that lost its file must not
        delete the one a twin run put in place."""
        source, target = self._remote(temporary), self._remote(path)
        with self._speaking(f"rename the uploaded file to {path}") as client:
            client.sendcmd(f"RNFR {source}")
            try:
                client.voidcmd(f"RNTO {target}")
                return
            except ftplib.error_perm:
                if self.stat(path) is None:
                    raise
            client.delete(target)
            client.sendcmd(f"RNFR {source}")
            client.voidcmd(f"RNTO {target}")

    def _whole(self, path: str, local: LocalFile, *, what: str) -> None:
        there = self.stat(path)
        if there is None or there.size != local.size:
            arrived = "nothing" if there is None else f"{there.size} of {local.size} bytes"
            raise DeliveryTemporarilyFailed(
                f"{what} did not arrive whole on the FTP server at {self.host}:{self.port} ({arrived})."
            )


def ftp_failure(exc: BaseException, *, server: str, doing: str, timeout: float) -> DeliveryFailed:
    """The delivery error an ftplib or network error means, decided on the reply's code
    (4xx may pass, 5xx will not) and the exception's class; ``doing`` ends the reason."""
    where = f"The FTP server at {server}"
    if isinstance(exc, ftplib.error_temp):
        return DeliveryTemporarilyFailed(f"{where} could not {doing} for now ({_code(exc)}).")
    if isinstance(exc, ftplib.error_perm):
        code = _code(exc)
        if code in _LOGIN_REFUSED:
            return DestinationMisconfigured(
                f"{where} wants a sign-in to {doing} ({code}); check the account."
            )
        if code == _NOT_ALLOWED:
            return DestinationMisconfigured(
                f"{where} refused to {doing} ({code}): the account may not write there, or the folder "
                "is not one it can reach."
            )
        if code == _NO_ROOM:
            return DeliveryTemporarilyFailed(f"{where} has no room to {doing} ({code}).")
        return DeliveryFailed(f"{where} refused to {doing} ({code}).")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DestinationMisconfigured(
            f"{where} showed a certificate this server does not trust ({exc.verify_message})."
        )
    if isinstance(exc, ftplib.error_reply | ftplib.error_proto):
        return DeliveryTemporarilyFailed(f"{where} gave an unexpected answer when asked to {doing}.")
    if isinstance(exc, TimeoutError):
        return DeliveryTemporarilyFailed(f"{where} did not answer within {timeout:.0f} s ({doing}).")
    return DeliveryTemporarilyFailed(
        f"{where} could not be reached or dropped the connection ({doing}; {exc.__class__.__name__})."
    )


def _code(exc: ftplib.Error) -> int:
    """The reply's three-digit code (ftplib keeps the whole reply line as the argument)."""
    found = re.match(r"\d{3}", str(exc.args[0]) if exc.args else "")
    return int(found[0]) if found else 0


def _mlsd_time(text: str) -> float | None:
    """MLSD's ``modify`` fact (YYYYMMDDHHMMSS[.sss], UTC) as POSIX seconds."""
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name
