"""An IMAP server: Debian's Dovecot on 127.0.0.1, with a throwaway config, certificate and
accounts in a temporary folder of its own.

IMAPS (TLS from the first byte) on ``host``:``port``; optionally plain IMAP on
``starttls_host``:``starttls_port``, where Dovecot refuses a login before STARTTLS, as a
careful production server does. Dovecot takes any client whose address is the server's own
for a secure one, and a client on 127.0.0.1 leaves from 127.0.0.1: so the plain port listens
on 127.0.0.2, and the refusal is real (the throwaway certificate names both addresses). The
accounts are throwaway (a passwd-file with plain passwords), each with a maildir under the
temporary folder, so nothing of the machine's own mail or users is ever touched.

Dovecot refuses to give mail to uid 0. Run as root (CI, the developers' containers), the
mail processes run as Dovecot's own unprivileged user (``dovecot``, which Debian's package
creates), its login processes as ``dovenull``; run as anyone else, every process runs as
that user, as Dovecot's rootless mode allows.

The helpers put mail in and read it back over IMAPS as the account itself (IMAPClient,
trusting only the throwaway CA): the same door the code under test uses, so a message the
harness appended is one the server really accepted and numbered.

With ``oauth2_introspection_url`` the server also takes SASL XOAUTH2 and OAUTHBEARER, as
Gmail and Microsoft 365 do: Dovecot's oauth2 passdb POSTs the bearer token to that URL
(RFC 7662 introspection) and lets the account in when the answer is ``{"active": true,
"username": <the account>}``. A test serves that URL itself, so it decides which access
tokens are good; passwords keep working beside it.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from destinations.tests.servers.base import LocalServer, ServerFailedToStart, free_port, wait_for_port
from destinations.tests.servers.tls import TlsFiles

DOVECOT = Path("/usr/sbin/dovecot")
# The IMAP service comes in a package of its own (dovecot-imapd) beside dovecot-core.
DOVECOT_IMAP = Path("/usr/lib/dovecot/imap")
# Debian's package makes these accounts: the internal one owns mail when root starts the
# server (Dovecot never gives mail to root), the null one runs the login processes.
ROOT_MAIL_USER = "dovecot"
ROOT_LOGIN_USER = "dovenull"
STARTTLS_HOST = "127.0.0.2"
# The names of the processes that hold one client's connection: the login process (TLS,
# and the proxy for it after login) and the mail process behind it.
CONNECTION_PROCESSES = frozenset({"imap-login", "imap"})
APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def dovecot_missing() -> str | None:
    """Why no Dovecot can run here, or None when it can."""
    for program in (DOVECOT, DOVECOT_IMAP):
        if not program.exists():
            return f"{program} is not installed (Debian's dovecot-imapd; make test installs it)"
    return None


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class StoredMessage:
    """A message as the server lists it: its UID, its flags (``\\Seen``, ...) and its size."""

    uid: int
    flags: frozenset[str]
    size: int


@dataclass(frozen=True)
class FolderListing:
    """A folder's UIDVALIDITY and its messages in UID order: what a poller keeps track of."""

    uidvalidity: int
    messages: list[StoredMessage]

    @property
    def uids(self) -> list[int]:
        return [message.uid for message in self.messages]


class DovecotServer(LocalServer):
    """Dovecot serving IMAPS on 127.0.0.1 (``port``) and, with ``starttls=True``, plain IMAP
    with STARTTLS on ``starttls_host``:``starttls_port``; both ports kept across ``stop()``
    and ``start()``."""

    starttls_host = STARTTLS_HOST

    def __init__(
        self, *, tls: TlsFiles, starttls: bool = False, oauth2_introspection_url: str | None = None
    ) -> None:
        super().__init__()
        self.tls = tls
        self.oauth2_introspection_url = oauth2_introspection_url
        self.starttls_port: int | None = None
        self._starttls = starttls
        self._workdir = Path(tempfile.mkdtemp(prefix="dovecot-server-"))
        # The mail processes run as another account when root starts the server: they must
        # reach their maildirs through this folder.
        self._workdir.chmod(0o755)
        self.mail_root = self._workdir / "mail"
        self.log = self._workdir / "dovecot.log"
        self._config = self._workdir / "dovecot.conf"
        self._oauth2_config = self._workdir / "dovecot-oauth2.conf.ext"
        # One passwd-file per account: Dovecot looks at a passwd-file again at most once a
        # second, so an account added to a file it has just read would be refused for up to a
        # second; a file of its own is read when the account first logs in.
        self._accounts = self._workdir / "accounts"
        self._as_root = os.geteuid() == 0
        # The account of the process itself, not $USER, which a change of user may leave behind.
        self._mail_user = ROOT_MAIL_USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._login_user = ROOT_LOGIN_USER if self._as_root else self._mail_user
        self._users: dict[str, Credentials] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare_folders()

    @property
    def running(self) -> bool:
        return self._process is not None

    # --- Accounts and mail ---------------------------------------------------------------------

    def add_user(self, name: str) -> Credentials:
        """A new account ``name`` with a random password, which logs in at once, also while
        the server runs."""
        if name in self._users:
            raise ValueError(f"the account {name!r} exists already")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            raise ValueError(f"{name!r} is not a plain account name")
        credentials = Credentials(username=name, password=secrets.token_urlsafe(16))
        self._users[name] = credentials
        account = self._accounts / name
        account.touch(mode=0o640)
        if self._as_root:
            shutil.chown(account, group=self._mail_user)
        account.write_text(f"{credentials.username}:{{PLAIN}}{credentials.password}\n")
        return credentials

    def connect(self, credentials: Credentials | None = None) -> IMAPClient:
        """An IMAPS connection that trusts the throwaway CA alone, logged in when given
        ``credentials``; the caller logs out (or uses it in a ``with`` block)."""
        client = IMAPClient(
            self.host, port=self.port, ssl=True, ssl_context=self.tls.client_context(), timeout=30
        )
        if credentials is not None:
            client.login(credentials.username, credentials.password)
        return client

    @contextlib.contextmanager
    def session(self, credentials: Credentials) -> Iterator[IMAPClient]:
        client = self.connect(credentials)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):  # a test may have dropped the connection
                client.logout()

    def append(
        self,
        user: Credentials,
        folder: str,
        message: bytes,
        flags: Sequence[str] = (),
        *,
        received: datetime.datetime | None = None,
    ) -> int:
        """Put ``message`` into ``folder`` (made if missing) as ``user``, as a mail client
        does; returns the UID the server gave it."""
        with self.session(user) as client:
            return self._append(client, folder, message, flags, received)

    def append_many(self, user: Credentials, folder: str, messages: Sequence[bytes]) -> list[int]:
        """``append`` for many messages over one connection (a benchmark's thousand mails)."""
        with self.session(user) as client:
            return [self._append(client, folder, message, (), None) for message in messages]

    def messages(self, user: Credentials, folder: str = "INBOX") -> FolderListing:
        """What ``folder`` holds, read without changing any flag (EXAMINE)."""
        with self.session(user) as client:
            selected = client.select_folder(folder, readonly=True)
            uidvalidity = int(selected[b"UIDVALIDITY"])
            uids = client.search(["ALL"])
            fetched = client.fetch(uids, ["FLAGS", "RFC822.SIZE"]) if uids else {}
        return FolderListing(
            uidvalidity=uidvalidity,
            messages=[
                StoredMessage(
                    uid=uid,
                    flags=frozenset(os.fsdecode(flag) for flag in data[b"FLAGS"]),
                    size=int(data[b"RFC822.SIZE"]),
                )
                for uid, data in sorted(fetched.items())
            ],
        )

    def _append(
        self,
        client: IMAPClient,
        folder: str,
        message: bytes,
        flags: Sequence[str],
        received: datetime.datetime | None,
    ) -> int:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        response = client.append(folder, message, flags=list(flags), msg_time=received)
        # Dovecot answers with the new UID (UIDPLUS); without it the harness cannot say
        # which message a test put where.
        found = APPENDUID.search(response)
        if found is None:
            raise AssertionError(f"Dovecot answered APPEND without APPENDUID: {response!r}")
        return int(found[2])

    # --- The server process ----------------------------------------------------------------------

    def start(self) -> None:
        # Ports picked free may be taken before Dovecot binds them: then others, on the first
        # start only (a restart keeps its ports, as clients expect).
        for _ in range(5 if not self.port else 1):
            port = self.port or free_port()
            starttls_port = self.starttls_port or (free_port() if self._starttls else None)
            process = self._start_dovecot(port, starttls_port)
            if process is not None:
                self.port, self.starttls_port, self._process = port, starttls_port, process
                return
        raise ServerFailedToStart(f"dovecot did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kill Dovecot and every process it started, as a crash would: clients lose their
        connections at once."""
        if self._process is not None:
            # Dovecot's processes stay in the group of the master, which leads its own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None
            self._wait_until_refused()

    def _wait_until_refused(self, timeout: float = 10) -> None:
        """Until the port refuses: the master is reaped at once, but a login process killed
        with it may hold the listening socket a moment longer and reset a connection
        instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
            except ConnectionRefusedError:
                return
            except OSError:
                pass  # reset by a dying listener: not gone yet
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def drop_connections(self) -> None:
        """Kill the processes serving clients, leaving the server itself up: every open
        connection ends mid-command, as when a network or a server's worker drops one."""
        if self._process is None:
            return
        for pid in _group_processes(self._process.pid, names=CONNECTION_PROCESSES):
            # One of a connection's two processes may have ended with the other already.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else "(no log)"

    def _start_dovecot(self, port: int, starttls_port: int | None) -> subprocess.Popen[bytes] | None:
        """Dovecot serving on the ports, or None when it gave up (after stopping it)."""
        self._config.write_text(self._dovecot_config(port, starttls_port))
        if self.oauth2_introspection_url:
            self._oauth2_config.write_text(self._dovecot_oauth2_config(self.oauth2_introspection_url))
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [DOVECOT, "-F", "-c", self._config],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # The master binds every listener before it starts serving, and exits when one is
        # taken: the IMAPS port answering means the plain one is there too.
        if wait_for_port(port, alive=lambda: process.poll() is None):
            return process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return None

    def _prepare_folders(self) -> None:
        for folder in ("run", "state"):
            (self._workdir / folder).mkdir()
        self.mail_root.mkdir()
        self._accounts.mkdir(mode=0o750)
        if self._as_root:
            # The mail processes make each account's maildir under the mail root.
            shutil.chown(self.mail_root, self._mail_user, self._mail_user)
            # The auth process reads the passwords as Dovecot's internal user.
            shutil.chown(self._accounts, group=self._mail_user)

    def _dovecot_config(self, port: int, starttls_port: int | None) -> str:
        mail_account = pwd.getpwnam(self._mail_user)
        mail_group = grp.getgrgid(mail_account.pw_gid).gr_name
        # Rootless Dovecot: no chroot and no change of user, for any process.
        chroot = "" if self._as_root else "chroot ="
        auth_worker_user = "" if self._as_root else "user = $default_internal_user"
        # Bearer tokens go to the oauth2 passdb alone; passwords to the passwd-file alone.
        oauth2_mechanisms, oauth2_passdb = "", ""
        if self.oauth2_introspection_url:
            oauth2_mechanisms = " xoauth2 oauthbearer"
            oauth2_passdb = (
                "passdb {\n"
                "              driver = oauth2\n"
                "              mechanisms = xoauth2 oauthbearer\n"
                f"              args = {self._oauth2_config}\n"
                "            }\n"
                "            "
            )
        # Port 0 switches a listener off: plain IMAP only when asked for.
        return textwrap.dedent(
            f"""\
            # A throwaway Dovecot for the tests (sources/tests/servers/dovecot.py).
            instance_name = dovecot-test-{self._workdir.name}
            base_dir = {self._workdir / "run"}
            state_dir = {self._workdir / "state"}
            log_path = {self.log}
            info_log_path = {self.log}
            protocols = imap
            listen = {self.host}, {self.starttls_host}
            default_internal_user = {self._mail_user}
            default_internal_group = {mail_group}
            default_login_user = {self._login_user}
            first_valid_uid = {mail_account.pw_uid}
            last_valid_uid = {mail_account.pw_uid}
            ssl = required
            ssl_cert = <{self.tls.cert_file}
            ssl_key = <{self.tls.key_file}
            ssl_min_protocol = TLSv1.2
            auth_mechanisms = plain login{oauth2_mechanisms}
            disable_plaintext_auth = yes
            # A wrong password is refused at once: the tests try one on purpose.
            auth_failure_delay = 0
            # Tests and pollers open several connections at once as one account.
            mail_max_userip_connections = 100
            mail_location = maildir:~/Maildir
            namespace inbox {{
              inbox = yes
              separator = /
            }}
            {oauth2_passdb}passdb {{
              driver = passwd-file
              args = scheme=PLAIN {self._accounts}/%u
            }}
            userdb {{
              driver = static
              args = uid={mail_account.pw_uid} gid={mail_account.pw_gid} home={self.mail_root}/%u
            }}
            service imap-login {{
              {chroot}
              inet_listener imaps {{
                address = {self.host}
                port = {port}
                ssl = yes
              }}
              inet_listener imap {{
                address = {self.starttls_host}
                port = {starttls_port or 0}
              }}
            }}
            service anvil {{
              {chroot}
              # No growing delay after failed logins from one address (the authentication
              # penalty): tests fail logins on purpose and log in again right after.
              unix_listener anvil-auth-penalty {{
                mode = 0
              }}
            }}
            service auth-worker {{
              {auth_worker_user}
            }}
            """
        )

    @staticmethod
    def _dovecot_oauth2_config(introspection_url: str) -> str:
        # No tokeninfo URL: every token is introspected (POST token=<token>), and only an
        # answer saying it is active, for the account signing in, lets it in.
        return textwrap.dedent(
            f"""\
            introspection_mode = post
            introspection_url = {introspection_url}
            force_introspection = yes
            username_attribute = username
            active_attribute = active
            active_value = true
            """
        )


def _group_processes(group: int, *, names: frozenset[str]) -> list[int]:
    """The processes of the process group ``group`` whose command is one of ``names``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command sits in parentheses and may contain anything: split around it.
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 1 :].split()
        if command in names and int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found
