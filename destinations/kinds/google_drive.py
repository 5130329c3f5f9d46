"""Google Drive, with Google's API client library (google-api-python-client, google-auth).

A destination signs in one of two ways:

- as a person (``use_oauth``): DocuElevate's OAuth client (``GOOGLE_DRIVE_CLIENT_ID`` and
  ``GOOGLE_DRIVE_CLIENT_SECRET``) with a refresh token for one Google account, from the
  environment or a connect page;
- as a service account (its JSON key), writing into a folder shared with it: a service
  account has no storage of its own, so the folder must be in a shared drive.

google-auth gets an access token on first use and again when it expires. The key's own
``token_uri`` is not followed: a key pasted by a user must not send our server anywhere
but Google.

Drive has no paths: a file is a name in a parent folder, and names need not be unique.
The destination's folder id (or the account's My Drive) is the root; the folders of a
remote path are looked up by name below it and made when missing, and a file is the
oldest of that name in its folder. Writing to a path where a file is updates that file
(a new revision); otherwise the file is created. Both are atomic: small files go up in one
request, larger ones in a resumable upload, which Google turns into the file (or the new
revision) only when its last chunk arrives. Files are read from disk one chunk at a time.

The check before writing reads Drive's own checksums: ``sha256Checksum`` where Drive has
worked it out, else ``md5Checksum``, which the kind computes for the local file too.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import httplib2
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
from destinations.kinds.fields import unknown_refuse
from destinations.kinds.oauth import (
    TOKEN_SECRET_NAMES,
    OAuthApp,
    OAuthKind,
    refresh_token_in_use,
    token_secrets_clean,
)
from destinations.kinds.transport import ProviderHttp, provider_http, provider_session, throttle_wait
from destinations.models import DestinationKind
from docuelevate.errors import InvalidInput

# Files up to this size go up in one request, larger ones in a resumable upload of chunks
# of this size (a multiple of 256 KiB, as Google asks).
CHUNK_SIZE = 8 * 1024**2
SCOPE = "https://www.googleapis.com/auth/drive"
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address, not a password
FOLDER_TYPE = "application/vnd.google-apps.folder"
FILE_FIELDS = "id,name,mimeType,size,md5Checksum,sha256Checksum,headRevisionId"
# What a folder's listing asks for: the files' fields, and when Drive last saw each change.
LISTED_FIELDS = f"nextPageToken,files({FILE_FIELDS},modifiedTime)"
# Google's own documents (Docs, Sheets, …) have no bytes to download, only exports.
GOOGLE_APPS_TYPES = "application/vnd.google-apps."
# A download is fetched and handed on in blocks of this size (one ranged request each).
DOWNLOAD_BLOCK = 4 * 1024**2
_FOLDER_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "private_key_id", "private_key", "client_email", "client_id")

# Reasons in Drive's error answers, and what they mean for a delivery. Decided on the
# reason (and the status), never on a message.
_THROTTLED = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "sharingRateLimitExceeded"})
_TEMPORARY = frozenset(
    {"storageQuotaExceeded", "quotaExceeded", "dailyLimitExceeded", "backendError", "internalError"}
)
_MISCONFIGURED = frozenset(
    {
        "insufficientFilePermissions",
        "insufficientPermissions",
        "insufficientParentPermissions",
        "forbidden",
        "domainPolicy",
        "appNotAuthorizedToFile",
        "authError",
        "teamDriveMembershipRequired",
    }
)


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1024**2):
            digest.update(block)
    return digest.hexdigest()


class GoogleDriveKind(OAuthKind):
    """Delivers below one Drive folder (or My Drive), into folders made as needed."""

    name = DestinationKind.GOOGLE_DRIVE
    provider = "Google Drive"
    setting_names = ("folder_id", "folder", "use_oauth")
    flag_settings = {"use_oauth": True}
    multiline_names = ("credentials_json",)
    secret_names = ("credentials_json", *TOKEN_SECRET_NAMES)
    help_texts = {
        "folder_id": "The folder's id, the last part of its address in Drive "
        "(…/drive/folders/1AbC…). Empty: My Drive. Required for a service account.",
        "folder": "A folder below it, e.g. Scans/2024; made when missing. Empty: straight in.",
        "use_oauth": "Sign in as a person (Connect, on the destinations list); untick to sign in as a "
        "service account with its JSON key.",
        "credentials_json": 'Only for a service account: its JSON key, as downloaded ({"type": '
        '"service_account", …}).',
        "refresh_token": "Usually left empty: Connect (on the destinations list) signs in and keeps the "
        "token. Or paste a refresh token issued to this server's app.",
    }

    def __init__(
        self,
        *,
        folder_id: str = "",
        client_id: str = "",
        client_secret: str = "",
        refresh_token: str = "",
        service_account: Mapping[str, Any] | None = None,
        http: ProviderHttp | None = None,
        chunk_size: int = CHUNK_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root_id = folder_id or "root"
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._service_account = dict(service_account) if service_account else None
        self._http = http if http is not None else provider_http()
        self.chunk_size = chunk_size
        self._sleep = sleep
        self._service: Any = None
        self._folders: dict[str, str] = {"": self.root_id}
        # The ids of the files listed or looked at, by path: read and moved by id.
        self._file_ids: dict[str, str] = {}
        # Worked out once per content (its SHA-256), however often it is compared.
        self._md5s: dict[str, str] = {}

    def __repr__(self) -> str:
        how = "service account" if self._service_account else "OAuth"
        return f"<GoogleDriveKind folder={self.root_id!r} {how}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown_refuse(settings, cls.setting_names, what="Google Drive")
        unknown_refuse(secrets, cls.secret_names, what="Google Drive")
        folder_id = str(settings.get("folder_id") or "").strip()
        if folder_id and not _FOLDER_ID.fullmatch(folder_id):
            raise InvalidInput(
                "The folder id is not a Google Drive id (the last part of the folder's address)."
            )
        use_oauth = settings.get("use_oauth", True)
        if not isinstance(use_oauth, bool):
            raise InvalidInput("use_oauth must be true or false.")
        clean_settings = {
            "folder_id": folder_id,
            "folder": str(settings.get("folder") or "").strip().strip("/"),
            "use_oauth": use_oauth,
        }
        if use_oauth:
            # Only what this way of signing in uses is kept: a key left from before goes.
            return clean_settings, token_secrets_clean(secrets)
        key = _service_account_key(secrets.get("credentials_json"))
        if not folder_id:
            raise InvalidInput(
                "A service account needs a folder id: a folder in a shared drive that it may edit "
                "(a service account has no storage of its own)."
            )
        return clean_settings, {"credentials_json": key}

    @classmethod
    def signs_in_with_oauth(cls, settings: Mapping[str, Any]) -> bool:
        return bool(settings.get("use_oauth", True))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        if settings.get("use_oauth", True):
            return cls(
                folder_id=settings.get("folder_id", ""),
                client_id=django_settings.GOOGLE_DRIVE_CLIENT_ID,
                client_secret=django_settings.GOOGLE_DRIVE_CLIENT_SECRET,
                refresh_token=refresh_token_in_use(secrets),
            )
        return cls(folder_id=settings.get("folder_id", ""), service_account=secrets.get("credentials_json"))

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.GOOGLE_DRIVE_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``GOOGLE_DRIVE_*`` variables describe, whether or not deliveries there are
        on: the remote-folder source (``GOOGLE_DRIVE_INGEST_*``) signs in with the same
        account."""
        use_oauth = django_settings.GOOGLE_DRIVE_USE_OAUTH
        secrets: dict[str, Any] = {}
        if use_oauth and django_settings.GOOGLE_DRIVE_REFRESH_TOKEN:
            secrets["refresh_token"] = django_settings.GOOGLE_DRIVE_REFRESH_TOKEN
        elif not use_oauth:
            secrets["credentials_json"] = django_settings.GOOGLE_DRIVE_CREDENTIALS_JSON
        return EnvironmentDestination(
            name="Google Drive (environment)",
            settings={
                "folder_id": django_settings.GOOGLE_DRIVE_FOLDER_ID,
                "folder": "",
                "use_oauth": use_oauth,
            },
            secrets=secrets,
        )

    @classmethod
    def oauth_app(cls, *, redirect_uri: str, session: requests.Session | None = None) -> OAuthApp:
        if not (django_settings.GOOGLE_DRIVE_CLIENT_ID and django_settings.GOOGLE_DRIVE_CLIENT_SECRET):
            raise DestinationMisconfigured(
                "Google Drive is not set up on this server: the operator sets GOOGLE_DRIVE_CLIENT_ID and "
                "GOOGLE_DRIVE_CLIENT_SECRET."
            )
        return OAuthApp(
            provider=cls.provider,
            authorize_url=AUTHORIZE_URL,
            token_url=TOKEN_URL,
            client_id=django_settings.GOOGLE_DRIVE_CLIENT_ID,
            client_secret=django_settings.GOOGLE_DRIVE_CLIENT_SECRET,
            redirect_uri=redirect_uri,
            scopes=(SCOPE,),
            # offline: a refresh token; consent: one every time, not only on the first connection.
            authorize_params={"access_type": "offline", "prompt": "consent"},
            session=session if session is not None else provider_session(),
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        folder, name = _split(path)
        parent = self._folder_id(folder, create=False)
        if parent is None:
            return None
        found = self._child(parent, name, doing=f"look at {path}")
        if found is None:
            return None
        self._file_ids[path.strip("/")] = str(found["id"])
        return _remote_file(path, found)

    def same_content(self, there: RemoteFile, local: LocalFile) -> bool:
        if there.size != local.size:
            return False
        if there.sha256 is not None:
            return there.sha256 == local.sha256
        return bool(there.content_hash) and there.content_hash == f"md5:{self._md5(local)}"

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        from googleapiclient.http import MediaIoBaseUpload

        folder, name = _split(path)
        doing = f"write {path}"
        parent = self._folder_id(folder, create=True)
        assert parent is not None
        existing = self._child(parent, name, doing=doing)
        files = self._drive().files()
        with local.path.open("rb") as handle:
            resumable = local.size > self.chunk_size
            media = MediaIoBaseUpload(
                handle, mimetype=local.content_type, chunksize=self.chunk_size, resumable=resumable
            )
            if existing is None:
                request = files.create(
                    body={"name": name, "parents": [parent]},
                    media_body=media,
                    fields=FILE_FIELDS,
                    supportsAllDrives=True,
                )
            else:
                # A new revision of the file there: the same id, whoever looks at it.
                request = files.update(
                    fileId=existing["id"], media_body=media, fields=FILE_FIELDS, supportsAllDrives=True
                )
            if resumable:
                answer = self._resumable(request, doing=doing, size=local.size)
            else:
                answer = self._call(doing, request.execute)
        landed = _remote_file(path, answer)
        if landed.size != local.size or not self.same_content(landed, local):
            raise DeliveryTemporarilyFailed(f"{path} did not arrive whole in Google Drive.")
        return Uploaded(path=path, remote_id=landed.remote_id, remote_version=landed.version)

    def _resumable(self, request: Any, *, doing: str, size: int) -> Any:
        """Send the chunks of a resumable upload; after a throttled or failed chunk the
        library asks Google how far it got and goes on from there. An upload that never
        finishes (Google asking for the same bytes again and again) is given up."""
        for _chunk in range(size // self.chunk_size + 10):
            _progress, answer = self._call(doing, request.next_chunk)
            if answer is not None:
                return answer
        raise DeliveryTemporarilyFailed(
            f"The resumable upload to Google Drive did not come to an end ({doing})."
        )

    def remove(self, path: str) -> None:
        folder, name = _split(path)
        parent = self._folder_id(folder, create=False)
        found = None if parent is None else self._child(parent, name, doing=f"remove {path}")
        if found is None:
            return
        request = self._drive().files().delete(fileId=found["id"], supportsAllDrives=True)
        try:
            self._call(f"remove {path}", request.execute)
        except _Missing:
            return

    def check(self, *, folder: str) -> None:
        # Writes in the destination's folder (made when missing), as a delivery would.
        parent = self._folder_id(folder, create=True)
        assert parent is not None
        name = f".docuelevate-check-{uuid.uuid4().hex}"
        files = self._drive().files()
        made = self._call(
            "write a test file",
            files.create(
                body={"name": name, "parents": [parent]}, fields="id", supportsAllDrives=True
            ).execute,
        )
        try:
            self._call(
                "remove the test file", files.delete(fileId=made["id"], supportsAllDrives=True).execute
            )
        except DeliveryFailed as exc:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again ({exc.message}): delete {name} from the "
                "folder by hand."
            ) from None

    # --- Reading a folder (the remote-folder source, sources/kinds/remote.py) ---------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The files and folders directly in ``folder`` (a path below the root folder), page
        by page: files.list with ``'<id>' in parents``. A file's version is Drive's
        md5Checksum (new content, a new checksum), else its head revision; its time Drive's
        ``modifiedTime``. Google's own documents, which have no bytes, are listed without a
        size and so never taken."""
        folder = folder.strip("/")
        doing = f"list {folder or 'the folder'}"
        parent = self._folder_id(folder, create=False)
        if parent is None:
            raise DestinationMisconfigured(
                f"There is no folder {folder} in the Google Drive folder {self.root_id}."
            )
        entries: list[ListedEntry] = []
        page_token: str | None = None
        while True:
            request = (
                self._drive()
                .files()
                .list(
                    q=f"'{_quoted(parent)}' in parents and trashed = false",
                    fields=LISTED_FIELDS,
                    pageSize=1000,
                    pageToken=page_token,
                    spaces="drive",
                    supportsAllDrives=True,
                    includeItemsFromAllDrives=True,
                )
            )
            try:
                answer = self._call(doing, request.execute)
            except _Missing:
                raise DestinationMisconfigured(
                    f"The Google Drive folder {self.root_id} was not found: check the folder id and that it "
                    "is shared with the account DocuElevate signs in as."
                ) from None
            for found in answer.get("files") or []:
                path = "/".join(part for part in (folder, str(found["name"])) if part)
                mime = str(found.get("mimeType") or "")
                if mime == FOLDER_TYPE:
                    self._folders.setdefault(path, str(found["id"]))
                    entries.append(ListedEntry(path=path, is_folder=True, size=-1, modified=None))
                    continue
                # Names need not be unique in Drive; the first listed keeps the path.
                self._file_ids.setdefault(path, str(found["id"]))
                modified = found.get("modifiedTime")
                entries.append(
                    ListedEntry(
                        path=path,
                        is_folder=False,
                        size=-1 if mime.startswith(GOOGLE_APPS_TYPES) else int(found.get("size") or 0),
                        modified=datetime.fromisoformat(modified).timestamp() if modified else None,
                        version=str(found.get("md5Checksum") or found.get("headRevisionId") or ""),
                    )
                )
            page_token = answer.get("nextPageToken")
            if not page_token:
                return entries

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The file at ``path`` (files.get_media), a block at a time."""
        import io

        from googleapiclient.http import MediaIoBaseDownload

        doing = f"read {path}"
        request = (
            self._drive().files().get_media(fileId=self._file_id(path, doing=doing), supportsAllDrives=True)
        )
        buffer = io.BytesIO()
        download = MediaIoBaseDownload(buffer, request, chunksize=DOWNLOAD_BLOCK)
        done = False
        while not done:
            _progress, done = self._call(doing, download.next_chunk)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    def rename(self, source: str, target: str) -> None:
        """files.update: the file leaves its parent for the target's (addParents,
        removeParents) under the target's name; its id stays."""
        doing = f"move {source} to {target}"
        from_folder, _name = _split(source)
        to_folder, to_name = _split(target)
        old_parent = self._folder_id(from_folder, create=False)
        new_parent = self._folder_id(to_folder, create=True)
        if old_parent is None or new_parent is None:  # the folder went meanwhile
            raise _Missing(f"Google Drive has nothing there to {doing}.")
        request = (
            self._drive()
            .files()
            .update(
                fileId=self._file_id(source, doing=doing),
                addParents=new_parent,
                removeParents=old_parent,
                body={"name": to_name},
                fields="id",
                supportsAllDrives=True,
            )
        )
        self._call(doing, request.execute)
        self._file_ids[target.strip("/")] = self._file_ids.pop(source.strip("/"))

    def make_folder(self, folder: str) -> None:
        self._folder_id(folder.strip("/"), create=True)

    def _file_id(self, path: str, *, doing: str) -> str:
        """The id of the file at ``path``: as listed or looked at, else looked up by name."""
        path = path.strip("/")
        if path not in self._file_ids:
            folder, name = _split(path)
            parent = self._folder_id(folder, create=False)
            found = None if parent is None else self._child(parent, name, doing=doing)
            if found is None:
                raise _Missing(f"Google Drive has nothing there to {doing}.")
            self._file_ids[path] = str(found["id"])
        return self._file_ids[path]

    def close(self) -> None:
        self._http.close()

    # --- Helpers --------------------------------------------------------------------------

    def _drive(self) -> Any:
        """The Drive v3 client, made on first use (from the library's bundled description
        of the API: nothing is fetched to make it)."""
        if self._service is None:
            import google_auth_httplib2
            from googleapiclient.discovery import build

            authorized = google_auth_httplib2.AuthorizedHttp(self._credentials(), http=self._http)
            self._service = build(
                "drive", "v3", http=authorized, cache_discovery=False, static_discovery=True
            )
        return self._service

    def _credentials(self) -> Any:
        if self._service_account is not None:
            from google.oauth2 import service_account

            try:
                return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]  # untyped in google-auth
                    {**self._service_account, "token_uri": TOKEN_URL}, scopes=[SCOPE]
                )
            except (ValueError, KeyError):
                raise DestinationMisconfigured(
                    "The service account's key cannot be used; give its JSON key file again."
                ) from None
        if not (self.client_id and self._client_secret):
            raise DestinationMisconfigured(
                "Google Drive is not set up on this server: the operator sets GOOGLE_DRIVE_CLIENT_ID and "
                "GOOGLE_DRIVE_CLIENT_SECRET."
            )
        if not self._refresh_token:
            raise DestinationMisconfigured(
                "The Google Drive destination is not connected to an account yet: connect it on the "
                "destinations page (or set GOOGLE_DRIVE_REFRESH_TOKEN)."
            )
        from google.oauth2.credentials import Credentials

        return Credentials(  # type: ignore[no-untyped-call]  # untyped in google-auth
            token=None,
            refresh_token=self._refresh_token,
            token_uri=TOKEN_URL,
            client_id=self.client_id,
            client_secret=self._client_secret,
        )

    def _folder_id(self, folder: str, *, create: bool) -> str | None:
        """The id of ``folder`` (a path below the root), made when missing if ``create``;
        None when it is missing and not to be made."""
        if folder in self._folders:
            return self._folders[folder]
        parent_path, _, name = folder.rpartition("/")
        parent = self._folder_id(parent_path, create=create)
        if parent is None:
            return None
        found = self._child(parent, name, doing=f"look for the folder {folder}", folder=True)
        if found is None:
            if not create:
                return None
            request = (
                self._drive()
                .files()
                .create(
                    body={"name": name, "mimeType": FOLDER_TYPE, "parents": [parent]},
                    fields="id",
                    supportsAllDrives=True,
                )
            )
            found = self._call(f"make the folder {folder}", request.execute)
        self._folders[folder] = str(found["id"])
        return self._folders[folder]

    def _child(self, parent: str, name: str, *, doing: str, folder: bool = False) -> dict[str, Any] | None:
        """The oldest file (or folder) called ``name`` in ``parent``, if any."""
        kind = f"mimeType = '{FOLDER_TYPE}'" if folder else f"mimeType != '{FOLDER_TYPE}'"
        query = f"'{_quoted(parent)}' in parents and name = '{_quoted(name)}' and {kind} and trashed = false"
        request = (
            self._drive()
            .files()
            .list(
                q=query,
                fields=f"files({FILE_FIELDS})",
                orderBy="createdTime",
                pageSize=1,
                spaces="drive",
                supportsAllDrives=True,
                includeItemsFromAllDrives=True,
            )
        )
        try:
            answer = self._call(doing, request.execute)
        except _Missing:
            # The root folder itself is not there (or not shared with this account).
            raise DestinationMisconfigured(
                f"The Google Drive folder {self.root_id} was not found: check the folder id and that it is "
                "shared with the account DocuElevate signs in as."
            ) from None
        found = answer.get("files") or []
        return dict(found[0]) if found else None

    def _md5(self, local: LocalFile) -> str:
        if local.sha256 not in self._md5s:
            self._md5s[local.sha256] = md5_of(local.path)
        return self._md5s[local.sha256]

    def _call(self, doing: str, method: Callable[..., Any], *args: Any) -> Any:
        """A request of the library, throttling waited out briefly, every error translated.
        The library's own retries are off (``num_retries`` 0)."""
        from googleapiclient.errors import HttpError

        for attempt in itertools.count():
            try:
                return method(*args)
            except HttpError as exc:
                status, reasons = _status_and_reasons(exc)
                if status == 429 or (status == 403 and reasons & _THROTTLED):
                    wait = throttle_wait(exc.resp.get("retry-after"), attempt=attempt)
                    if wait is not None:
                        self._sleep(wait)
                        continue
                raise _translated(exc, doing=doing, root=self.root_id) from None
            except Exception as exc:
                raise _translated(exc, doing=doing, root=self.root_id) from None
        raise AssertionError("unreachable")  # pragma: no cover


class _Missing(DeliveryFailed):
    """Drive answered 404: the file (or the folder asked about) is not there."""


def _service_account_key(value: Any) -> dict[str, Any]:
    """A service account's key, from its JSON text or the object; InvalidInput otherwise
    (naming no part of it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or value.get("type") != "service_account":
        raise InvalidInput("Signing in as a service account needs its JSON key file, as Google made it.")
    missing = [name for name in ("private_key", "client_email") if not value.get(name)]
    if missing:
        raise InvalidInput(f"The service account's key lacks {', '.join(missing)}.")
    return {name: value[name] for name in _SERVICE_ACCOUNT_FIELDS if name in value}


def _split(path: str) -> tuple[str, str]:
    folder, _, name = path.strip("/").rpartition("/")
    return folder, name


def _quoted(text: str) -> str:
    """``text`` inside single quotes of a Drive query."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _remote_file(path: str, found: Mapping[str, Any]) -> RemoteFile:
    md5 = found.get("md5Checksum")
    return RemoteFile(
        path=path,
        size=int(found.get("size") or 0),
        sha256=str(found["sha256Checksum"]).lower() if found.get("sha256Checksum") else None,
        remote_id=str(found.get("id", "")),
        version=str(found.get("headRevisionId") or ""),
        content_hash=f"md5:{md5}" if md5 else "",
    )


def _status_and_reasons(exc: Any) -> tuple[int, set[str]]:
    status = int(getattr(exc.resp, "status", 0) or 0)
    try:
        errors = json.loads(exc.content.decode("utf-8"))["error"].get("errors") or []
        reasons = {str(error.get("reason")) for error in errors if isinstance(error, dict)}
    except (ValueError, KeyError, TypeError, AttributeError):
        reasons = set()
    return status, reasons


def _translated(exc: Exception, *, doing: str, root: str) -> DeliveryFailed:
    """The delivery error for a library error, decided on its class, status and reasons."""
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    if isinstance(exc, DeliveryFailed):
        return exc
    if isinstance(exc, RefreshError):
        if exc.retryable:
            return DeliveryTemporarilyFailed(
                "Google could not give an access token for now; trying again later."
            )
        return DestinationMisconfigured(
            "Google refused the sign-in: the refresh token was revoked or has expired, the client id or "
            "secret is wrong, or the service account's key was deleted; connect the destination again."
        )
    if isinstance(exc, TransportError | httplib2.HttpLib2Error | OSError):
        return DeliveryTemporarilyFailed(
            f"Google Drive could not be reached to {doing} ({exc.__class__.__name__})."
        )
    if not isinstance(exc, HttpError):
        raise exc
    status, reasons = _status_and_reasons(exc)
    reason = ", ".join(sorted(reasons)) or f"HTTP {status}"
    if status == 404:
        return _Missing(f"Google Drive has nothing there to {doing}.")
    if status in {429, 408} or status >= 500 or reasons & (_THROTTLED | _TEMPORARY):
        return DeliveryTemporarilyFailed(f"Google Drive could not {doing} for now ({reason}).")
    if status == 401 or reasons & _MISCONFIGURED or status == 403:
        return DestinationMisconfigured(
            f"Google Drive refused to {doing} ({reason}): the account may not write in folder {root}."
        )
    return DeliveryFailed(f"Google Drive refused to {doing} ({reason}).")
