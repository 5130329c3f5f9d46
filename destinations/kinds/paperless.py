"""Paperless-ngx, through its REST API (``destinations.kinds.paperless_client``).

Paperless-ngx has no paths: a file posted there becomes a document with an id, once its
consumer has taken it in, which happens later, in a task. So this kind maps the interface
as follows.

- ``upload`` checks before writing by content: Paperless keeps each original's MD5
  (``checksum``), and a document with ours there counts as delivered, nothing posted.
  Otherwise it resolves the correspondent, document type and tags to ids (creating
  those missing, with no automatic matching), posts the file, keeps the task id in the
  delivery's receipt book *before* waiting, and polls the task until it succeeds or fails,
  up to a deadline. A run that dies while waiting (or passes the deadline) leaves the
  receipt, and the next run waits on that task instead of posting again. A task that
  failed because the file is a duplicate counts as delivered when the document it
  repeats has our checksum. Then the custom fields are set (PATCH, merged into what the
  document has). The document is at ``documents/<id>``.
- ``stat("documents/<id>")`` tells that document's size and checksum; every other path
  has nothing at it. Paperless keeps no SHA-256, so stat never claims the content the
  delivery service compares, and the service never removes a document.
- ``remove`` deletes nothing, on purpose: a document in Paperless-ngx is where people
  annotate, tag, number (ASN) and share their papers. A reprocessed document whose PDF
  changed arrives as a new Paperless document beside the earlier one, which stays for
  its owner to keep or delete.
- ``check`` signs in, asks for the permissions the token's user has (adding and viewing
  documents), lists one document and finds the configured custom fields: nothing is
  written.

The folder template names only the file (its last part): Paperless files documents by
its own storage paths.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any, Self
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    DocumentFacts,
    EnvironmentDestination,
    Kind,
    LocalFile,
    ReceiptBook,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.fields import unknown_refuse
from destinations.kinds.paperless_client import (
    API_VERSION,
    NAME_LIMIT,
    PASSING,
    ConsumptionTask,
    CustomField,
    PaperlessClient,
    PaperlessError,
    PaperlessFailure,
    TaskStatus,
    Upload,
)
from destinations.models import DestinationKind
from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput

logger = logging.getLogger(__name__)

# How long one run waits for Paperless-ngx to consume a posted file, and how often it asks.
# A run that gives up keeps the task's receipt: the retry waits on the same task.
POLL_DEADLINE_SECONDS = 120.0
POLL_INTERVAL_SECONDS = 1.0
POLL_INTERVAL_MAX_SECONDS = 5.0
# The receipt of a posted file: "paperless-task:<md5 of the file>:<task id>".
RECEIPT_PREFIX = "paperless-task:"
MAX_MAPPED_FIELDS = 50
# What Paperless-ngx allows in a text custom field.
STRING_FIELD_LIMIT = 128
_DOCUMENT_PATH = re.compile(r"documents/(\d+)")
_SINGULAR = {"correspondents": "correspondent", "document_types": "document type", "tags": "tag"}
# What metadata holds when nothing was found; never worth a field.
_NOTHING = frozenset({"", "unknown", "none", "null"})


class PaperlessKind(Kind):
    """Delivers to one Paperless-ngx, as the user whose API token it holds."""

    name = DestinationKind.PAPERLESS
    setting_names = ("host", "custom_field_absender", "custom_fields_mapping")
    secret_names = ("api_token",)
    help_texts = {
        "host": "Its address, e.g. https://paperless.example.com "
        "(with the path when it is served below one).",
        "custom_field_absender": "The custom field there that gets the document's sender, by its name, "
        "e.g. Absender. Empty: none.",
        "custom_fields_mapping": "More custom fields, as JSON: our metadata field → the field's name there, "
        'e.g. {"empfaenger": "Recipient", "reference_number": "Reference"}. Empty: none.',
        "api_token": "The API token of the Paperless-ngx user the documents arrive as (My Profile there).",
    }

    def __init__(
        self,
        *,
        host: str,
        api_token: str,
        custom_field_absender: str = "",
        custom_fields_mapping: Mapping[str, str] | None = None,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        poll_deadline: float = POLL_DEADLINE_SECONDS,
        timeout: float | None = None,
    ) -> None:
        options = {} if timeout is None else {"timeout": timeout}
        self._client = PaperlessClient(base_url=host, token=api_token, **options)
        self.host = self._client.base_url
        # (our metadata field, their custom field name) pairs, in the order given.
        self._targets = _field_targets(custom_field_absender, custom_fields_mapping or {})
        self._poll_interval = poll_interval
        self._poll_deadline = poll_deadline
        self._book: ReceiptBook = _MemoryReceipts()

    def __repr__(self) -> str:
        return f"<PaperlessKind host={self.host!r}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown_refuse(settings, cls.setting_names, what="Paperless-ngx")
        unknown_refuse(secrets, cls.secret_names, what="Paperless-ngx")
        host = str(settings.get("host") or "").strip().rstrip("/")
        # A user's own destination must not make the server reach its own network.
        _check_host(host, public_only=not system_wide)
        absender = str(settings.get("custom_field_absender") or "").strip()
        if len(absender) > NAME_LIMIT:
            raise InvalidInput(f"The sender's custom field name is longer than {NAME_LIMIT} characters.")
        mapping = _clean_mapping(settings.get("custom_fields_mapping"))
        token = str(secrets.get("api_token") or "").strip()
        # A whitespace or control character would break (or forge) the Authorization header.
        if not token or len(token) > 512 or any(char.isspace() or not char.isprintable() for char in token):
            raise InvalidInput("A Paperless-ngx destination needs its API token (from My Profile there).")
        clean_settings: dict[str, Any] = {
            "host": host,
            "custom_field_absender": absender,
            "custom_fields_mapping": mapping,
        }
        return clean_settings, {"api_token": token}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            host=settings["host"],
            api_token=secrets["api_token"],
            custom_field_absender=settings.get("custom_field_absender", ""),
            custom_fields_mapping=settings.get("custom_fields_mapping") or {},
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        if not django_settings.PAPERLESS_ENABLED:
            return None
        return EnvironmentDestination(
            name="Paperless-ngx (environment)",
            settings={
                "host": django_settings.PAPERLESS_HOST,
                "custom_field_absender": django_settings.PAPERLESS_CUSTOM_FIELD_ABSENDER,
                "custom_fields_mapping": django_settings.PAPERLESS_CUSTOM_FIELDS_MAPPING,
            },
            secrets={"api_token": django_settings.PAPERLESS_NGX_API_TOKEN},
        )

    def keep_receipts_in(self, book: ReceiptBook) -> None:
        self._book = book

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        match = _DOCUMENT_PATH.fullmatch(path)
        if match is None:
            return None  # Paperless-ngx has no paths: nothing is ever "at" a file name there
        with self._asking(f"show {path}"):
            stored = self._client.stored_file(int(match.group(1)))
        if stored is None:
            return None
        # Paperless keeps an MD5, not the SHA-256 the delivery service compares.
        return RemoteFile(
            path=path,
            size=stored.size,
            sha256=None,
            remote_id=str(stored.document_id),
            version=stored.checksum,
        )

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        checksum = _md5_of(local)
        fields = self._custom_fields()  # before anything is posted: a missing field stops it
        document_id = self._existing(checksum)
        if document_id is None:
            document_id = self._consume(local, path, checksum)
        self._set_custom_fields(document_id, fields, local.facts)
        return Uploaded(path=f"documents/{document_id}", remote_id=str(document_id), remote_version=checksum)

    def remove(self, path: str) -> None:
        """Deletes nothing: see the module's docstring. A document in Paperless-ngx is its
        owner's record, with whatever they added to it there."""

    def check(self, *, folder: str) -> None:
        with self._asking("tell the token's permissions"):
            permissions, superuser = self._client.permissions()
        needed = {"add_document": "add documents", "view_document": "view documents"}
        if self._targets:
            needed["change_document"] = "change documents (for the custom fields)"
        missing = [words for codename, words in needed.items() if codename not in permissions]
        if missing and not superuser:
            raise DestinationMisconfigured(
                f"The Paperless-ngx user of this API token may not {', '.join(missing)}; "
                "give it those permissions there."
            )
        with self._asking("list documents"):
            self._client.can_list_documents()
        self._custom_fields()

    def close(self) -> None:
        self._client.close()

    # --- Steps of an upload ------------------------------------------------------------------

    def _existing(self, checksum: str) -> int | None:
        """A document Paperless already has with our file: delivered before (by a run whose
        record was lost, or by a consumption that finished after its run died)."""
        with self._asking("list documents"):
            found = self._client.documents_with_checksum(checksum)
        return min(found) if found else None

    def _consume(self, local: LocalFile, path: str, checksum: str) -> int:
        """Have Paperless-ngx consume ``local``, or finish waiting for the consumption an
        earlier run started; the new document's id."""
        task_id = self._pending_task(checksum)
        if task_id is not None:
            try:
                return self._wait(task_id, checksum, resumed=True)
            except _TaskGone:
                self._book.keep("")  # and since no document has our checksum, post it again
        upload = self._upload_fields(local.facts, filename=PurePosixPath(path).name)
        with self._asking(f"take in {upload.filename}"):
            task_id = self._client.post_document(local.path, upload)
        # Kept before waiting: a run that dies now leaves the next one this task to wait on.
        self._book.keep(f"{RECEIPT_PREFIX}{checksum}:{task_id}")
        return self._wait(task_id, checksum, resumed=False)

    def _pending_task(self, checksum: str) -> str | None:
        """The task an earlier run posted this very content in, if one did."""
        receipt = self._book.receipt()
        if not receipt.startswith(RECEIPT_PREFIX):
            return None
        kept_checksum, _, task_id = receipt.removeprefix(RECEIPT_PREFIX).partition(":")
        return task_id if kept_checksum == checksum and task_id else None

    def _wait(self, task_id: str, checksum: str, *, resumed: bool) -> int:
        """Poll task ``task_id`` until it ends, up to the deadline; the document it made.

        Paperless-ngx registers a task as it accepts the file, so a task an earlier run
        kept (``resumed``) that it does not know is gone: _TaskGone. A task just posted may
        take a moment to show. Passing trouble while polling is polled through.
        """
        deadline = time.monotonic() + self._poll_deadline
        interval = self._poll_interval
        state = "not started"
        while True:
            try:
                task = self._client.task(task_id)
            except PaperlessError as exc:
                if exc.kind not in PASSING:
                    raise self._translated(exc, doing="report on its consumption task") from None
                state = exc.message
            else:
                if task is None and resumed:
                    raise _TaskGone(task_id)
                if task is not None and task.status == TaskStatus.SUCCESS:
                    return self._made(task, checksum)
                if task is not None and task.status in {TaskStatus.FAILURE, TaskStatus.REVOKED}:
                    return self._refused(task, checksum)
                state = task.status.lower() if task is not None else "not registered yet"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeliveryTemporarilyFailed(
                    f"Paperless-ngx at {self.host} has not consumed the document yet (task {task_id}: "
                    f"{state}) after {self._poll_deadline:.0f} s; its task is kept and looked at again."
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, POLL_INTERVAL_MAX_SECONDS)

    def _made(self, task: ConsumptionTask, checksum: str) -> int:
        """The document a successful task made."""
        if task.related_document is not None:
            return task.related_document
        found = self._existing(checksum)
        if found is None:
            # Consumed into something else (split by barcodes, say). The receipt stays, so a
            # redelivery asks this task again rather than posting the file once more.
            raise DeliveryFailed(
                f"Paperless-ngx consumed the file but made no document of it as it was: {task.result[:300]}"
            )
        return found

    def _refused(self, task: ConsumptionTask, checksum: str) -> int:
        """A failed task: delivered all the same when the document it refused to duplicate
        holds our file, else a failure with Paperless-ngx's reason."""
        if task.related_document is not None:
            with self._asking(f"show document {task.related_document}"):
                stored = self._client.stored_file(task.related_document)
            if stored is not None and stored.checksum.lower() == checksum:
                return task.related_document
        found = self._existing(checksum)
        if found is not None:
            return found
        self._book.keep("")  # nothing came of this task: a redelivery posts the file anew
        reason = task.result.strip() or task.status.lower()
        raise DeliveryFailed(f"Paperless-ngx did not take the document: {reason[:300]}")

    def _upload_fields(self, facts: DocumentFacts, *, filename: str) -> Upload:
        """Title, date, correspondent, type and tags of the upload, by id, each made in
        Paperless-ngx when it has none of that name (any case)."""
        # As DocuElevate always did: no correspondent found, the sender stands in.
        correspondent = _meaningful(facts.correspondent) or _meaningful(facts.fields.get("absender"))
        document_type = _type_name(_meaningful(facts.document_type))
        tags = [tag for tag in facts.tags if _meaningful(tag)]
        return Upload(
            filename=filename,
            title=facts.title or PurePosixPath(filename).stem,
            created=facts.created,
            correspondent=self._object_id("correspondents", correspondent) if correspondent else None,
            document_type=self._object_id("document_types", document_type) if document_type else None,
            tags=tuple(dict.fromkeys(self._object_id("tags", tag) for tag in tags)),
        )

    def _object_id(self, collection: str, name: str) -> int:
        what = f"{_SINGULAR[collection]} {name!r}"
        with self._asking(f"find the {what}"):
            found = self._client.named(collection, name)
        if found is not None:
            return found
        try:
            return self._client.create_named(collection, name)
        except PaperlessError as exc:
            # Made meanwhile by another delivery (names are unique there): take that one.
            with self._asking(f"find the {what}"):
                found = self._client.named(collection, name) if exc.kind == PaperlessFailure.INVALID else None
            if found is None:
                raise self._translated(exc, doing=f"add the {what}") from None
            return found

    # --- Custom fields -----------------------------------------------------------------------

    def _custom_fields(self) -> list[tuple[str, CustomField]]:
        """(our field, their custom field) for every configured pair; DestinationMisconfigured
        naming the custom fields Paperless-ngx does not have."""
        if not self._targets:
            return []
        with self._asking("list its custom fields"):
            defined = self._client.custom_fields()
        by_name = {field.name: field for field in defined}
        by_folded = {field.name.casefold(): field for field in defined}
        pairs, missing = [], []
        for ours, theirs in self._targets:
            field = by_name.get(theirs) or by_folded.get(theirs.casefold())
            if field is None:
                missing.append(theirs)
            else:
                pairs.append((ours, field))
        if missing:
            raise DestinationMisconfigured(
                f"Paperless-ngx at {self.host} has no custom field {', '.join(sorted(set(missing)))}; "
                "create it there (Settings, Custom fields) or change the custom field mapping."
            )
        return pairs

    def _set_custom_fields(
        self, document_id: int, fields: list[tuple[str, CustomField]], facts: DocumentFacts
    ) -> None:
        """Set the mapped fields that have a value, keeping the document's other fields
        (Paperless-ngx replaces the whole list); nothing is written when nothing changes."""
        values: dict[int, Any] = {}
        for ours, field in fields:
            value = _field_value(field, facts.fields.get(ours))
            if value is None:
                logger.debug("no value for custom field %s from %s", field.name, ours)
            else:
                values[field.id] = value
        if not values:
            return
        with self._asking(f"set the custom fields of document {document_id}"):
            current = self._client.custom_field_values(document_id)
            wanted = {**current, **values}
            if wanted != current:
                self._client.set_custom_field_values(document_id, wanted)

    # --- Errors ------------------------------------------------------------------------------

    @contextmanager
    def _asking(self, doing: str) -> Iterator[None]:
        """Turn a client error while asking Paperless-ngx to ``doing`` into a delivery error."""
        try:
            yield
        except PaperlessError as exc:
            raise self._translated(exc, doing=doing) from None

    def _translated(self, exc: PaperlessError, *, doing: str) -> DeliveryFailed:
        """The delivery error for a client error, decided on its kind."""
        where = f"Paperless-ngx at {self.host}"
        said = f" ({exc.detail})" if exc.detail else ""
        match exc.kind:
            case PaperlessFailure.REFUSED_TOKEN:
                return DestinationMisconfigured(
                    f"{where} refused the API token; check it (My Profile there shows the user's token)."
                )
            case PaperlessFailure.FORBIDDEN:
                return DestinationMisconfigured(
                    f"{where} does not let the token's user {doing}{said}; give that user the permission."
                )
            case PaperlessFailure.NOT_FOUND:
                return DestinationMisconfigured(
                    f"{where} answered 404 when asked to {doing}: check the host, and its path if "
                    "Paperless-ngx is served below one."
                )
            case PaperlessFailure.UNSUPPORTED_VERSION:
                return DestinationMisconfigured(
                    f"{where} does not speak API version {API_VERSION}; DocuElevate needs Paperless-ngx "
                    "2.16 or later."
                )
            case PaperlessFailure.NOT_PAPERLESS:
                return DestinationMisconfigured(
                    f"{where} did not answer as Paperless-ngx's API: {exc.message}."
                )
            case PaperlessFailure.INVALID:
                return DeliveryFailed(f"{where} refused to {doing}{said}.")
        return DeliveryTemporarilyFailed(f"{where} could not {doing} for now: {exc.message}.")


class _TaskGone(Exception):
    """Paperless-ngx no longer knows a task an earlier run kept the receipt of."""


class _MemoryReceipts:
    """The receipt book of a kind used outside a delivery (a check, a test): this object's."""

    def __init__(self) -> None:
        self._receipt = ""

    def receipt(self) -> str:
        return self._receipt

    def keep(self, receipt: str) -> None:
        self._receipt = receipt


def _md5_of(local: LocalFile) -> str:
    """The file's MD5, as Paperless-ngx keeps it (``checksum``) to know duplicates by."""
    digest = hashlib.md5(usedforsecurity=False)
    with local.path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _field_targets(absender: str, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (metadata field, custom field) pairs: the mapping, and the sender into the sender's
    field unless the mapping fills that field already."""
    targets = list(mapping.items())
    if absender and absender not in mapping.values():
        targets.append(("absender", absender))
    return targets


def _meaningful(value: Any) -> str:
    """``value`` as text, or "" for nothing found (empty, "Unknown")."""
    text = "" if value is None else str(value).strip()
    return "" if text.casefold() in _NOTHING else text


def _type_name(document_type: str) -> str:
    """A document type as people name it: ``bank_statement`` is "Bank statement"."""
    if document_type.islower() and " " not in document_type:
        return document_type.replace("_", " ").capitalize()
    return document_type


def _field_value(field: CustomField, raw: Any) -> Any:
    """``raw`` as a value of ``field``'s type, or None when it has none that fits."""
    if isinstance(raw, list | tuple):
        items = [_meaningful(item) for item in raw if not isinstance(item, dict)]
        monetary = [item for item in raw if isinstance(item, dict)]
        raw = monetary[0] if monetary and field.data_type == "monetary" else ", ".join(i for i in items if i)
    if isinstance(raw, dict):
        if field.data_type != "monetary":
            return None
        amount = _decimal(raw.get("value"))
        currency = str(raw.get("currency") or "").upper()
        if amount is None:
            return None
        return f"{currency}{amount:.2f}" if re.fullmatch(r"[A-Z]{3}", currency) else f"{amount:.2f}"
    text = _meaningful(raw) if not isinstance(raw, bool) else str(raw).lower()
    if not text:
        return None
    match field.data_type:
        case "string":
            return text[:STRING_FIELD_LIMIT]
        case "longtext":
            return text
        case "url":
            return text if urlsplit(text).scheme in {"http", "https"} and urlsplit(text).netloc else None
        case "date":
            try:
                return date.fromisoformat(text[:10]).isoformat()
            except ValueError:
                return None
        case "boolean":
            return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
                text.casefold()
            )
        case "integer":
            return int(text) if re.fullmatch(r"-?\d{1,15}", text) else None
        case "float":
            number = _decimal(text)
            return float(number) if number is not None else None
        case "monetary":
            amount = _decimal(text)
            return f"{amount:.2f}" if amount is not None else None
        case "select":
            labels = {label.casefold(): option for option, label in field.options}
            return labels.get(text.casefold())
    return None  # document links, and types this release does not know


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _check_host(host: str, *, public_only: bool) -> None:
    parts = urlsplit(host)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput("The Paperless-ngx host must be an address such as https://paperless.example.com.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("The Paperless-ngx host must not carry a user name, password or query.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("The Paperless-ngx host has an invalid port.") from None
    if public_only:
        public_host_check(parts.hostname, port=port, what="The Paperless-ngx host")


def _clean_mapping(value: Any) -> dict[str, str]:
    """The custom field mapping: our metadata field -> their custom field name. Given as
    an object or as its JSON text (the form PAPERLESS_CUSTOM_FIELDS_MAPPING has)."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidInput("The custom field mapping is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidInput('The custom field mapping must be an object such as {"absender": "Sender"}.')
    if len(value) > MAX_MAPPED_FIELDS:
        raise InvalidInput(f"The custom field mapping may name at most {MAX_MAPPED_FIELDS} fields.")
    mapping: dict[str, str] = {}
    for ours, theirs in value.items():
        if not isinstance(theirs, str) or not str(ours).strip() or not theirs.strip():
            raise InvalidInput(
                "Each entry of the custom field mapping names a metadata field and a custom field."
            )
        if len(theirs.strip()) > NAME_LIMIT or len(str(ours).strip()) > NAME_LIMIT:
            raise InvalidInput(f"Names in the custom field mapping have at most {NAME_LIMIT} characters.")
        mapping[str(ours).strip()] = theirs.strip()
    return mapping
