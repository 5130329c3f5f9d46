"""SFTP (files over SSH), with paramiko.

The server proves who it is before anything is sent: its host key must be one the
destination names (``host_key``: fingerprints such as ``SHA256:…``, or public keys as in a
known_hosts line), or, when it names none, one the worker's known_hosts files list for
that host and port. An unknown or changed key ends the connection before signing in, with
the fingerprint the server showed in the reason, so a person can compare it and enter it.
Only a system-wide destination may switch the check off (``SFTP_DISABLE_HOST_KEY_VERIFICATION``;
``productioncheck`` warns about it).

Signs in with a private key (OpenSSH or PEM, with its passphrase if encrypted), a
password, or the key first and then the password.

No half file under the final name: the file is written under a temporary name in the
same folder and renamed with OpenSSH's ``posix-rename``, which replaces an existing file in
one step (servers without it: plain rename, after deleting the file there). The temporary
name depends only on the name and the content, so what a killed run left is overwritten
and renamed by the next run of the same content. Files stream from disk (``putfo``).

SFTP tells a file's size but not its hash: ``stat`` gives the size, and
``content_sha256`` reads the file back, which the delivery service does only when the
size matches the file it delivers.

Errors are decided on the exception's class and the SFTP status (``errno``), never on text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import re
import socket
import stat as stat_module
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import paramiko
from django.conf import settings as django_settings
from paramiko.ssh_exception import IncompatiblePeer, NoValidConnectionsError

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

DEFAULT_PORT = 22
TIMEOUT = 60.0
READ_BLOCK = 1024 * 1024
# Read requests (of 32 KiB each) in flight while reading a file back: about 2 MiB.
PREFETCH_REQUESTS = 64
# Where OpenSSH keeps the host keys it trusts: the account's own, then the machine's.
KNOWN_HOSTS_FILES = (Path("~/.ssh/known_hosts").expanduser(), Path("/etc/ssh/ssh_known_hosts"))
# Host key algorithms, by the key type a known_hosts line names (RSA keys sign with SHA-2).
_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}=?")
_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


@dataclass(frozen=True)
class HostKeys:
    """The host keys a destination accepts: public keys (``type base64``) and fingerprints."""

    public_keys: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> HostKeys:
        """One entry a line (or separated by commas): a ``SHA256:`` fingerprint as
        ``ssh-keygen -l`` prints it, a public key, or a known_hosts line whose host names
        are ignored (the destination's host and port are what counts)."""
        public_keys: list[str] = []
        fingerprints: list[str] = []
        for entry in re.split(r"[\n,]", text):
            words = entry.split()
            if not words or words[0].startswith("#"):
                continue
            if len(words) == 1 and _FINGERPRINT.fullmatch(words[0]):
                fingerprints.append(words[0].rstrip("="))
                continue
            if words[0].startswith("@"):
                raise InvalidInput(
                    "Host key lines with markers (@cert-authority, @revoked) are not supported."
                )
            typed = [index for index, word in enumerate(words) if word in _ALGORITHMS]
            if not typed or typed[0] + 1 >= len(words):
                raise InvalidInput(
                    "A host key must be a fingerprint (SHA256:…, from ssh-keygen -l) or a public key "
                    "(ssh-ed25519 AAAA…, as in known_hosts or ssh-keyscan's output)."
                )
            key_type, key_text = words[typed[0]], words[typed[0] + 1]
            try:
                paramiko.PKey.from_type_string(key_type, base64.b64decode(key_text, validate=True))
            except (binascii.Error, ValueError, paramiko.SSHException):
                raise InvalidInput(f"The {key_type} host key is not a valid public key.") from None
            public_keys.append(f"{key_type} {key_text}")
        return cls(public_keys=tuple(public_keys), fingerprints=tuple(fingerprints))

    @classmethod
    def known_for(cls, host: str, port: int, files: Sequence[Path]) -> HostKeys:
        """The keys the known_hosts ``files`` list for ``host`` at ``port`` (hashed names too)."""
        name = host if port == DEFAULT_PORT else f"[{host}]:{port}"
        found: list[str] = []
        for path in files:
            if not path.is_file():
                continue
            try:
                entries = paramiko.HostKeys(str(path)).lookup(name)
            except (OSError, paramiko.SSHException):
                continue
            if entries is not None:
                found += [f"{key.get_name()} {key.get_base64()}" for key in entries.values()]
        return cls(public_keys=tuple(found))

    def __bool__(self) -> bool:
        return bool(self.public_keys or self.fingerprints)

    def text(self) -> str:
        return "\n".join((*self.fingerprints, *self.public_keys))

    def accepts(self, key: paramiko.PKey) -> bool:
        return key.fingerprint.rstrip("=") in self.fingerprints or (
            f"{key.get_name()} {key.get_base64()}" in self.public_keys
        )

    def disabled_algorithms(self) -> list[str]:
        """Host key algorithms to leave out, so a server with several keys shows one of the
        types given (public keys tell their type; fingerprints do not: nothing left out)."""
        if self.fingerprints or not self.public_keys:
            return []
        wanted = {algorithm for line in self.public_keys for algorithm in _ALGORITHMS[line.split()[0]]}
        return [
            algorithm
            for algorithms in _ALGORITHMS.values()
            for algorithm in algorithms
            if algorithm not in wanted
        ]


class _HostKeyRefused(paramiko.SSHException):
    """The server's host key is not one the destination accepts."""

    def __init__(self, key: paramiko.PKey, *, expected: bool) -> None:
        super().__init__(key.fingerprint)
        self.key = key
        self.expected = expected  # whether some key was expected (changed), or none (unknown)


class _HostKeyCheck(paramiko.MissingHostKeyPolicy):
    """Accepts the server's key only if ``accepted`` holds it (or ``verify`` is off).

    paramiko asks the policy after the key exchange and before signing in, so a refused
    server never sees a password or a signature."""

    def __init__(self, accepted: HostKeys, *, verify: bool) -> None:
        self.accepted = accepted
        self.verify = verify

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.verify and not self.accepted.accepts(key):
            raise _HostKeyRefused(key, expected=bool(self.accepted))


def private_key_load(text: str, passphrase: str = "") -> paramiko.PKey:
    """The private key in ``text`` (OpenSSH or PEM: ed25519, ECDSA, RSA); InvalidInput
    when it is none, or encrypted and the passphrase is missing or wrong."""
    encrypted = False
    for key_class in _KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            encrypted = True
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    if encrypted:
        raise InvalidInput("The private key is encrypted: give its passphrase.")
    raise InvalidInput(
        "The private key cannot be read: give an ed25519, ECDSA or RSA key in OpenSSH or PEM form "
        "(the whole file), and its passphrase if it has one."
    )


class SftpKind(Kind):
    """Delivers to one account on an SSH server, below the destination's folder."""

    name = DestinationKind.SFTP
    setting_names = ("host", "port", "username", "folder", "folder_from_root", "host_key", "verify_host_key")
    secret_names = ("password", "private_key", "private_key_passphrase")
    flag_settings = {"folder_from_root": False, "verify_host_key": True}
    multiline_names = ("host_key", "private_key")
    help_texts = {
        "host": "The server's host name alone, e.g. sftp.example.com.",
        "port": "Empty: 22, the usual port; e.g. 2222.",
        "username": "The account to sign in as, e.g. scanner.",
        "folder": "Inside the login folder, e.g. scans; with a leading / counted from the server's root, "
        "e.g. /srv/scans. Empty: the login folder.",
        "folder_from_root": "Count the folder from the server's root rather than the login folder "
        "(a folder starting with / does the same).",
        "host_key": "The server's host key: its fingerprint (SHA256:…) or public key "
        "(ssh-ed25519 AAAA…); several, one a line. Empty: Test shows the fingerprint to enter. "
        "e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8.",
        "verify_host_key": "Refuse a server whose host key is not the one above "
        "(only system-wide destinations may turn this off).",
        "password": "The account's password, e.g. s3cret-Passw0rd. A private key, a password or both; "
        "the key is tried first.",
        "private_key": "The private key (ed25519, ECDSA or RSA; OpenSSH or PEM form), "
        "e.g. one starting -----BEGIN OPENSSH PRIVATE KEY-----.",
        "private_key_passphrase": "Only for an encrypted private key, e.g. my key phrase.",
    }

    def __init__(
        self,
        *,
        host: str,
        username: str,
        port: int = DEFAULT_PORT,
        password: str = "",
        private_key: str = "",
        private_key_passphrase: str = "",
        host_key: str = "",
        verify_host_key: bool = True,
        folder_from_root: bool = False,
        known_hosts_files: Sequence[Path] = KNOWN_HOSTS_FILES,
        timeout: float = TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self._private_key = private_key
        self._private_key_passphrase = private_key_passphrase
        self.host_keys = HostKeys.parse(host_key)
        self.verify_host_key = verify_host_key
        self.folder_from_root = folder_from_root
        self.known_hosts_files = tuple(known_hosts_files)
        self.timeout = timeout
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._folders_made: set[str] = set()

    def __repr__(self) -> str:
        return f"<SftpKind {self.username}@{self.host}:{self.port}>"

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
            what="SFTP",
            system_wide=system_wide,
        )
        folder = str(settings.get("folder") or "").strip()
        verify = flag_clean(settings.get("verify_host_key"), default=True, name="verify_host_key")
        if not verify and not system_wide:
            raise InvalidInput(
                "Host key verification stays on for your own destinations: enter the server's "
                "host key (the test shows the fingerprint it presents)."
            )
        host_keys = HostKeys.parse(str(settings.get("host_key") or ""))
        kept = {name: str(secrets.get(name) or "") for name in cls.secret_names}
        kept["private_key"] = kept["private_key"].strip()
        if kept["private_key"]:
            private_key_load(kept["private_key"] + "\n", kept["private_key_passphrase"])
        elif kept["private_key_passphrase"]:
            raise InvalidInput("A passphrase was given, but no private key.")
        if not kept["private_key"] and not kept["password"]:
            raise InvalidInput("An SFTP destination needs a private key or a password to sign in with.")
        cleaned = {
            "host": host,
            "port": port,
            "username": text_clean(settings.get("username"), name="username", required=True),
            "folder": folder,
            # "/scans" counts from the server's root, "scans" from the login folder.
            "folder_from_root": folder.startswith("/")
            or flag_clean(settings.get("folder_from_root"), default=False, name="folder_from_root"),
            "host_key": host_keys.text(),
            "verify_host_key": verify,
        }
        return cleaned, {name: value for name, value in kept.items() if value}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            host=settings["host"],
            port=int(settings.get("port") or DEFAULT_PORT),
            username=settings["username"],
            password=secrets.get("password", ""),
            private_key=secrets.get("private_key", ""),
            private_key_passphrase=secrets.get("private_key_passphrase", ""),
            host_key=settings.get("host_key", ""),
            verify_host_key=bool(settings.get("verify_host_key", True)),
            folder_from_root=bool(settings.get("folder_from_root", False)),
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.SFTP_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``SFTP_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``SFTP_INGEST_*``) signs in with the same account."""
        secrets = {
            "password": django_settings.SFTP_PASSWORD or "",
            "private_key": django_settings.SFTP_PRIVATE_KEY or "",
            "private_key_passphrase": django_settings.SFTP_PRIVATE_KEY_PASSPHRASE or "",
        }
        return EnvironmentDestination(
            name="SFTP (environment)",
            settings={
                "host": django_settings.SFTP_HOST,
                "port": django_settings.SFTP_PORT,
                "username": django_settings.SFTP_USERNAME,
                "folder": django_settings.SFTP_FOLDER,
                "host_key": django_settings.SFTP_HOST_KEY,
                "verify_host_key": not django_settings.SFTP_DISABLE_HOST_KEY_VERIFICATION,
            },
            secrets={name: value for name, value in secrets.items() if value},
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        with self._speaking(f"look at {path}") as sftp:
            try:
                attributes = sftp.stat(self._remote(path))
            except FileNotFoundError:
                return None
        size = attributes.st_size if attributes.st_size is not None else -1
        if attributes.st_mode is not None and not stat_module.S_ISREG(attributes.st_mode):
            size = -1  # a folder or something else by that name: not a file of any size
        return RemoteFile(path=path, size=size, sha256=None, remote_id=self._url(path))

    def content_sha256(self, path: str) -> str | None:
        digest = hashlib.sha256()
        with self._speaking(f"read {path} back") as sftp:
            try:
                with sftp.open(self._remote(path), "rb") as handle:
                    # Requests in flight instead of one round trip per block, a bounded number.
                    handle.prefetch(max_concurrent_requests=PREFETCH_REQUESTS)
                    while block := handle.read(READ_BLOCK):
                        digest.update(block)
            except FileNotFoundError:
                return None
        return digest.hexdigest()

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        folder, _, name = path.rpartition("/")
        temporary = _joined(folder, f".{name}.{local.sha256[:16]}.part")
        with self._speaking(f"write {path}") as sftp:
            self._make_folders(sftp, folder)
            with local.path.open("rb") as handle:
                # confirm: paramiko compares the size the server then reports.
                sftp.putfo(handle, self._remote(temporary), file_size=local.size, confirm=True)
            self._rename(sftp, temporary, path)
        there = self.stat(path)
        if there is None or there.size != local.size:
            raise DeliveryTemporarilyFailed(
                f"{path} was not found whole on the SFTP server after the upload."
            )
        return Uploaded(path=path, remote_id=self._url(path))

    def remove(self, path: str) -> None:
        # Nothing there is nothing to remove.
        with self._speaking(f"remove {path}") as sftp, contextlib.suppress(FileNotFoundError):
            sftp.remove(self._remote(path))

    def check(self, *, folder: str) -> None:
        probe = _joined(folder, f".docuelevate-check-{uuid.uuid4().hex}")
        try:
            with self._speaking("write a test file") as sftp:
                self._make_folders(sftp, folder)
                with sftp.open(self._remote(probe), "xb"):
                    pass
        except DeliveryTemporarilyFailed:
            raise
        except DeliveryFailed as exc:
            raise DestinationMisconfigured(exc.message) from None
        try:
            with self._speaking("remove the test file") as sftp:
                sftp.remove(self._remote(probe))
        except DeliveryFailed:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again: delete {probe} on the SFTP "
                f"server {self.host} by hand, and allow the account to delete files."
            ) from None

    # --- Reading a folder (for sources.kinds.remote) -------------------------------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The regular files and folders directly in ``folder``; links and the rest are left
        out (a link could lead anywhere on the server)."""
        entries: list[ListedEntry] = []
        with self._speaking(f"list {folder or 'the login folder'}") as sftp:
            for attributes in sftp.listdir_attr(self._remote(folder) or "."):
                mode = attributes.st_mode or 0
                if not (stat_module.S_ISREG(mode) or stat_module.S_ISDIR(mode)):
                    continue
                entries.append(
                    ListedEntry(
                        path=_joined(folder, attributes.filename),
                        is_folder=stat_module.S_ISDIR(mode),
                        size=attributes.st_size if attributes.st_size is not None else -1,
                        modified=float(attributes.st_mtime) if attributes.st_mtime is not None else None,
                    )
                )
        return entries

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The file at ``path``, a block at a time, a bounded number of reads in flight."""
        with self._speaking(f"read {path}") as sftp, sftp.open(self._remote(path), "rb") as handle:
            handle.prefetch(max_concurrent_requests=PREFETCH_REQUESTS)
            while block := handle.read(READ_BLOCK):
                yield block

    def rename(self, source: str, target: str) -> None:
        with self._speaking(f"move {source} to {target}") as sftp:
            self._rename(sftp, source, target)

    def make_folder(self, folder: str) -> None:
        with self._speaking(f"make the folder {folder}") as sftp:
            self._make_folders(sftp, folder)

    def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        ssh, self._ssh = self._ssh, None
        if sftp is not None:
            sftp.close()
        if ssh is not None:
            ssh.close()

    # --- The connection -------------------------------------------------------------------

    @contextmanager
    def _speaking(self, doing: str) -> Iterator[paramiko.SFTPClient]:
        """The signed-in SFTP session, with every protocol or network error of the block
        turned into the delivery error it means."""
        sftp = self._session()
        try:
            yield sftp
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._translated(exc, doing=doing) from None

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._ssh = self._connect()
            try:
                self._sftp = self._ssh.open_sftp()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                raise self._translated(exc, doing="start an SFTP session") from None
        return self._sftp

    def _connect(self) -> paramiko.SSHClient:
        accepted = self.host_keys or HostKeys.known_for(self.host, self.port, self.known_hosts_files)
        client = paramiko.SSHClient()
        # Nothing is loaded into the client's own key store: the policy alone decides.
        client.set_missing_host_key_policy(_HostKeyCheck(accepted, verify=self.verify_host_key))
        login: dict[str, Any] = {}
        if self._private_key:
            try:
                login["pkey"] = private_key_load(self._private_key + "\n", self._private_key_passphrase)
            except InvalidInput as exc:
                raise DestinationMisconfigured(exc.message) from None
        if self._password:
            login["password"] = self._password
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                look_for_keys=False,  # only the key and password given: never the worker's own
                allow_agent=False,
                disabled_algorithms={"keys": accepted.disabled_algorithms()}
                if self.verify_host_key
                else None,
                **login,
            )
        except _HostKeyRefused as exc:
            client.close()
            raise self._host_key_refused(exc) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise self._translated(exc, doing=f"sign in as {self.username}") from None
        return client

    def _host_key_refused(self, exc: _HostKeyRefused) -> DestinationMisconfigured:
        where = f"{self.host}:{self.port}"
        shown = f"{exc.key.get_name()} {exc.key.fingerprint}"
        if exc.expected:
            return DestinationMisconfigured(
                f"The SFTP server at {where} presented the host key {shown}, which is not the one "
                "configured: the server was reinstalled, or someone is in between. Nothing was sent. "
                "If the server's administrator confirms the new key, enter it as the host key."
            )
        return DestinationMisconfigured(
            f"The SFTP server at {where} presented the host key {shown}, and no host key is "
            "configured to compare it with. Nothing was sent. Check the fingerprint with the "
            "server's administrator (ssh-keygen -l -f on its key) and enter it as the host key "
            "(SFTP_HOST_KEY for the environment's destination)."
        )

    def _translated(self, exc: BaseException, *, doing: str) -> DeliveryFailed:
        """The delivery error for a paramiko or network error, decided on its class and,
        for SFTP replies, on the status paramiko turns into an errno."""
        where = f"{self.host}:{self.port}"
        if isinstance(exc, paramiko.BadHostKeyException | _HostKeyRefused):
            return DestinationMisconfigured(
                f"The SFTP server at {where} presented a host key that is not accepted."
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return DestinationMisconfigured(
                f"The SFTP server at {where} refused to sign in {self.username}; check the user name, "
                "the private key and its passphrase, or the password."
            )
        if isinstance(exc, IncompatiblePeer):
            return DestinationMisconfigured(
                f"The SFTP server at {where} has no host key of the type configured, or no algorithm in "
                "common with this server."
            )
        if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EACCES:
            return DestinationMisconfigured(
                f"The SFTP server at {where} refused to {doing}: the account may not write there."
            )
        if isinstance(exc, FileNotFoundError):
            return DestinationMisconfigured(
                f"The SFTP server at {where} could not {doing}: a folder on the way is missing and "
                "could not be made."
            )
        if isinstance(exc, NoValidConnectionsError | ConnectionError | socket.gaierror):
            return DeliveryTemporarilyFailed(f"The SFTP server at {where} could not be reached ({doing}).")
        if isinstance(exc, TimeoutError):
            return DeliveryTemporarilyFailed(
                f"The SFTP server at {where} did not answer within {self.timeout:.0f} s ({doing})."
            )
        # A lost connection, an SSH error, or SFTP's generic failure (a full disk among others).
        return DeliveryTemporarilyFailed(
            f"The SFTP server at {where} could not {doing} for now ({exc.__class__.__name__})."
        )

    # --- Files ----------------------------------------------------------------------------

    def _remote(self, path: str) -> str:
        """``path`` as the server takes it: from its root, or from the login folder."""
        return f"/{path}" if self.folder_from_root else path

    def _url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        remote = self._remote(path)
        return f"sftp://{host}:{self.port}{remote if remote.startswith('/') else '/~/' + remote}"

    def _make_folders(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        """mkdir -p: each missing folder of ``folder`` made (each looked at once per session)."""
        parts = [part for part in folder.split("/") if part]
        for depth in range(1, len(parts) + 1):
            current = self._remote("/".join(parts[:depth]))
            if current in self._folders_made:
                continue
            try:
                sftp.stat(current)
            except FileNotFoundError:
                try:
                    sftp.mkdir(current)
                except OSError:
                    sftp.stat(current)  # made meanwhile by another run: fine; else the error counts
            self._folders_made.add(current)

    def _rename(self, sftp: paramiko.SFTPClient, temporary: str, path: str) -> None:
        """posix-rename (replaces in one step); without it, delete what is there and rename."""
        source, target = self._remote(temporary), self._remote(path)
        try:
            sftp.posix_rename(source, target)
            return
        except (PermissionError, FileNotFoundError):
            raise
        except OSError:
            pass  # the server does not speak posix-rename (SFTP's generic failure)
        try:
            sftp.rename(source, target)
        except OSError:
            sftp.stat(source)  # the upload must still be there to be renamed
            sftp.remove(target)
            sftp.rename(source, target)


def _joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name
