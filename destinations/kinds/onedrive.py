"""OneDrive (personal, and for work or school), through Microsoft Graph, signed in with MSAL.

MSAL, Microsoft's own library, turns the destination's refresh token into an access
token. Graph itself is spoken over requests, a handful of documented calls: Microsoft's
Graph SDK would bring an async HTTP stack and a code generator's runtime (kiota, httpx,
azure-core) into every worker for five routes, and its upload task wraps the same session
calls without making them any safer.

Microsoft replaces its refresh tokens on every use, and an old one lapses 90 days after it
was issued: the kind hands the new one on (``on_secrets_renewed``) to be stored sealed in
place of the old (see ``destinations.kinds.oauth``).

Writes are atomic: small files go up in one request, larger ones in an upload session
whose chunks Graph keeps aside until the last one arrives, when the file appears (or
replaces the one there) whole. So no temporary name is needed; a session cut short
expires by itself. Files are read from disk one chunk at a time, and the folders of a path
are made when missing.

The check before writing reads Graph's hashes: ``sha256Hash`` where OneDrive gives one
(personal accounts), else ``quickXorHash``, which ``quickxorhash`` works out for the local
file the same way.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

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

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
# MSAL adds offline_access (a refresh token), openid and profile by itself.
SCOPES = ("Files.ReadWrite",)
# Graph takes files up to 4 MiB in one request; larger ones go in chunks, each a multiple
# of 320 KiB (10 MiB here), as Graph asks.
SIMPLE_UPLOAD_LIMIT = 4 * 1024**2
CHUNK_SIZE = 32 * 320 * 1024
_TENANT_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
ITEM_FIELDS = "id,name,size,eTag,cTag,file,folder"
# What a folder's listing asks for: the item's fields, and when OneDrive last saw it change.
LISTED_FIELDS = f"{ITEM_FIELDS},lastModifiedDateTime"
# A download is handed on in blocks of this size, so a large file never sits in memory whole.
DOWNLOAD_BLOCK = 256 * 1024

_NOT_SET_UP = (
    "OneDrive is not set up on this server: the operator sets ONEDRIVE_CLIENT_ID and ONEDRIVE_CLIENT_SECRET."
)

# MSAL's error codes (RFC 6749's) that will not pass by waiting.
_TOKEN_REFUSED = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "interaction_required",
        "consent_required",
        "invalid_request",
        "invalid_scope",
    }
)
# Graph's error codes for a full drive, which someone may empty.
_QUOTA = frozenset({"quotaLimitReached", "insufficientStorage"})

_QUICKXOR_WIDTH = 160  # bits, and so the row length in bytes the fold below works on
_QUICKXOR_SHIFT = 11
_QUICKXOR_ROWS = 4096  # rows of 160 bytes read at a time: 640 KiB
_MASK_160 = (1 << 160) - 1


def quickxorhash(path: Path) -> str:
    """Microsoft's quickXorHash of a local file (base64, as Graph shows it).

    Each byte, at position p, is XORed into a 160-bit register rotated left by 11·p bits,
    and the length is XORed into its last 8 bytes. The rotation repeats every 160 bytes,
    so the file is read as rows of 160 bytes, XORed together first (a few big-integer
    folds per block, fast even for large files), and each column's byte is rotated once.
    """
    columns = 0
    length = 0
    block_size = _QUICKXOR_WIDTH * _QUICKXOR_ROWS
    with path.open("rb") as handle:
        while block := handle.read(block_size):
            length += len(block)
            padded = block.ljust(block_size, b"\0")  # zeros change no XOR
            value = int.from_bytes(padded, "little")
            bits = block_size * 8
            while bits > _QUICKXOR_WIDTH * 8:
                bits //= 2
                value = (value >> bits) ^ (value & ((1 << bits) - 1))
            columns ^= value
    register = 0
    for column in range(_QUICKXOR_WIDTH):
        byte = (columns >> (8 * column)) & 0xFF
        if byte:
            shift = (_QUICKXOR_SHIFT * column) % _QUICKXOR_WIDTH
            register ^= ((byte << shift) | (byte >> (_QUICKXOR_WIDTH - shift))) & _MASK_160
    digest = bytearray(register.to_bytes(20, "little"))
    for index, byte in enumerate(length.to_bytes(8, "little")):
        digest[12 + index] ^= byte
    return base64.b64encode(bytes(digest)).decode("ascii")


class OneDriveKind(OAuthKind):
    """Delivers into one person's OneDrive, below the destination's folder."""

    name = DestinationKind.ONEDRIVE
    provider = "OneDrive"
    setting_names = ("folder",)
    secret_names = TOKEN_SECRET_NAMES
    help_texts = {
        "folder": "Folder in the OneDrive, e.g. /Documents/Scans; made when missing. Empty: the top.",
        "refresh_token": "Usually left empty: Connect (on the destinations list) signs in and keeps the "
        "token. Or paste a refresh token issued to this server's app.",
    }

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant: str = "common",
        refresh_token: str = "",
        given_refresh_token: str | None = None,
        session: requests.Session | None = None,
        chunk_size: int = CHUNK_SIZE,
        simple_upload_limit: int = SIMPLE_UPLOAD_LIMIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.tenant = tenant or "common"
        # The token in use, and the destination's given one that a renewed token supersedes.
        self._refresh_token = refresh_token
        self._given_refresh_token = refresh_token if given_refresh_token is None else given_refresh_token
        self._session = session if session is not None else provider_session()
        self.chunk_size = chunk_size
        self.simple_upload_limit = simple_upload_limit
        self._sleep = sleep
        self._access_token = ""
        self._msal: Any = None
        self._folders: set[str] = {""}
        # Worked out once per content (its SHA-256), however often it is compared.
        self._hashes: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<OneDriveKind client={self.client_id!r} tenant={self.tenant!r}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            client_id=django_settings.ONEDRIVE_CLIENT_ID,
            client_secret=django_settings.ONEDRIVE_CLIENT_SECRET,
            tenant=django_settings.ONEDRIVE_TENANT_ID,
            refresh_token=refresh_token_in_use(secrets),
            given_refresh_token=str(secrets.get("refresh_token") or ""),
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.ONEDRIVE_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``ONEDRIVE_*`` variables describe, whether or not deliveries there are
        on: the remote-folder source (``ONEDRIVE_INGEST_*``) signs in with the same account."""
        token = django_settings.ONEDRIVE_REFRESH_TOKEN
        return EnvironmentDestination(
            name="OneDrive (environment)",
            settings={"folder": django_settings.ONEDRIVE_FOLDER_PATH},
            secrets={"refresh_token": token} if token else {},
        )

    @classmethod
    def oauth_app(cls, *, redirect_uri: str, session: requests.Session | None = None) -> OAuthApp:
        client_id, secret = django_settings.ONEDRIVE_CLIENT_ID, django_settings.ONEDRIVE_CLIENT_SECRET
        if not (client_id and secret):
            raise DestinationMisconfigured(_NOT_SET_UP)
        tenant = _tenant(django_settings.ONEDRIVE_TENANT_ID)
        return OAuthApp(
            provider=cls.provider,
            authorize_url=f"{LOGIN}/{tenant}/oauth2/v2.0/authorize",
            token_url=f"{LOGIN}/{tenant}/oauth2/v2.0/token",
            client_id=client_id,
            client_secret=secret,
            redirect_uri=redirect_uri,
            scopes=("offline_access", *SCOPES),
            authorize_params={"response_mode": "query"},
            session=session if session is not None else provider_session(),
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        try:
            item = self._graph(
                "GET", _item(path), doing=f"look at {path}", params={"$select": ITEM_FIELDS}
            ).json()
        except _Missing:
            return None
        return _remote_file(path, item)

    def same_content(self, there: RemoteFile, local: LocalFile) -> bool:
        if there.size != local.size:
            return False
        if there.sha256 is not None:
            return there.sha256 == local.sha256
        return bool(there.content_hash) and there.content_hash == self._hash(local)

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        doing = f"write {path}"
        self._ensure_folder(path.rpartition("/")[0])
        with local.path.open("rb") as handle:
            if local.size <= self.simple_upload_limit:
                item = self._graph(
                    "PUT",
                    f"{_item(path)}:/content",
                    doing=doing,
                    params={"@microsoft.graph.conflictBehavior": "replace"},
                    data=handle.read(),
                    headers={"Content-Type": "application/octet-stream"},
                ).json()
            else:
                item = self._upload_session(handle, local, path)
        landed = _remote_file(path, item)
        if landed.size != local.size or (landed.content_hash and landed.content_hash != self._hash(local)):
            raise DeliveryTemporarilyFailed(f"{path} did not arrive whole in OneDrive.")
        return Uploaded(path=path, remote_id=landed.remote_id, remote_version=landed.version)

    def _upload_session(self, handle: Any, local: LocalFile, path: str) -> dict[str, Any]:
        """Chunks to an upload session; the file appears when the last one is in. The
        session's URL carries its own authorization: no token is sent to it."""
        doing = f"write {path}"
        session = self._graph(
            "POST",
            f"{_item(path)}:/createUploadSession",
            doing=doing,
            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
        ).json()
        upload_url = str(session["uploadUrl"])
        offset = 0
        # Graph may ask for a range again; a session that never finishes is given up.
        requests_left = local.size // self.chunk_size + 10
        try:
            while (requests_left := requests_left - 1) >= 0:
                handle.seek(offset)
                chunk = handle.read(self.chunk_size)
                end = offset + len(chunk) - 1
                response = self._request(
                    "PUT",
                    upload_url,
                    doing=doing,
                    authorized=False,
                    data=chunk,
                    headers={"Content-Range": f"bytes {offset}-{end}/{local.size}"},
                )
                if response.status_code in {200, 201}:
                    answer: dict[str, Any] = response.json()
                    return answer
                # 202: Graph names the bytes it still needs; go on from the first of them.
                ranges = response.json().get("nextExpectedRanges") or [f"{end + 1}-"]
                offset = int(str(ranges[0]).split("-")[0])
            raise DeliveryTemporarilyFailed(f"The OneDrive upload session for {path} did not come to an end.")
        except DeliveryFailed:
            # Give the kept chunks back at once; if that fails too, the session expires by itself.
            with contextlib.suppress(requests.RequestException):
                self._session.delete(upload_url)
            raise

    def remove(self, path: str) -> None:
        try:
            self._graph("DELETE", _item(path), doing=f"remove {path}")
        except _Missing:
            return

    def check(self, *, folder: str) -> None:
        probe = "/".join(part for part in (folder, f".docuelevate-check-{uuid.uuid4().hex}") if part)
        self._ensure_folder(folder)
        self._graph(
            "PUT",
            f"{_item(probe)}:/content",
            doing="write a test file",
            data=b"",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            self._graph("DELETE", _item(probe), doing="remove the test file")
        except DeliveryFailed as exc:
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again ({exc.message}): delete {probe} from "
                "the OneDrive by hand."
            ) from None

    # --- Reading a folder (the remote-folder source, sources/kinds/remote.py) ---------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The files and folders directly in ``folder``, page by page (``@odata.nextLink``).
        A file's version is its cTag (it changes with the content, not with a rename), its
        time OneDrive's ``lastModifiedDateTime``."""
        folder = folder.strip("/")
        doing = f"list {folder or 'the top folder'}"
        url: str | None = f"{_item(folder)}:/children" if folder else f"{GRAPH}/me/drive/root/children"
        params: dict[str, str] | None = {"$select": LISTED_FIELDS}
        entries: list[ListedEntry] = []
        while url:
            try:
                page = self._graph("GET", url, doing=doing, params=params).json()
            except _Missing:
                raise DestinationMisconfigured(f"There is no folder {folder} in the OneDrive.") from None
            for item in page.get("value", []):
                path = "/".join(part for part in (folder, str(item["name"])) if part)
                if "folder" in item:
                    entries.append(ListedEntry(path=path, is_folder=True, size=-1, modified=None))
                elif "file" in item:  # not a package (a OneNote notebook), which cannot be downloaded
                    modified = item.get("lastModifiedDateTime")
                    entries.append(
                        ListedEntry(
                            path=path,
                            is_folder=False,
                            size=int(item.get("size") or 0),
                            modified=datetime.fromisoformat(modified).timestamp() if modified else None,
                            version=str(item.get("cTag") or item.get("eTag") or ""),
                        )
                    )
            # The next page's link carries the query itself.
            url, params = page.get("@odata.nextLink"), None
        return entries

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The file at ``path``, streamed a block at a time. Graph answers with a redirect
        to a pre-authenticated download URL on another host, which requests follows without
        the Authorization header."""
        doing = f"read {path}"
        response = self._graph("GET", f"{_item(path)}:/content", doing=doing, stream=True)
        try:
            yield from response.iter_content(DOWNLOAD_BLOCK)
        except requests.RequestException as exc:
            raise DeliveryTemporarilyFailed(
                f"OneDrive could not be reached to {doing} ({exc.__class__.__name__})."
            ) from None
        finally:
            response.close()

    def rename(self, source: str, target: str) -> None:
        """A PATCH of the item naming its new parent (by id, as Graph documents moves) and
        name; a file already under the target name is a conflict, never replaced."""
        doing = f"move {source} to {target}"
        parent, _, name = target.strip("/").rpartition("/")
        parent_url = _item(parent)
        folder = self._graph("GET", parent_url, doing=doing, params={"$select": "id"}).json()
        self._graph(
            "PATCH",
            _item(source),
            doing=doing,
            params={"@microsoft.graph.conflictBehavior": "fail"},
            json={"parentReference": {"id": str(folder["id"])}, "name": name},
        )

    def make_folder(self, folder: str) -> None:
        self._ensure_folder(folder.strip("/"))

    def close(self) -> None:
        self._session.close()

    # --- Helpers --------------------------------------------------------------------------

    def _ensure_folder(self, folder: str) -> None:
        """Make ``folder`` and its parents where missing (Graph makes no folders for a path)."""
        if folder in self._folders:
            return
        try:
            item = self._graph(
                "GET", _item(folder), doing=f"look for the folder {folder}", params={"$select": "id,folder"}
            ).json()
        except _Missing:
            parent, _, name = folder.rpartition("/")
            self._ensure_folder(parent)
            children = f"{_item(parent)}:/children" if parent else f"{GRAPH}/me/drive/root/children"
            # A conflict: made meanwhile by another delivery.
            with contextlib.suppress(_Conflict):
                self._graph(
                    "POST",
                    children,
                    doing=f"make the folder {folder}",
                    json={"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
                )
        else:
            if "folder" not in item:
                raise DeliveryFailed(f"{folder} is a file in the OneDrive, not a folder.")
        self._folders.add(folder)

    def _hash(self, local: LocalFile) -> str:
        if local.sha256 not in self._hashes:
            self._hashes[local.sha256] = quickxorhash(local.path)
        return self._hashes[local.sha256]

    def _token(self) -> str:
        """An access token, from the refresh token through MSAL; the refresh token Microsoft
        gives in exchange is handed on to be stored."""
        if self._access_token:
            return self._access_token
        if not (self.client_id and self._client_secret):
            raise DestinationMisconfigured(_NOT_SET_UP)
        if not self._refresh_token:
            raise DestinationMisconfigured(
                "The OneDrive destination is not connected to an account yet: connect it on the destinations "
                "page (or set ONEDRIVE_REFRESH_TOKEN)."
            )
        import msal

        try:
            if self._msal is None:
                # Reads the tenant's sign-in configuration from Microsoft once.
                self._msal = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._client_secret,
                    authority=f"{LOGIN}/{_tenant(self.tenant)}",
                    http_client=self._session,
                )
            result = self._msal.acquire_token_by_refresh_token(self._refresh_token, scopes=list(SCOPES))
        except requests.RequestException as exc:
            raise DeliveryTemporarilyFailed(
                f"Microsoft's sign-in could not be reached ({exc.__class__.__name__})."
            ) from None
        except ValueError:
            # MSAL's answer when the tenant's configuration cannot be had (no such tenant).
            raise DestinationMisconfigured(
                f"Microsoft does not know the tenant {self.tenant!r}; check ONEDRIVE_TENANT_ID."
            ) from None
        error = str(result.get("error") or "")
        if error in _TOKEN_REFUSED:
            raise DestinationMisconfigured(
                f"Microsoft refused the sign-in ({error}): the refresh token was revoked or has expired, or "
                "the client id or secret is wrong; connect the destination again."
            )
        if error or not result.get("access_token"):
            raise DeliveryTemporarilyFailed(
                f"Microsoft could not give an access token for now ({error or 'no token'})."
            )
        renewed = result.get("refresh_token")
        if isinstance(renewed, str) and renewed and renewed != self._refresh_token:
            self._renewed(self._given_refresh_token, renewed)
            self._refresh_token = renewed
        self._access_token = str(result["access_token"])
        return self._access_token

    def _graph(self, method: str, url: str, *, doing: str, **kwargs: Any) -> requests.Response:
        """A Graph request with the access token; a refusal (401) once gets a fresh token
        and one more try, as an access token may lapse during a long delivery."""
        try:
            return self._request(method, url, doing=doing, authorized=True, **kwargs)
        except _Refused:
            self._access_token = ""
            try:
                return self._request(method, url, doing=doing, authorized=True, **kwargs)
            except _Refused as exc:
                raise DestinationMisconfigured(exc.message) from None

    def _request(
        self, method: str, url: str, *, doing: str, authorized: bool, **kwargs: Any
    ) -> requests.Response:
        """One request, throttling (429, or 503 with Retry-After) waited out briefly;
        errors translated by status and Graph's error code."""
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in itertools.count():
            if authorized:
                headers["Authorization"] = f"Bearer {self._token()}"
            try:
                response = self._session.request(method, url, headers=headers, **kwargs)
            except requests.RequestException as exc:
                raise DeliveryTemporarilyFailed(
                    f"OneDrive could not be reached to {doing} ({exc.__class__.__name__})."
                ) from None
            retry_after = response.headers.get("Retry-After")
            if response.status_code == 429 or (response.status_code == 503 and retry_after):
                wait = throttle_wait(retry_after, attempt=attempt)
                if wait is not None:
                    self._sleep(wait)
                    continue
            if response.status_code < 400:
                return response
            raise _translated(response, doing=doing)
        raise AssertionError("unreachable")  # pragma: no cover


class _Missing(DeliveryFailed):
    """Graph answered 404: nothing at the path."""


class _Conflict(DeliveryFailed):
    """Graph answered 409: something is in the way under that name."""


class _Refused(DestinationMisconfigured):
    """Graph answered 401: the access token was not accepted."""


def _tenant(tenant: str) -> str:
    tenant = (tenant or "common").strip()
    if not tenant or not set(tenant) <= _TENANT_CHARACTERS:
        raise DestinationMisconfigured(
            "ONEDRIVE_TENANT_ID is not a tenant id, a domain, common or consumers."
        )
    return tenant


def _item(path: str) -> str:
    path = path.strip("/")
    return f"{GRAPH}/me/drive/root:/{quote(path, safe='/')}" if path else f"{GRAPH}/me/drive/root"


def _remote_file(path: str, item: Mapping[str, Any]) -> RemoteFile:
    hashes = (item.get("file") or {}).get("hashes") or {}
    sha256 = hashes.get("sha256Hash")
    return RemoteFile(
        path=path,
        size=int(item.get("size") or 0),
        sha256=str(sha256).lower() if sha256 else None,
        remote_id=str(item.get("id", "")),
        # The content's tag: it changes when the content does, not with a rename.
        version=str(item.get("cTag") or item.get("eTag") or ""),
        content_hash=str(hashes.get("quickXorHash") or ""),
    )


def _translated(response: requests.Response, *, doing: str) -> DeliveryFailed:
    """The delivery error for a Graph answer, decided on its status and error code."""
    status = response.status_code
    try:
        code = str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = ""
    reason = code or f"HTTP {status}"
    if status == 404:
        return _Missing(f"OneDrive has nothing there to {doing}.")
    if status == 409:
        return _Conflict(f"OneDrive refused to {doing}: something else has that name ({reason}).")
    if status == 401:
        return _Refused(
            f"OneDrive refused the sign-in while trying to {doing} ({reason}); connect the destination again."
        )
    if status == 507 or code in _QUOTA:
        return DeliveryTemporarilyFailed(f"The OneDrive is full; could not {doing} ({reason}).")
    if status in {408, 423, 429} or status >= 500:
        return DeliveryTemporarilyFailed(f"OneDrive could not {doing} for now ({reason}).")
    if status == 403:
        return DestinationMisconfigured(
            f"OneDrive refused to {doing} ({reason}): the account may not write there."
        )
    return DeliveryFailed(f"OneDrive refused to {doing} ({reason}).")
