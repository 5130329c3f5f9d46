"""An SFTP server: Debian's OpenSSH sshd on a free port, with a throwaway host key and config.

Only ``internal-sftp`` runs (no shell, no forwarding), starting in the root folder, so
relative paths land there. Logins take the client keys given (ed25519, one of them
encrypted with a passphrase, see ``make_ssh_key``).

Password logins need a real account: sshd checks passwords against the system's. Running
as root (CI, the developers' containers), the server creates a throwaway system user with
a random password and the root folder as its home, and removes it on ``close()``; so a
test checks password logins against the real sshd without a change that outlives it. Run
as another user, sshd can only log that user in, by key, and ``password`` is None.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import FileServer, ServerFailedToStart, free_port, wait_for_port

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
# sshd started as root insists on its privilege separation folder, compiled in as Debian's;
# Debian's init script makes it at boot, and nothing ran that script here.
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")
# useradd and userdel answer 1 or 10 while another process holds the account files' lock,
# userdel 8 while a process of the account lives (a killed session not yet reaped).
ACCOUNT_BUSY = (1, 8, 10)


@dataclass(frozen=True)
class SshKey:
    """A key pair in OpenSSH's formats: the private key file, its public line
    (``ssh-ed25519 AAAA… comment``), its passphrase if encrypted, and its SHA-256
    fingerprint as ssh and paramiko print it (``SHA256:…``)."""

    private_key: Path
    public_line: str
    passphrase: str | None
    fingerprint: str

    @property
    def key_type(self) -> str:
        return self.public_line.split()[0]

    @property
    def public_base64(self) -> str:
        return self.public_line.split()[1]


def make_ssh_key(path: Path, *, passphrase: str | None = None, comment: str = "docuelevate-test") -> SshKey:
    """A new ed25519 key pair at ``path`` and ``path``.pub, encrypted if ``passphrase``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase or "", "-C", comment, "-f", path],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", f"{path}.pub"], check=True, capture_output=True, text=True
    )
    return SshKey(
        private_key=path,
        public_line=Path(f"{path}.pub").read_text().strip(),
        passphrase=passphrase,
        fingerprint=listing.stdout.split()[1],
    )


@dataclass(frozen=True)
class SshClientKeys:
    """The keys a client logs in with: one plain, one encrypted with a passphrase."""

    plain: SshKey
    encrypted: SshKey


def make_client_keys(folder: Path) -> SshClientKeys:
    return SshClientKeys(
        plain=make_ssh_key(folder / "id_ed25519"),
        encrypted=make_ssh_key(folder / "id_ed25519_encrypted", passphrase=secrets.token_urlsafe(12)),
    )


def sshd_missing() -> str | None:
    """Why no sshd can run here, or None when it can."""
    for program in (SSHD, SSH_KEYGEN):
        if not program.exists():
            return f"{program} is not installed (Debian's openssh-server; make test installs it)"
    return None


class SftpServer(FileServer):
    """sshd with ``internal-sftp`` on 127.0.0.1, its config, keys and root folder in a
    temporary folder of its own (an account's home must be reachable by that account,
    which pytest's private tmp folders are not)."""

    def __init__(self, *, client_keys: Sequence[SshKey], password_login: bool = True) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="sftp-server-"))
        # sshd reads the authorized keys as the logged-in account: the folders must let it.
        self._workdir.chmod(0o755)
        super().__init__(root=self._workdir / "root")
        self.client_keys = list(client_keys)
        self._as_root = os.geteuid() == 0
        self.username = f"sftp-{secrets.token_hex(4)}" if self._as_root else getpass.getuser()
        self.password = secrets.token_urlsafe(12) if self._as_root and password_login else None
        self.host_key = make_ssh_key(self._workdir / "host_ed25519_key", comment="docuelevate-test-host")
        self.log = self._workdir / "sshd.log"
        self._config = self._workdir / "sshd_config"
        self._authorized_keys = self._workdir / "authorized_keys"
        self._process: subprocess.Popen[bytes] | None = None
        self._account_created = False

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def known_hosts_line(self) -> str:
        """The server's line for a known_hosts file, as ssh writes one for a port."""
        return f"[{self.host}]:{self.port} {self.host_key.key_type} {self.host_key.public_base64}"

    def replace_host_key(self) -> None:
        """A new host key from the next start on, as after a reinstall or an impostor: a
        client that checks the host key must refuse to go on."""
        for path in (self.host_key.private_key, Path(f"{self.host_key.private_key}.pub")):
            path.unlink()
        self.host_key = make_ssh_key(self.host_key.private_key, comment="docuelevate-test-host")

    def start(self) -> None:
        if self._as_root:
            PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
            self._create_account()
        self._authorized_keys.write_text("".join(f"{key.public_line}\n" for key in self.client_keys))
        self._authorized_keys.chmod(0o644)
        # A port picked free may be taken before sshd binds it: then another one, on the
        # first start only (a restart keeps its port, as clients expect).
        for _ in range(5 if not self.port else 1):
            port = self.port or free_port()
            process = self._start_sshd(port)
            if process is not None:
                self.port = port
                self._process = process
                return
        raise ServerFailedToStart(f"sshd did not start:\n{self.log_tail()}")

    def _start_sshd(self, port: int) -> subprocess.Popen[bytes] | None:
        """sshd serving on ``port``, or None when it gave up (after stopping it)."""
        self._config.write_text(self._sshd_config(port))
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", self._config],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait_for_port(port, greeting=b"SSH-2.0-", alive=lambda: process.poll() is None):
            return process
        _stop_sshd(process)
        return None

    def stop(self) -> None:
        """Stop sshd and every session it runs (each its own process), as a crash would."""
        if self._process is not None:
            _stop_sshd(self._process)
            self._process = None

    def close(self) -> None:
        self.stop()
        try:
            if self._account_created:
                _run_account_command(["userdel", self.username])
                self._account_created = False
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else "(no log)"

    def _create_account(self) -> None:
        if self._account_created:
            return
        _run_account_command(
            [
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(self.root),
                "--shell", "/usr/sbin/nologin", self.username,
            ]
        )  # fmt: skip
        self._account_created = True
        # Without a password the account is locked, and sshd refuses a locked account even
        # a key login; with password logins off the password is simply never offered.
        password = self.password or secrets.token_urlsafe(12)
        subprocess.run(["chpasswd"], input=f"{self.username}:{password}\n", text=True, check=True)
        shutil.chown(self.root, self.username, self.username)

    def _sshd_config(self, port: int) -> str:
        lines = [
            f"ListenAddress {self.host}:{port}",
            f"HostKey {self.host_key.private_key}",
            "PidFile none",
            f"AuthorizedKeysFile {self._authorized_keys}",
            # The authorized keys sit in a temporary folder, not in a home that sshd's
            # ownership checks expect.
            "StrictModes no",
            f"AllowUsers {self.username}",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if self.password else 'no'}",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            "Subsystem sftp internal-sftp",
            f"ForceCommand internal-sftp -d {self.root}",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
            # Tests connect often and fail logins on purpose; none of that may lock them out.
            "MaxStartups 100",
            "MaxAuthTries 10",
            "LogLevel VERBOSE",
        ]
        if _openssh_version() >= (9, 8):
            lines.append("PerSourcePenalties no")
        return "\n".join(lines) + "\n"


def _openssh_version() -> tuple[int, int]:
    banner = subprocess.run([SSHD, "-V"], capture_output=True, text=True, check=False).stderr
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", banner)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _run_account_command(command: list[str], attempts: int = 100) -> None:
    for _ in range(attempts):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        if result.returncode not in ACCOUNT_BUSY:
            break
        time.sleep(0.1)
    raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)


def _stop_sshd(process: subprocess.Popen[bytes]) -> None:
    # Each session is a child that left sshd's process group: find them first.
    sessions = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may contain anything: split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found
