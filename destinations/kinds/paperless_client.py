"""A small client of Paperless-ngx's REST API: the calls a delivery makes, and nothing else.

It speaks API version 9 (``Accept: application/json; version=9``), which Paperless-ngx
2.16 and later understand; an older server answers 406. Requests carry the API token
(``Authorization: Token …``) and follow no redirects: a redirect would turn the upload into
a GET and could carry the token elsewhere, so it is reported instead, with where it leads.

Every failure is one ``PaperlessError`` whose ``kind`` says what happened (the token
refused, a permission missing, the server busy, …) for the caller to decide on; its
message and ``detail`` are for people and never hold the token. The document upload
streams from disk (``_MultipartFile``), so a large file costs no memory.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import requests

API_VERSION = 9
# Seconds to connect, and to wait for each answer; an upload gets longer to be answered.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
UPLOAD_READ_TIMEOUT = 300.0
PAGE_SIZE = 100
# The longest name Paperless-ngx keeps for a title, correspondent, type, tag or field.
NAME_LIMIT = 128
DETAIL_LIMIT = 300


class PaperlessFailure(enum.StrEnum):
    """Why a request came to nothing, for the caller to decide on."""

    REFUSED_TOKEN = "refused_token"  # noqa: S105 - a failure kind, not a password (401)
    FORBIDDEN = "forbidden"  # 403: the token's user lacks a permission
    NOT_FOUND = "not_found"  # 404
    UNSUPPORTED_VERSION = "unsupported_version"  # 406: the server does not speak API_VERSION
    INVALID = "invalid"  # another 4xx: the server refused this request
    UNAVAILABLE = "unavailable"  # 408, 429 or 5xx: busy or failing for now
    UNREACHABLE = "unreachable"  # no connection, or it broke off
    TIMEOUT = "timeout"  # no answer in time
    NOT_PAPERLESS = "not_paperless"  # an answer that is not the API's (a redirect, a login page)


# The failures that may pass by themselves.
PASSING = frozenset({PaperlessFailure.UNAVAILABLE, PaperlessFailure.UNREACHABLE, PaperlessFailure.TIMEOUT})


class PaperlessError(Exception):
    """A request to Paperless-ngx failed; ``detail`` is what the server said, if anything."""

    def __init__(
        self, message: str, *, kind: PaperlessFailure, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.detail = detail


class TaskStatus(enum.StrEnum):
    """A consumption task's state, as Celery names it and Paperless-ngx reports it."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class ConsumptionTask:
    """One of Paperless-ngx's tasks: ``related_document`` is the document it made (or, for
    some versions, the one a refused duplicate repeats)."""

    task_id: str
    status: str
    result: str
    related_document: int | None


@dataclass(frozen=True)
class StoredFile:
    """A document's original file as Paperless-ngx keeps it: size and MD5 checksum."""

    document_id: int
    size: int
    checksum: str


@dataclass(frozen=True)
class CustomField:
    """A custom field defined in Paperless-ngx; ``options`` are a select field's (id, label)."""

    id: int
    name: str
    data_type: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Upload:
    """What ``post_document`` sends besides the file; ids of objects that exist already."""

    filename: str
    title: str
    created: date | None = None
    correspondent: int | None = None
    document_type: int | None = None
    tags: tuple[int, ...] = ()


class PaperlessClient:
    """Talks to the Paperless-ngx at ``base_url`` (with its path prefix, if any) as the user
    of ``token``."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: float = READ_TIMEOUT,
        upload_timeout: float = UPLOAD_READ_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._upload_timeout = (min(CONNECT_TIMEOUT, timeout), upload_timeout)
        self._session = requests.Session()
        self._session.headers["Accept"] = f"application/json; version={API_VERSION}"
        # As the session's auth, so that requests never puts a .netrc login in its place.
        self._session.auth = _TokenAuth(token)

    def __repr__(self) -> str:
        return f"<PaperlessClient {self.base_url!r}>"

    def close(self) -> None:
        self._session.close()

    # --- Documents ---------------------------------------------------------------------

    def documents_with_checksum(self, checksum: str) -> list[int]:
        """The ids of the documents (visible to the token's user, not in the trash) whose
        original has the MD5 ``checksum``."""
        answer = self._json("GET", "/api/documents/", params={"checksum__iexact": checksum, "fields": "id"})
        return [int(item["id"]) for item in _results(answer)]

    def can_list_documents(self) -> None:
        """Lists one document: raises unless the token's user may read the documents list."""
        self._json("GET", "/api/documents/", params={"page_size": "1", "fields": "id"})

    def stored_file(self, document_id: int) -> StoredFile | None:
        """The original file of document ``document_id``; None when there is none to see."""
        try:
            answer = self._json("GET", f"/api/documents/{document_id}/metadata/")
        except PaperlessError as exc:
            if exc.kind == PaperlessFailure.NOT_FOUND:
                return None
            raise
        return StoredFile(
            document_id=document_id,
            size=int(answer.get("original_size") or 0),
            checksum=str(answer.get("original_checksum") or ""),
        )

    def custom_field_values(self, document_id: int) -> dict[int, Any]:
        """The document's custom fields: field id -> value."""
        answer = self._json("GET", f"/api/documents/{document_id}/", params={"fields": "id,custom_fields"})
        return {int(item["field"]): item.get("value") for item in answer.get("custom_fields") or []}

    def set_custom_field_values(self, document_id: int, values: Mapping[int, Any]) -> None:
        """Set the document's custom fields to ``values``. Paperless-ngx replaces the whole
        list (a field left out is removed), so ``values`` must hold every field to keep."""
        payload = {"custom_fields": [{"field": field, "value": value} for field, value in values.items()]}
        self._json("PATCH", f"/api/documents/{document_id}/", json=payload)

    def post_document(self, path: Path, upload: Upload) -> str:
        """Hand ``path`` to Paperless-ngx's consumer; the id of the task that consumes it."""
        fields: list[tuple[str, str]] = [("title", upload.title[:NAME_LIMIT])]
        if upload.created is not None:
            fields.append(("created", upload.created.isoformat()))
        if upload.correspondent is not None:
            fields.append(("correspondent", str(upload.correspondent)))
        if upload.document_type is not None:
            fields.append(("document_type", str(upload.document_type)))
        fields.extend(("tags", str(tag)) for tag in upload.tags)
        body = _MultipartFile(path, fields=fields, filename=upload.filename, content_type="application/pdf")
        with body:
            answer = self._json(
                "POST",
                "/api/documents/post_document/",
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=self._upload_timeout,
            )
        if not isinstance(answer, str) or not answer.strip():
            raise PaperlessError(
                "post_document answered without a task id.", kind=PaperlessFailure.NOT_PAPERLESS
            )
        return answer.strip()

    def task(self, task_id: str) -> ConsumptionTask | None:
        """The task ``task_id``; None while (or when) Paperless-ngx does not know it."""
        answer = self._json("GET", "/api/tasks/", params={"task_id": task_id})
        tasks = _results(answer)
        if not tasks:
            return None
        item = tasks[0]
        related = str(item.get("related_document") or "")
        return ConsumptionTask(
            task_id=str(item.get("task_id") or task_id),
            status=str(item.get("status") or ""),
            result=str(item.get("result") or ""),
            related_document=int(related) if related.isdigit() else None,
        )

    # --- Correspondents, document types, tags, custom fields ----------------------------

    def named(self, collection: str, name: str) -> int | None:
        """The id of the correspondent, document type or tag (``collection``: ``correspondents``,
        ``document_types``, ``tags``) called ``name``, in any case; the exact spelling first."""
        answer = self._json("GET", f"/api/{collection}/", params={"name__iexact": name[:NAME_LIMIT]})
        found = [(str(item.get("name")), int(item["id"])) for item in _results(answer)]
        exact = [pk for item_name, pk in found if item_name == name[:NAME_LIMIT]]
        ids = exact or [pk for _name, pk in found]
        return ids[0] if ids else None

    def create_named(self, collection: str, name: str) -> int:
        """Create a correspondent, document type or tag called ``name``; its id.

        Made with no automatic matching: Paperless-ngx's default (auto) would start
        assigning it to other documents on its own.
        """
        answer = self._json(
            "POST", f"/api/{collection}/", json={"name": name[:NAME_LIMIT], "matching_algorithm": 0}
        )
        return int(answer["id"])

    def custom_fields(self) -> list[CustomField]:
        """Every custom field defined in Paperless-ngx."""
        fields: list[CustomField] = []
        for item in self._pages("/api/custom_fields/"):
            extra = item.get("extra_data") or {}
            options = tuple(
                (str(option.get("id")), str(option.get("label")))
                for option in extra.get("select_options") or []
                if isinstance(option, dict)
            )
            fields.append(
                CustomField(
                    id=int(item["id"]),
                    name=str(item.get("name") or ""),
                    data_type=str(item.get("data_type") or ""),
                    options=options,
                )
            )
        return fields

    def permissions(self) -> tuple[frozenset[str], bool]:
        """The token's user's permissions (codenames such as ``add_document``) and whether
        it is a superuser, as the web app reads them."""
        answer = self._json("GET", "/api/ui_settings/")
        user = answer.get("user") or {}
        return frozenset(str(name) for name in answer.get("permissions") or []), bool(
            user.get("is_superuser")
        )

    # --- HTTP --------------------------------------------------------------------------

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self._json("GET", path, params={"page": str(page), "page_size": str(PAGE_SIZE)})
            yield from _results(answer)
            if not (isinstance(answer, dict) and answer.get("next")):
                return
            page += 1

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """Send one request; its JSON answer, or PaperlessError."""
        url = self.base_url + path
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=dict(headers or {}),
                timeout=timeout or self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise PaperlessError(
                f"no answer from {self.base_url} in time", kind=PaperlessFailure.TIMEOUT
            ) from None
        except requests.RequestException as exc:
            raise PaperlessError(
                f"{self.base_url} could not be reached ({exc.__class__.__name__})",
                kind=PaperlessFailure.UNREACHABLE,
            ) from None
        with response:
            self._raise_for_status(response)
            try:
                return response.json()
            except ValueError:
                raise PaperlessError(
                    f"{method} {path} answered with something other than JSON",
                    kind=PaperlessFailure.NOT_PAPERLESS,
                    status=response.status_code,
                ) from None

    def _raise_for_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        detail = self._detail(response)
        if status < 400:
            where = response.headers.get("Location", "elsewhere")
            raise PaperlessError(
                f"it redirects to {where}", kind=PaperlessFailure.NOT_PAPERLESS, status=status, detail=detail
            )
        kinds = {
            401: PaperlessFailure.REFUSED_TOKEN,
            403: PaperlessFailure.FORBIDDEN,
            404: PaperlessFailure.NOT_FOUND,
            406: PaperlessFailure.UNSUPPORTED_VERSION,
        }
        if status in kinds:
            kind = kinds[status]
        elif status in {408, 429} or status >= 500:
            kind = PaperlessFailure.UNAVAILABLE
        else:
            kind = PaperlessFailure.INVALID
        raise PaperlessError(f"it answered {status}", kind=kind, status=status, detail=detail)

    def _detail(self, response: requests.Response) -> str:
        """What the server said about a refusal, short, on one line, without the token."""
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text if "html" not in response.headers.get("Content-Type", "") else ""
        text = _flattened(body)
        text = " ".join(text.split()).replace(self._token, "…") if self._token else " ".join(text.split())
        return text[:DETAIL_LIMIT]


def _results(answer: Any) -> list[dict[str, Any]]:
    """The items of a list answer: paginated (``{"results": […]}``) or a bare list (tasks)."""
    items = answer.get("results") if isinstance(answer, dict) else answer
    return [item for item in items or [] if isinstance(item, dict)] if isinstance(items, list) else []


def _flattened(body: Any) -> str:
    """A DRF error body (``{"detail": …}``, ``{"field": ["…"]}``, ``["…"]``) as one line."""
    if isinstance(body, dict):
        if set(body) == {"detail"}:
            return _flattened(body["detail"])
        return "; ".join(f"{name}: {_flattened(value)}" for name, value in body.items())
    if isinstance(body, list):
        return " ".join(_flattened(item) for item in body)
    return str(body)


class _TokenAuth(requests.auth.AuthBase):
    """``Authorization: Token <token>``, Paperless-ngx's API token header."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self._token}"
        return request


class _MultipartFile:
    """A ``multipart/form-data`` body of text fields and one file, read from disk as it is
    sent: requests sends an object with ``read`` and a length as it is, with a
    Content-Length, a piece at a time."""

    def __init__(
        self, path: Path, *, fields: list[tuple[str, str]], filename: str, content_type: str
    ) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="{_quoted(filename)}"'
            f"\r\nContent-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._length = len(head) + path.stat().st_size + len(tail)
        self._path = path
        self._pieces: list[bytes | None] = [head, None, tail]  # None: the file's place
        self._handle: BinaryIO | None = None
        self._index = 0
        self._offset = 0

    def __len__(self) -> int:
        return self._length

    def __enter__(self) -> _MultipartFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for a negative size); b"" at the end."""
        wanted = self._length if size is None or size < 0 else size
        chunks: list[bytes] = []
        while wanted > 0 and self._index < len(self._pieces):
            piece = self._pieces[self._index]
            if piece is None:
                if self._handle is None:
                    self._handle = self._path.open("rb")
                chunk = self._handle.read(wanted)
                if not chunk:
                    self._handle.close()
                    self._handle = None
                    self._index += 1
                    continue
            else:
                chunk = piece[self._offset : self._offset + wanted]
                self._offset += len(chunk)
                if self._offset >= len(piece):
                    self._index, self._offset = self._index + 1, 0
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)


def _quoted(filename: str) -> str:
    """A file name fit for a Content-Disposition header (as browsers write them)."""
    return filename.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
