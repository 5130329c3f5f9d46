"""The interface every destination kind implements, and the errors kinds raise.

A kind is a small client for one protocol (S3, FTP, WebDAV, …), built from one
Destination row. The delivery service (``destinations.services``) owns everything around
it: the Delivery row, the remote path, check-before-write, collisions, retries, the log.
A kind only moves bytes and answers questions about the remote side:

- ``stat(path)``: what is at ``path`` (size, and the content's SHA-256 where the protocol
  can keep or tell it), so the service can see that a file is already delivered;
- ``content_sha256(path)``: for kinds whose ``stat`` cannot tell the hash (FTP, SFTP), the
  SHA-256 of what is at ``path`` by reading it back; the service asks only when the size
  matches the file it is about to deliver, so a file already there is recognised without
  a second copy;
  can keep or tell it), so the service can see that a file is already delivered; None for
  nothing there, and always for protocols that cannot look (e-mail);
- ``upload(local, path)``: put a local file at ``path`` so that nobody ever sees a half
  file under that name: write to a temporary name and rename where the protocol can (FTP
  RNFR/RNTO, SFTP rename, WebDAV MOVE); S3 puts are atomic by themselves;
- ``remove(path)``: delete ``path``; a path that is not there is fine (and a no-op where
  nothing can be taken back: a sent mail);
- ``check(folder=)``: connect, sign in and prove write permission in ``folder``, leaving
  nothing behind.

Kinds that file by metadata rather than by path (Paperless-ngx) read the document's facts
from ``LocalFile.facts``; kinds whose server finishes an upload on its own time keep the
server's receipt in the delivery's ``ReceiptBook`` (``keep_receipts_in``), so a run that
dies while waiting is followed by one that waits for the same upload instead of sending
it again.

Paths are relative to the root of the remote side (a bucket, an account's home), with
``/`` between folders, already sanitised by ``destinations.paths``.

Every failure is one of three exceptions, and its class carries the kind the service
decides on; the message is for people and never quotes a secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from documents.models import FailureKind


class DeliveryFailed(Exception):
    """This delivery cannot succeed as it is (a file too large for the remote side, a name
    it refuses); retrying would fail the same way. ``kind`` is what the service records."""

    kind: ClassVar[FailureKind] = FailureKind.PERMANENT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeliveryTemporarilyFailed(DeliveryFailed):
    """A passing problem (connection refused, a timeout, a 5xx, throttling, a full quota
    that may be freed); worth retrying later."""

    kind = FailureKind.TEMPORARY


class DestinationMisconfigured(DeliveryFailed):
    """The destination's settings or credentials are wrong (refused sign-in, no such
    bucket or folder, no permission): every delivery there fails until someone fixes it."""

    kind = FailureKind.CONFIGURATION


@dataclass(frozen=True)
class DocumentFacts:
    """What is known about the document delivered, for kinds that file by metadata.

    ``fields`` holds every metadata field by the name DocuElevate's clients know
    (``absender``, ``empfaenger``, ``reference_number``, ``language``, …): what an operator
    can map onto the destination's own fields.
    """

    title: str = ""
    created: date | None = None
    correspondent: str = ""
    document_type: str = ""
    tags: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    # Names this content's delivery to this destination, the same on every attempt and
    # different for new content: a protocol that cannot look before writing marks what it
    # sends with it (a mail's Message-ID), so a repeat is recognisable.
    delivery_key: str = ""


@dataclass(frozen=True)
class LocalFile:
    """The file to deliver: a local path, with its size and SHA-256 worked out once, and
    the facts of its document."""

    path: Path
    size: int
    sha256: str
    content_type: str = "application/pdf"
    facts: DocumentFacts = field(default_factory=DocumentFacts)


class ReceiptBook(Protocol):
    """Where one delivery keeps the receipt of an upload its server finishes later (a
    Paperless-ngx consumption task), across runs: a run that dies while waiting leaves the
    receipt for the next one. What a receipt says is the kind's own business."""

    def receipt(self) -> str:
        """The receipt an earlier run kept, or whatever the delivery last recorded."""

    def keep(self, receipt: str) -> None:
        """Keep ``receipt`` now, before waiting on it; an empty one forgets the last."""


@dataclass(frozen=True)
class RemoteFile:
    """What is at a remote path. ``sha256`` is None where the protocol cannot tell it
    without reading the whole file; the service then asks the kind's ``same_content``,
    which reads the file back (``content_sha256``) when ``size`` matches, or, for kinds
    whose server hashes content its own way, compares ``content_hash``: the server's own
    hash (Dropbox's content_hash, Google Drive's MD5, OneDrive's quickXorHash), which the
    kind can work out for a local file the same way. ``size`` is -1 when unknown (or not a
    file)."""

    path: str
    size: int
    sha256: str | None
    remote_id: str = ""
    version: str = ""
    content_hash: str = ""


@dataclass(frozen=True)
class ListedEntry:
    """One entry of a remote folder, as ``list_folder`` tells it to the sources that take
    files from the destinations' servers (``sources.kinds.remote``). ``path`` is in the
    kind's own terms (as for ``stat``); ``modified`` is POSIX seconds as the server tells
    it (None when it does not); ``version`` is an ETag where the protocol has one."""

    path: str
    is_folder: bool
    size: int
    modified: float | None
    version: str = ""


@dataclass(frozen=True)
class Uploaded:
    """Where a file now is: its path, and the protocol's own id and version where it has them."""

    path: str
    remote_id: str = ""
    remote_version: str = ""


@dataclass(frozen=True)
class EnvironmentDestination:
    """The system-wide destination a kind's ``<KIND>_*`` variables describe."""

    name: str
    settings: dict[str, Any]
    secrets: dict[str, Any] = field(repr=False)


class Kind(ABC):
    """A client for one destination. Use it as a context manager: ``close`` ends the
    connection for protocols that keep one."""

    name: ClassVar[str]  # a DestinationKind value; the log step is upload_to_<name>
    # The keys ``settings`` and ``secrets`` may hold; ``clean`` refuses any other.
    setting_names: ClassVar[tuple[str, ...]]
    secret_names: ClassVar[tuple[str, ...]]
    # Secrets the kind comes by itself (an OAuth refresh token from a connect page, or one
    # the provider replaced while in use), which the environment's destination keeps from
    # its row when it is brought in step with the variables; ``clean`` drops them once
    # they no longer belong to the configured credentials.
    carried_secret_names: ClassVar[tuple[str, ...]] = ()
    # Where a kind hands secrets the provider replaced while in use, to be stored with the
    # destination (``destinations.kinds.kind_for`` sets it); None keeps them in memory only.
    on_secrets_renewed: Callable[[Mapping[str, Any]], None] | None = None
    # The settings that are yes or no, with what each is when not given: a box to tick on
    # the pages (ticked or not at first as given here), a JSON boolean in the API. The
    # others are asked for as text, so ``clean`` takes numbers as text too.
    flag_settings: ClassVar[Mapping[str, bool]] = {}
    # Settings and secrets given as several lines (a private key, a key file's JSON): a
    # text box on the pages rather than one line.
    multiline_names: ClassVar[tuple[str, ...]] = ()
    # What a person enters in each setting and secret, with an example: the help beside its
    # field on the pages and in the admin, written once here for every form that asks.
    help_texts: ClassVar[Mapping[str, str]] = {}

    @classmethod
    @abstractmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Checked and normalised copies of a destination's settings and secrets.

        Raises ``docuelevate.errors.InvalidInput`` naming what is wrong (never a secret's
        value). ``system_wide`` destinations may lean on the server's own credentials
        (an instance role) where a user's must bring their own.
        """

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        """A client for a destination whose settings ``clean`` accepted."""

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        """The system-wide destination ``<KIND>_ENABLED`` and friends describe; None when off."""
        return None

    @abstractmethod
    def stat(self, path: str) -> RemoteFile | None:
        """What is at ``path``, or None when nothing is."""

    def same_content(self, there: RemoteFile, local: LocalFile) -> bool:
        """Whether ``there`` holds ``local``'s content: by the SHA-256 kept with the file, else
        by reading it back when the sizes match (a crash between upload and record must not
        lead to a second copy beside the first). Kinds whose server hashes content its own
        way compare ``content_hash`` instead."""
        if there.sha256 is not None:
            return there.sha256 == local.sha256
        if there.size != local.size:
            return False
        return self.content_sha256(there.path) == local.sha256

    def content_sha256(self, path: str) -> str | None:
        """The SHA-256 of the file at ``path``, read back through the protocol; None when
        nothing is there or the kind cannot read files back. Kinds whose ``stat`` tells the
        hash need not implement it."""
        return None

    @abstractmethod
    def upload(self, local: LocalFile, path: str) -> Uploaded:
        """Put ``local`` at ``path``, replacing what is there, never leaving a half file
        under ``path``. The content's SHA-256 is kept with the file where the protocol can."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Delete ``path``; nothing there is no error."""

    @abstractmethod
    def check(self, *, folder: str) -> None:
        """Connect, sign in and prove that files can be written in ``folder``, leaving none."""

    def keep_receipts_in(self, book: ReceiptBook) -> None:  # noqa: B027 - most servers give none
        """Where to keep the receipt of an upload the server finishes on its own time; the
        delivery service hands each run its delivery's book. Kinds whose uploads are done
        when ``upload`` returns have no receipts and ignore it."""

    def close(self) -> None:  # noqa: B027 - a no-op for kinds without a connection to end
        """End the connection, for kinds that keep one."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
