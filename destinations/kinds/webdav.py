"""WebDAV servers (Apache mod_dav, nginx, rclone serve, a NAS, ownCloud, …), over HTTP(S).

A file goes up under a temporary name in its target folder and is then MOVEd onto its
name with ``Overwrite: T``: a rename on the server, so the name never shows a half file.
The temporary name is derived from the path and the content, so a retry after a broken
upload writes over the leftover instead of beside it, and the MOVE takes it away.

WebDAV has no checksum of its own. The content's SHA-256 is kept with the file as a dead
property (PROPPATCH on the temporary file; MOVE carries properties along), which most
servers store; a server that keeps none (nginx's dav module) leaves the service to judge by
size, ETag and its own record.

Folders are made level by level (MKCOL) when missing. ``NextcloudKind`` is this kind with
Nextcloud's URL layout and checksums.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping
from io import BytesIO
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

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
from destinations.kinds.fields import unknown_refuse
from destinations.kinds.webdav_client import (
    CONNECT_TIMEOUT,
    DAV,
    READ_TIMEOUT,
    Property,
    Resource,
    WebDavClient,
    WebDavError,
    WebDavFailure,
)
from destinations.models import DestinationKind
from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput

# The dead property that keeps a delivered file's SHA-256 beside it.
HASH_PROPERTY = Property("https://docuelevate.org/ns/dav", "sha256")
LAST_MODIFIED = Property(DAV, "getlastmodified")
TEMPORARY_PREFIX = ".docuelevate-"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Answers that say "later": throttled, locked by someone else, or the server's own trouble.
_TEMPORARY_STATUSES = frozenset({408, 423, 425, 429})


class WebDavKind(Kind):
    """Delivers below one WebDAV share (``url``), as one user."""

    name = DestinationKind.WEBDAV
    label: ClassVar[str] = "WebDAV"
    setting_names = ("url", "folder", "username", "verify_ssl")
    secret_names = ("password",)
    flag_settings = {"verify_ssl": True}
    help_texts = {
        "url": "The share's address, e.g. https://dav.example.com/webdav "
        "(https:// when there is a password).",
        "folder": "Folder inside the share, e.g. Documents/Scans; made when missing. Empty: the share's top.",
        "username": "The user to sign in as (HTTP basic), e.g. scanner. Empty: no sign-in.",
        "verify_ssl": "Check the server's certificate; untick only for a test server.",
        "password": "The user's password, e.g. s3cret-Passw0rd.",
    }
    # Asked for by every PROPFIND about a file, besides its size and ETag.
    stat_properties: ClassVar[tuple[Property, ...]] = (HASH_PROPERTY,)

    def __init__(
        self,
        *,
        url: str,
        username: str = "",
        password: str = "",
        verify: bool | str = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.share = self.share_url(url, username)
        self._client = WebDavClient(
            base_url=self.share,
            username=username,
            password=password,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.share}>"

    @classmethod
    def share_url(cls, url: str, username: str) -> str:
        """The URL of the share's root folder, from the URL the destination was given."""
        return url if url.endswith("/") else f"{url}/"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown_refuse(settings, cls.setting_names, what=cls.label)
        unknown_refuse(secrets, cls.secret_names, what=cls.label)
        url = str(settings.get("url") or "").strip()
        host, port = _checked_url(url, what=f"The {cls.label} URL")
        username = str(settings.get("username") or "").strip()
        password = str(secrets.get("password") or "")
        if any(character in username for character in ":\r\n"):
            raise InvalidInput("The user name must not contain a colon or a line break.")
        cls._check_credentials(username=username, password=password)
        if not system_wide:
            if password and not url.lower().startswith("https://"):
                raise InvalidInput("A password is only sent over an encrypted connection; use https://.")
            # SSRF: the one place a user's WebDAV or Nextcloud destination names a host.
            public_host_check(host, port=port, what=f"The {cls.label} server")
        cleaned = {
            "url": url.rstrip("/"),
            "folder": str(settings.get("folder") or "").strip(),
            "username": username,
            "verify_ssl": _checked_bool(settings.get("verify_ssl", True), what="verify_ssl"),
        }
        return cleaned, ({"password": password} if password else {})

    @classmethod
    def _check_credentials(cls, *, username: str, password: str) -> None:
        if password and not username:
            raise InvalidInput("A password needs the user name it belongs to.")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            url=settings["url"],
            username=settings.get("username", ""),
            password=secrets.get("password", ""),
            verify=bool(settings.get("verify_ssl", True)),
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.WEBDAV_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``WEBDAV_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``WEBDAV_INGEST_*``) signs in with the same account."""
        password = django_settings.WEBDAV_PASSWORD
        return EnvironmentDestination(
            name="WebDAV (environment)",
            settings={
                "url": django_settings.WEBDAV_URL,
                "folder": django_settings.WEBDAV_FOLDER,
                "username": django_settings.WEBDAV_USERNAME,
                "verify_ssl": django_settings.WEBDAV_VERIFY_SSL,
            },
            secrets={"password": password} if password else {},
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        try:
            resource = self._client.stat(path, self.stat_properties)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"look at {path}") from None
        if resource is None:
            return None
        if resource.is_folder:
            # Writing over it (MOVE with Overwrite) would delete the folder with all inside.
            raise DeliveryFailed(f"{path} is a folder on the {self.label} server; no file can take its name.")
        return RemoteFile(
            path=path,
            size=resource.size,
            sha256=self._sha256_of(resource),
            remote_id=self._client.url(path),
            version=resource.etag,
        )

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        folder, _, _name = path.rpartition("/")
        temporary = "/".join(part for part in (folder, _temporary_name(path, local.sha256)) if part)
        try:
            self._client.make_folders(folder)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"make the folder {folder}") from None
        try:
            with local.path.open("rb") as body:
                self._client.put(temporary, body, headers=self._upload_headers(local))
            # Where the server keeps it, the hash makes the next look-before-write exact.
            self._client.set_property(temporary, HASH_PROPERTY, local.sha256)
            self._client.move(temporary, path, overwrite=True)
        except WebDavError as exc:
            self._discard(temporary)
            raise self._translated(exc, doing=f"write {path}") from None
        landed = self.stat(path)
        if landed is None or landed.size != local.size or landed.sha256 not in (None, local.sha256):
            raise DeliveryTemporarilyFailed(
                f"{path} was not found whole on the {self.label} server after the upload."
            )
        return Uploaded(path=path, remote_id=landed.remote_id, remote_version=landed.version)

    def remove(self, path: str) -> None:
        try:
            self._client.delete(path)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"remove {path}") from None

    def check(self, *, folder: str) -> None:
        probe = "/".join(part for part in (folder, f"{TEMPORARY_PREFIX}check-{uuid.uuid4().hex}") if part)
        try:
            # The destination's folder is made as the first delivery would make it.
            self._client.make_folders(folder)
            self._client.put(probe, BytesIO(b""))
        except WebDavError as exc:
            raise self._translated(exc, doing="write a test file") from None
        try:
            self._client.delete(probe)
        except WebDavError:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again: delete {probe} on the "
                f"{self.label} server by hand, and allow the account to delete files."
            ) from None

    # --- Reading a folder (for sources.kinds.remote) -------------------------------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The files and folders directly in ``folder`` (PROPFIND, depth 1)."""
        try:
            children = self._client.children(folder, (LAST_MODIFIED,))
        except WebDavError as exc:
            raise self._translated(exc, doing=f"list {folder or 'the share'}") from None
        return [
            ListedEntry(
                path=path,
                is_folder=resource.is_folder,
                size=-1 if resource.is_folder else resource.size,
                modified=_http_time(resource.properties.get(LAST_MODIFIED.tag, "")),
                version=resource.etag,
            )
            for path, resource in children
        ]

    def read_chunks(self, path: str) -> Iterator[bytes]:
        try:
            yield from self._client.get(path)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"read {path}") from None

    def rename(self, source: str, target: str) -> None:
        try:
            self._client.move(source, target, overwrite=False)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"move {source} to {target}") from None

    def make_folder(self, folder: str) -> None:
        try:
            self._client.make_folders(folder)
        except WebDavError as exc:
            raise self._translated(exc, doing=f"make the folder {folder}") from None

    def close(self) -> None:
        self._client.close()

    # --- What differs between WebDAV servers ---------------------------------------------

    def _upload_headers(self, local: LocalFile) -> dict[str, str]:
        return {"Content-Type": local.content_type}

    def _sha256_of(self, resource: Resource) -> str | None:
        return sha256_or_none(resource.properties.get(HASH_PROPERTY.tag, ""))

    # --- Errors -----------------------------------------------------------------------------

    def _discard(self, temporary: str) -> None:
        """Remove what a failed upload may have left under the temporary name; a retry
        would write over it anyway, but retries end."""
        with contextlib.suppress(WebDavError):
            self._client.delete(temporary)

    def _translated(self, exc: WebDavError, *, doing: str) -> DeliveryFailed:
        """The delivery error for a WebDAV error, decided on its failure and HTTP status."""
        where = f"{self.label} at {urlsplit(self.share).hostname}"
        status = exc.status or 0
        if exc.failure == WebDavFailure.TLS:
            return DestinationMisconfigured(
                f"{where}: the server's certificate is not trusted for its name; fix the certificate, "
                "or turn certificate verification off for this destination."
            )
        if exc.failure in {WebDavFailure.UNREACHABLE, WebDavFailure.TIMEOUT}:
            return DeliveryTemporarilyFailed(f"{where} could not be reached to {doing} ({exc.failure}).")
        if exc.failure == WebDavFailure.REDIRECTED:
            return DestinationMisconfigured(
                f"{where} redirected the request ({status}); give the URL of the share itself."
            )
        if exc.failure == WebDavFailure.BAD_ANSWER:
            return DestinationMisconfigured(
                f"{where} did not answer as a WebDAV server when asked to {doing}."
            )
        if status == 401:
            return DestinationMisconfigured(f"{where} refused the user name or password (401).")
        if status == 403:
            return DestinationMisconfigured(
                f"{where} refused to {doing} (403): the account may not write in that folder."
            )
        if status == 507:
            return DeliveryTemporarilyFailed(
                f"{where} has no space left to {doing} (507); delivering again later."
            )
        if status >= 500 or status in _TEMPORARY_STATUSES:
            return DeliveryTemporarilyFailed(f"{where} could not {doing} for now ({status}).")
        if status in {404, 405, 409}:
            return DestinationMisconfigured(
                f"{where} could not {doing} ({status}): the URL does not lead to a WebDAV folder there."
            )
        if status == 413:
            return DeliveryFailed(f"{where} refused the file as too large (413).")
        return DeliveryFailed(f"{where} refused to {doing} ({status}).")


def _http_time(text: str) -> float | None:
    """An HTTP date (getlastmodified: ``Tue, 03 Dec 2026 17:01:06 GMT``) as POSIX seconds."""
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def sha256_or_none(text: str) -> str | None:
    """``text`` as a SHA-256 in lower-case hex, or None when it is not one."""
    value = text.strip().lower()
    return value if _SHA256.fullmatch(value) else None


def _temporary_name(path: str, sha256: str) -> str:
    """A hidden name in the target folder, the same for the same path and content."""
    digest = hashlib.sha256(f"{path}\n{sha256}".encode()).hexdigest()[:24]
    return f"{TEMPORARY_PREFIX}{digest}.upload"


def _checked_url(url: str, *, what: str) -> tuple[str, int]:
    """The host and port (the scheme's own when none is written) of an http(s) URL without
    credentials, query or fragment; InvalidInput otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in {"http", "https"} or not parts.hostname or port == -1:
        raise InvalidInput(f"{what} must be an http:// or https:// address.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(f"{what} must not carry a user name, password, query or fragment.")
    if any(ord(character) < 32 or character.isspace() for character in url):
        raise InvalidInput(f"{what} must not contain spaces or control characters.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _checked_bool(value: Any, *, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise InvalidInput(f"{what} must be true or false.")
