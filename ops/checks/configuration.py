"""Checklist items about the installation's configuration: settings, accounts, the checkout.

Not probes: they ask no dependency whether it answers (ops.probes and
ops.checks.dependencies do). Each reads the settings itself and takes, as keyword
arguments, only what a test or the system check needs to vary. Only
``check_admin_password`` (the accounts) and ``check_https`` (a TLS handshake) reach beyond
the process, and both can be told not to.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from docuelevate.env import KNOWN_PLACEHOLDERS, secret_weakness
from ops.probes.result import CheckResult, error_text, failed, passed, warned

# Seconds to wait for any one service; a check that hangs is worse than one that fails.
NETWORK_TIMEOUT = 3.0
# Cache backends whose counters every process and machine of a deployment shares.
SHARED_CACHE_MODULES = (
    "django.core.cache.backends.redis.",
    "django.core.cache.backends.memcached.",
    "django_redis.",
)
# Superusers whose passwords are tried against the placeholders (each try is a full hash).
MAX_ACCOUNTS_INSPECTED = 5

# File names that hold secrets and have no business in a deployment's git history.
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".htpasswd", ".pgpass", ".netrc",
    "credentials.json", "service-account*.json", "*.sqlite3",
)  # fmt: skip
# Templates that document the secrets without holding any.
SECRET_FILE_TEMPLATES = (".example", ".sample", ".template", ".dist")


def check_debug() -> CheckResult:
    if settings.DEBUG:
        return failed(
            "debug",
            "DEBUG=true: error pages show code and settings; the session secret may be random per process",
            "set DEBUG=false",
        )
    return passed("debug", "DEBUG=false")


def check_database(*, alias: str = DEFAULT_DB_ALIAS) -> CheckResult:
    connection = connections[alias]
    if connection.vendor == "postgresql":
        where = connection.settings_dict.get("HOST") or "the local socket"
        return passed("database", f"PostgreSQL at {where}")
    return failed(
        "database",
        f"{connection.display_name} is in use: one writer at a time, and no server-side backups",
        "run PostgreSQL and set DATABASE_URL=postgresql://user:password@host:5432/docuelevate",
    )


def _tls_answers(hostname: str, timeout: float) -> bool:
    """Whether ``https://hostname`` completes a verified TLS handshake."""
    context = ssl.create_default_context()
    try:
        with (
            socket.create_connection((hostname, 443), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=hostname),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def _is_local_name(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback


def check_https(*, probe_tls: bool = True, timeout: float = NETWORK_TIMEOUT) -> CheckResult:
    if settings.SECURE_PROXY:
        return passed(
            "https", "TLS ends at the reverse proxy (SECURE_PROXY=true): secure cookies, https redirect"
        )
    hostname = settings.EXTERNAL_HOSTNAME
    fix = "put a TLS-terminating reverse proxy in front, as in deploy/nginx, and set SECURE_PROXY=true"
    if probe_tls and not _is_local_name(hostname) and _tls_answers(hostname, timeout):
        return warned(
            "https",
            f"https://{hostname} answers with TLS, but SECURE_PROXY=false: cookies are not marked Secure",
            "set SECURE_PROXY=true",
        )
    return failed("https", f"no TLS: SECURE_PROXY=false and nothing answers https://{hostname}", fix)


def check_session_secret() -> CheckResult:
    fix = 'set SESSION_SECRET to python -c "import secrets; print(secrets.token_urlsafe(48))"'
    problem = secret_weakness(settings.SECRET_KEY, min_length=32)
    if problem:
        return failed("session_secret", f"SESSION_SECRET is weak: {problem}", fix)
    for previous in settings.SECRET_KEY_FALLBACKS:
        problem = secret_weakness(previous, min_length=32)
        if problem:
            return failed(
                "session_secret",
                f"SESSION_SECRET_PREVIOUS is weak: {problem}; it still signs valid sessions",
                "remove SESSION_SECRET_PREVIOUS once sessions made with it have expired",
            )
    return passed("session_secret", "SESSION_SECRET is long and not a known placeholder")


def _placeholder_accounts() -> list[str]:
    """Usernames of active superusers whose password is their username or a placeholder."""
    from accounts.models import User  # the app registry is ready by the time a check runs

    found = []
    superusers = User.objects.filter(is_superuser=True, is_active=True).order_by("-last_login", "pk")
    for user in superusers[:MAX_ACCOUNTS_INSPECTED]:
        candidates = [user.username, *sorted(KNOWN_PLACEHOLDERS)]
        # check_password() of the hasher module, not User.check_password(), which would
        # re-save a hash that needs an upgrade.
        if any(check_password(candidate, user.password) for candidate in candidates):
            found.append(user.username)
    return found


def check_admin_password(*, inspect_accounts: bool = True) -> CheckResult:
    fix = "set a long random ADMIN_PASSWORD and run python manage.py bootstrap_admin"
    password = settings.ADMIN_PASSWORD
    if password:
        problem = secret_weakness(password, min_length=12)
        if problem:
            return failed("admin_password", f"ADMIN_PASSWORD is weak: {problem}", fix)
    if not inspect_accounts:
        return passed(
            "admin_password", "ADMIN_PASSWORD is strong" if password else "ADMIN_PASSWORD is not set"
        )
    try:
        weak = _placeholder_accounts()
    except DatabaseError as exc:
        return failed(
            "admin_password", f"the accounts cannot be read ({error_text(exc)})", "check DATABASE_URL"
        )
    if weak:
        return failed(
            "admin_password",
            f"operator account(s) {', '.join(weak)} use their username or a placeholder as password",
            "change those passwords: python manage.py changepassword USERNAME",
        )
    if password:
        return passed("admin_password", "ADMIN_PASSWORD is strong; no operator uses a placeholder password")
    return passed("admin_password", "no operator uses a placeholder password")


def check_auth() -> CheckResult:
    if settings.AUTH_ENABLED:
        return passed("auth", "AUTH_ENABLED=true: every page and API call needs a login or a token")
    return failed(
        "auth",
        "AUTH_ENABLED=false: anyone who reaches the server reads every document",
        "set AUTH_ENABLED=true",
    )


def check_security_headers() -> CheckResult:
    if settings.SECURITY_HEADERS_ENABLED:
        return passed("security_headers", "HSTS, CSP and the other headers come from the application")
    if settings.SECURITY_HEADERS_AT_PROXY:
        return passed(
            "security_headers", "the reverse proxy sets the headers (SECURITY_HEADERS_AT_PROXY=true)"
        )
    return failed(
        "security_headers",
        "no HSTS, CSP or Referrer-Policy: SECURITY_HEADERS_ENABLED=false and no proxy declared to set them",
        "set SECURITY_HEADERS_ENABLED=true, or SECURITY_HEADERS_AT_PROXY=true if the proxy sets them",
    )


def check_rate_limiting() -> CheckResult:
    if not settings.RATE_LIMITING_ENABLED:
        return failed(
            "rate_limiting",
            "RATE_LIMITING_ENABLED=false: password guessing and upload floods are not slowed down",
            "set RATE_LIMITING_ENABLED=true",
        )
    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    cache = settings.CACHES.get(alias) or settings.CACHES["default"]
    backend = str(cache["BACKEND"])
    kind = backend.rsplit(".", 1)[-1]
    if backend.startswith(SHARED_CACHE_MODULES):
        return passed("rate_limiting", f"on, counted in a shared cache ({kind})")
    if kind in {"FileBasedCache", "DatabaseCache"}:
        return warned(
            "rate_limiting",
            f"on, but counted in {kind}: shared only by the processes of one machine, and not atomic",
            "set REDIS_URL so the counters live in Redis",
        )
    return failed(
        "rate_limiting",
        f"on, but counted in {kind}: each process counts alone, so the limits multiply",
        "set REDIS_URL so the counters live in Redis",
    )


# The FTP and SFTP settings are read with getattr: they belong to the destination kinds
# (destinations.kinds), and these items hold whether or not a kind is installed.


def check_ftp_tls() -> CheckResult:
    """Plain FTP carries documents and the password readable by anyone on the way."""
    # The FTP_* account serves the destination and the remote-folder source alike.
    if not (getattr(settings, "FTP_ENABLED", False) or getattr(settings, "FTP_INGEST_ENABLED", False)):
        return passed(
            "ftp_tls",
            "no FTP destination or source from the environment (FTP_ENABLED, FTP_INGEST_ENABLED false)",
        )
    if getattr(settings, "FTP_USE_TLS", True):
        return passed("ftp_tls", "the FTP destination speaks TLS (FTPS, FTP_USE_TLS=true)")
    if getattr(settings, "FTP_ALLOW_PLAINTEXT", False):
        return warned(
            "ftp_tls",
            "FTP_USE_TLS=false with FTP_ALLOW_PLAINTEXT=true: documents and the FTP password cross the "
            "network unencrypted",
            "set FTP_USE_TLS=true (a server with explicit TLS, FTPS) and remove FTP_ALLOW_PLAINTEXT, "
            "or deliver over SFTP instead",
        )
    return passed(
        "ftp_tls", "FTP_USE_TLS=false, but without FTP_ALLOW_PLAINTEXT=true nothing is sent in plaintext"
    )


def check_sftp_host_keys() -> CheckResult:
    """Without host-key verification, whoever answers in the server's place gets the files."""
    if not (getattr(settings, "SFTP_ENABLED", False) or getattr(settings, "SFTP_INGEST_ENABLED", False)):
        return passed(
            "sftp_host_keys",
            "no SFTP destination or source from the environment (SFTP_ENABLED, SFTP_INGEST_ENABLED false)",
        )
    if getattr(settings, "SFTP_DISABLE_HOST_KEY_VERIFICATION", False):
        return warned(
            "sftp_host_keys",
            "SFTP_DISABLE_HOST_KEY_VERIFICATION=true: the SFTP server's host key is not checked, so a "
            "machine in between can pose as the server and receive the documents and the password",
            "set SFTP_DISABLE_HOST_KEY_VERIFICATION=false so the server's host key is verified "
            "(docs/destinations.md)",
        )
    return passed("sftp_host_keys", "the SFTP server's host key is verified")


# How many mailboxes without TLS the reason names; the rest are counted.
PLAINTEXT_MAILBOXES_NAMED = 10


def check_imap_tls(*, inspect_sources: bool = True) -> CheckResult:
    """A mailbox read without TLS (``ssl`` false) sends its password and mail readable by
    anyone on the way, unless the server offers STARTTLS, and a machine in between can
    strike that offer out. The environment's IMAP<n>_SSL, and with ``inspect_sources`` the
    mailboxes people added (the database; the system check cannot ask it)."""
    plaintext = [
        f"IMAP{mailbox['number']}_SSL=false ({mailbox['host']})"
        for mailbox in getattr(settings, "IMAP_MAILBOXES", [])
        if not mailbox["ssl"]
    ]
    if inspect_sources:
        from sources.models import Source, SourceKind

        added = (
            Source.objects.filter(kind=SourceKind.IMAP, enabled=True, settings__ssl=False)
            .exclude(system_key__startswith="env:")  # named above by their variable
            .select_related("owner")
            .order_by("name", "pk")
        )
        plaintext += [
            f"{source.name} ({source.owner.username if source.owner else 'system-wide'}, "
            f"{source.settings.get('host', '')})"
            for source in added
        ]
    if not plaintext:
        checked = "the environment's mailboxes" if not inspect_sources else "every enabled mailbox"
        return passed("imap_tls", f"{checked} connect over TLS (or there are none)")
    named = "; ".join(plaintext[:PLAINTEXT_MAILBOXES_NAMED])
    more = len(plaintext) - PLAINTEXT_MAILBOXES_NAMED
    return warned(
        "imap_tls",
        f"{len(plaintext)} mailbox(es) connect without TLS: {named}"
        + (f"; and {more} more" if more > 0 else "")
        + ". The password and the mail cross the network unencrypted unless the server offers "
        "STARTTLS, and a machine in between can remove that offer",
        "set IMAP<n>_SSL=true (port 993) for the environment's mailboxes, and turn on SSL for the "
        "others on /sources (docs/ingestion.md)",
    )


def check_monitoring() -> CheckResult:
    watchers = [
        name
        for name in ("UPTIME_KUMA_URL", "METRICS_TOKEN", "METRICS_ALLOWED_IPS")
        if getattr(settings, name, None)
    ]
    if watchers:
        return passed("monitoring", f"configured: {', '.join(watchers)}")
    return warned(
        "monitoring",
        "nothing watches this installation: no Uptime Kuma push, /metrics closed to everyone",
        "set UPTIME_KUMA_URL, or METRICS_TOKEN / METRICS_ALLOWED_IPS for Prometheus",
    )


def check_log_format() -> CheckResult:
    if settings.LOG_FORMAT == "json":
        return passed("log_format", "LOG_FORMAT=json: one JSON object per line, ready for a log shipper")
    return warned(
        "log_format",
        f"LOG_FORMAT={settings.LOG_FORMAT}: log lines a shipper cannot split into fields",
        "set LOG_FORMAT=json and ship stdout to your log store",
    )


def tracked_secret_files(paths: Iterable[str]) -> list[str]:
    """The paths among ``paths`` whose file names say they hold secrets."""
    found = []
    for path in paths:
        name = PurePosixPath(path).name
        if name.endswith(SECRET_FILE_TEMPLATES):
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_FILE_PATTERNS):
            found.append(path)
    return found


def check_secrets_in_repo(*, base_dir: Path | None = None) -> CheckResult:
    base_dir = Path(base_dir or settings.BASE_DIR)
    git = shutil.which("git")
    if git is None:
        if (base_dir / ".git").exists():
            return warned(
                "secrets_in_repo", "a git checkout, but git is not installed to list it", "install git"
            )
        return passed("secrets_in_repo", "not a git checkout")
    listing = subprocess.run(
        [git, "-C", str(base_dir), "ls-files", "-z"], capture_output=True, timeout=30, check=False
    )
    if listing.returncode != 0:
        error = listing.stderr.decode(errors="replace")
        if "not a git repository" in error:
            return passed("secrets_in_repo", "not a git checkout")
        return warned(
            "secrets_in_repo",
            f"git cannot list {base_dir}: {' '.join(error.split())[:200]}",
            "run git ls-files there and read the error",
        )
    tracked = [path for path in listing.stdout.decode(errors="replace").split("\0") if path]
    secrets = tracked_secret_files(tracked)
    if secrets:
        listed = ", ".join(secrets[:5]) + (f" and {len(secrets) - 5} more" if len(secrets) > 5 else "")
        return failed(
            "secrets_in_repo",
            f"git tracks secret files: {listed}",
            "git rm --cached them, add them to .gitignore, and rotate every secret they held",
        )
    return passed("secrets_in_repo", f"git tracks no .env, key or certificate file ({len(tracked)} files)")
