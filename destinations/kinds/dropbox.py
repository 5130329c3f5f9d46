"""Dropbox, with Dropbox's official Python SDK.

A destination signs in with DocuElevate's Dropbox app (``DROPBOX_APP_KEY`` and
``DROPBOX_APP_SECRET``) and a refresh token for one Dropbox account, from the environment
or a connect page; the SDK gets a short-lived access token from it on first use and again
when that expires.

Dropbox writes atomically: a file appears whole under its name when its upload (one
request up to ``chunk_size``, else an upload session of chunks committed by its last
call) is finished, or not at all. So no temporary name is needed; an upload cut short
leaves an unfinished session, which Dropbox drops after a week. Files are read from disk
one chunk at a time.

Dropbox hashes content its own way (``content_hash``: the SHA-256 of the SHA-256 of every
4 MiB block); ``dropbox_content_hash`` works it out for the local file, so the check
before writing needs no download.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any, Self, TypeVar

import requests
from django.conf import settings as django_settings

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    EnvironmentDestination,
    ListedEntry,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.oauth import (
    TOKEN_SECRET_NAMES,
    OAuthApp,
    OAuthKind,
    refresh_token_in_use,
)
from destinations.kinds.transport import provider_session, throttle_wait
from destinations.models import DestinationKind

# Files up to this size go up in one request, larger ones in chunks of this size: a
# multiple of 4 MiB, as Dropbox asks of session chunks.
CHUNK_SIZE = 8 * 1024**2
CONTENT_HASH_BLOCK = 4 * 1024**2
# A download is handed on in blocks of this size, so a large file never sits in memory whole.
DOWNLOAD_BLOCK = 256 * 1024
AUTHORIZE_URL = "https://www.dropbox.com/oauth2/authorize"
TOKEN_URL = "https://api.dropboxapi.com/oauth2/token"  # noqa: S105 - an address, not a password

_NOT_SET_UP = (
    "Dropbox is not set up on this server: the operator sets DROPBOX_APP_KEY and DROPBOX_APP_SECRET."
)

# Tags of Dropbox's route errors (the ``.tag`` of each union along the error), and what
# they mean for a delivery. Decided on the tags, never on a message.
_NOT_FOUND = frozenset({"not_found", "not_file", "not_folder"})
_TEMPORARY = frozenset(
    {
        "insufficient_space",  # the account is full; someone may make room
        "too_many_write_operations",
        "too_many_requests",
        "internal_error",
        "incorrect_offset",  # an upload session out of step: start again
        "closed",
        "not_closed",
        "concurrent_session_invalid_offset",
        "concurrent_session_not_closed",
    }
)
_MISCONFIGURED = frozenset({"no_write_permission", "team_folder", "restricted_content", "access_denied"})

T = TypeVar("T")


def dropbox_content_hash(path: Path) -> str:
    """Dropbox's ``content_hash`` of a local file, read 4 MiB at a time."""
    overall = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CONTENT_HASH_BLOCK):
            overall.update(hashlib.sha256(block).digest())
    return overall.hexdigest()


class DropboxKind(OAuthKind):
    """Delivers into one Dropbox account, below the destination's folder."""

    name = DestinationKind.DROPBOX
    provider = "Dropbox"
    setting_names = ("folder",)
    secret_names = TOKEN_SECRET_NAMES
    help_texts = {
        "folder": "Folder in the Dropbox (or in the app's own folder), e.g. /Documents/Scans. "
        "Empty: the top.",
        "refresh_token": "Usually left empty: Connect (on the destinations list) signs in and keeps the "
        "token. Or paste a refresh token issued to this server's app.",
    }

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        refresh_token: str,
        session: requests.Session | None = None,
        chunk_size: int = CHUNK_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app_key = app_key
        self._app_secret = app_secret
        self._refresh_token = refresh_token
        self._session = session if session is not None else provider_session()
        self.chunk_size = chunk_size
        self._sleep = sleep
        self._client: Any = None
        # Worked out once per content (its SHA-256), however often it is compared.
        self._hashes: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<DropboxKind app={self.app_key!r}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            app_key=django_settings.DROPBOX_APP_KEY,
            app_secret=django_settings.DROPBOX_APP_SECRET,
            refresh_token=refresh_token_in_use(secrets),
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.DROPBOX_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``DROPBOX_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``DROPBOX_INGEST_*``) signs in with the same account."""
        token = django_settings.DROPBOX_REFRESH_TOKEN
        return EnvironmentDestination(
            name="Dropbox (environment)",
            settings={"folder": django_settings.DROPBOX_FOLDER},
            secrets={"refresh_token": token} if token else {},
        )

    @classmethod
    def oauth_app(cls, *, redirect_uri: str, session: requests.Session | None = None) -> OAuthApp:
        if not (django_settings.DROPBOX_APP_KEY and django_settings.DROPBOX_APP_SECRET):
            raise DestinationMisconfigured(_NOT_SET_UP)
        return OAuthApp(
            provider=cls.provider,
            authorize_url=AUTHORIZE_URL,
            token_url=TOKEN_URL,
            client_id=django_settings.DROPBOX_APP_KEY,
            client_secret=django_settings.DROPBOX_APP_SECRET,
            redirect_uri=redirect_uri,
            # A refresh token, not only a four-hour access token.
            authorize_params={"token_access_type": "offline"},
            session=session if session is not None else provider_session(),
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        import dropbox

        try:
            metadata = self._call(f"look at {path}", self._dropbox().files_get_metadata, _remote(path))
        except _Missing:
            return None
        if not isinstance(metadata, dropbox.files.FileMetadata):
            # A folder under the name: nothing to compare; the upload will be refused.
            return RemoteFile(path=path, size=0, sha256=None, remote_id=str(getattr(metadata, "id", "")))
        return RemoteFile(
            path=path,
            size=int(metadata.size),
            sha256=None,
            remote_id=str(metadata.id),
            version=str(metadata.rev),
            content_hash=str(metadata.content_hash or ""),
        )

    def same_content(self, there: RemoteFile, local: LocalFile) -> bool:
        return (
            bool(there.content_hash) and there.size == local.size and there.content_hash == self._hash(local)
        )

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        import dropbox

        client = self._dropbox()
        overwrite = dropbox.files.WriteMode.overwrite
        with local.path.open("rb") as handle:
            if local.size <= self.chunk_size:
                metadata = self._call(
                    f"write {path}",
                    client.files_upload,
                    handle.read(),
                    _remote(path),
                    mode=overwrite,
                    mute=True,
                )
            else:
                metadata = self._upload_in_chunks(client, handle, local, path)
        if int(metadata.size) != local.size or metadata.content_hash != self._hash(local):
            raise DeliveryTemporarilyFailed(f"{path} did not arrive whole in Dropbox.")
        return Uploaded(path=path, remote_id=str(metadata.id), remote_version=str(metadata.rev))

    def _upload_in_chunks(self, client: Any, handle: Any, local: LocalFile, path: str) -> Any:
        """An upload session: the first chunk starts it, the middle ones are appended, the
        last one commits the file under ``path``, atomically."""
        import dropbox

        doing = f"write {path}"
        start = self._call(doing, client.files_upload_session_start, handle.read(self.chunk_size))
        cursor = dropbox.files.UploadSessionCursor(session_id=start.session_id, offset=handle.tell())
        while local.size - cursor.offset > self.chunk_size:
            self._call(doing, client.files_upload_session_append_v2, handle.read(self.chunk_size), cursor)
            cursor.offset = handle.tell()
        commit = dropbox.files.CommitInfo(
            path=_remote(path), mode=dropbox.files.WriteMode.overwrite, mute=True
        )
        return self._call(doing, client.files_upload_session_finish, handle.read(), cursor, commit)

    def remove(self, path: str) -> None:
        try:
            self._call(f"remove {path}", self._dropbox().files_delete_v2, _remote(path))
        except _Missing:
            return

    def check(self, *, folder: str) -> None:
        import dropbox

        probe = "/".join(part for part in (folder, f".docuelevate-check-{uuid.uuid4().hex}") if part)
        client = self._dropbox()
        # A write, not a question: Dropbox says whether the app may write there only then.
        self._call(
            "write a test file", client.files_upload, b"", _remote(probe), mode=dropbox.files.WriteMode.add
        )
        try:
            self._call("remove the test file", client.files_delete_v2, _remote(probe))
        except DeliveryFailed as exc:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again ({exc.message}): delete {probe} from "
                "the Dropbox by hand."
            ) from None

    # --- Reading a folder (the remote-folder source, sources/kinds/remote.py) ---------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The files and folders directly in ``folder``, page by page. A file's version is
        its ``content_hash`` (new content, a new hash), its time Dropbox's ``server_modified``
        (when the upload was finished there; the device's own clock does not count)."""
        import dropbox

        client = self._dropbox()
        doing = f"list {folder or 'the top folder'}"
        # "" is the top of the Dropbox in list_folder, where other routes take "/".
        try:
            page = self._call(doing, client.files_list_folder, _remote(folder) if folder.strip("/") else "")
        except _Missing:
            raise DestinationMisconfigured(f"There is no folder {folder} in the Dropbox.") from None
        entries: list[ListedEntry] = []
        while True:
            for item in page.entries:
                # Named as asked, not by path_display: the folder's casing stays the caller's.
                path = "/".join(part for part in (folder.strip("/"), str(item.name)) if part)
                if isinstance(item, dropbox.files.FolderMetadata):
                    entries.append(ListedEntry(path=path, is_folder=True, size=-1, modified=None))
                elif isinstance(item, dropbox.files.FileMetadata) and item.is_downloadable is not False:
                    entries.append(
                        ListedEntry(
                            path=path,
                            is_folder=False,
                            size=int(item.size),
                            # The SDK gives naive datetimes in UTC.
                            modified=item.server_modified.replace(tzinfo=UTC).timestamp(),
                            version=str(item.content_hash or item.rev),
                        )
                    )
            if not page.has_more:
                return entries
            page = self._call(doing, client.files_list_folder_continue, page.cursor)

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The file at ``path``, streamed a block at a time."""
        doing = f"read {path}"
        _metadata, response = self._call(doing, self._dropbox().files_download, _remote(path))
        try:
            yield from response.iter_content(DOWNLOAD_BLOCK)
        except requests.RequestException as exc:
            raise _translated(exc, doing=doing) from None
        finally:
            response.close()

    def rename(self, source: str, target: str) -> None:
        self._call(
            f"move {source} to {target}", self._dropbox().files_move_v2, _remote(source), _remote(target)
        )

    def make_folder(self, folder: str) -> None:
        """``folder`` and its parents; one that is there already is fine."""
        try:
            self._call(f"make the folder {folder}", self._dropbox().files_create_folder_v2, _remote(folder))
        except _Exists:
            return

    def close(self) -> None:
        self._session.close()

    # --- Helpers --------------------------------------------------------------------------

    def _dropbox(self) -> Any:
        """The SDK's client, made on first use. Its own retries are off: throttling is
        waited for here (``_call``), everything else is the delivery's to retry."""
        if self._client is None:
            if not (self.app_key and self._app_secret):
                raise DestinationMisconfigured(_NOT_SET_UP)
            if not self._refresh_token:
                raise DestinationMisconfigured(
                    "The Dropbox destination is not connected to an account yet: connect it on the "
                    "destinations page (or set DROPBOX_REFRESH_TOKEN)."
                )
            import dropbox

            self._client = dropbox.Dropbox(
                oauth2_refresh_token=self._refresh_token,
                app_key=self.app_key,
                app_secret=self._app_secret,
                session=self._session,
                max_retries_on_error=0,
                max_retries_on_rate_limit=0,
                user_agent="DocuElevate",
            )
        return self._client

    def _hash(self, local: LocalFile) -> str:
        if local.sha256 not in self._hashes:
            self._hashes[local.sha256] = dropbox_content_hash(local.path)
        return self._hashes[local.sha256]

    def _call(self, doing: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method`` of the SDK, throttling waited out briefly, every error translated."""
        from dropbox.exceptions import RateLimitError

        for attempt in itertools.count():
            try:
                return method(*args, **kwargs)
            except RateLimitError as exc:
                wait = throttle_wait(exc.backoff, attempt=attempt)
                if wait is None:
                    raise DeliveryTemporarilyFailed(
                        f"Dropbox asked to slow down while trying to {doing}; trying again later."
                    ) from None
                self._sleep(wait)
            except Exception as exc:
                raise _translated(exc, doing=doing) from None
        raise AssertionError("unreachable")  # pragma: no cover


class _Missing(DeliveryFailed):
    """Nothing at the path (a lookup's not_found): a plain answer for stat and remove."""


class _Exists(DeliveryFailed):
    """Something at the path already (a write's ``path/conflict``): a plain answer for
    make_folder, and what it always was for the rest (nothing a retry changes)."""


def _remote(path: str) -> str:
    return "/" + path.strip("/")


def _error_tags(error: Any) -> Iterator[str]:
    """The tags along a Dropbox route error: ``path`` → ``reason`` → ``insufficient_space``.

    Errors are stone unions (a ``_tag`` and a ``_value``, the SDK's own representation);
    a value may be another union or a struct whose ``reason`` or ``path`` is one.
    """
    seen = 0
    while error is not None and seen < 8:
        seen += 1
        tag = getattr(error, "_tag", None)
        if tag is None:
            error = getattr(error, "reason", None) or getattr(error, "path", None)
            continue
        yield str(tag)
        error = getattr(error, "_value", None)


def _translated(exc: Exception, *, doing: str) -> DeliveryFailed:
    """The delivery error for an SDK error, decided on its class and Dropbox's error tags."""
    from dropbox.exceptions import (
        ApiError,
        AuthError,
        BadInputError,
        HttpError,
        InternalServerError,
        PathRootError,
    )

    if isinstance(exc, DeliveryFailed):
        return exc
    if isinstance(exc, requests.RequestException):
        return DeliveryTemporarilyFailed(
            f"Dropbox could not be reached to {doing} ({exc.__class__.__name__})."
        )
    if isinstance(exc, AuthError):
        return DestinationMisconfigured(
            "Dropbox refused the sign-in: the refresh token was revoked or has expired, or the app key or "
            "secret is wrong; connect the destination again."
        )
    if isinstance(exc, BadInputError):
        return DestinationMisconfigured(
            f"Dropbox refused the request to {doing} as malformed; check DROPBOX_APP_KEY and "
            "DROPBOX_APP_SECRET."
        )
    if isinstance(exc, PathRootError):
        return DestinationMisconfigured(
            f"Dropbox refused to {doing}: the account's root folder is not available."
        )
    if isinstance(exc, InternalServerError):
        return DeliveryTemporarilyFailed(f"Dropbox could not {doing} for now (HTTP {exc.status_code}).")
    if isinstance(exc, ApiError):
        tags = list(_error_tags(exc.error))
        reason = " / ".join(tags) or "an error"
        if _NOT_FOUND & set(tags[:2]) and not {"lookup_failed"} & set(tags):
            return _Missing(f"Nothing at the path to {doing}.")
        if tags[:2] == ["path", "conflict"]:
            return _Exists(f"Dropbox refused to {doing}: something is there already ({reason}).")
        if _TEMPORARY & set(tags):
            return DeliveryTemporarilyFailed(f"Dropbox could not {doing} for now ({reason}).")
        if _MISCONFIGURED & set(tags):
            return DestinationMisconfigured(
                f"Dropbox refused to {doing} ({reason}); check the folder and the app's access."
            )
        if "lookup_failed" in tags:
            return DeliveryTemporarilyFailed(
                f"The Dropbox upload session was lost while trying to {doing} ({reason})."
            )
        return DeliveryFailed(f"Dropbox refused to {doing} ({reason}).")
    if isinstance(exc, HttpError):
        status = int(exc.status_code or 0)
        if status == 429 or status >= 500:
            return DeliveryTemporarilyFailed(f"Dropbox could not {doing} for now (HTTP {status}).")
        if status in {401, 403}:
            return DestinationMisconfigured(f"Dropbox refused to {doing} (HTTP {status}).")
        return DeliveryFailed(f"Dropbox refused to {doing} (HTTP {status}).")
    raise exc
