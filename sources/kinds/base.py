"""The interface every source kind implements, and the errors kinds raise.

A kind reads one protocol (IMAP, a local folder, …) for one Source row. The polling service
(``sources.polling``) owns everything around it: the one-poller lease, the source's state,
the schedule. The ledger (``sources.ledger``) owns exactly-once. A kind walks what is new
and hands each item to ``PollContext.take``; only once ``take`` has answered does the kind
do what comes after (mark a mail seen, move a file to ``processed/``), so a poller killed
in between leaves an item that the next poll finds in the ledger and only finishes.

Every failure is a ``SourceFailed`` whose class carries the kind the service records; the
message is for people and never quotes a secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from documents.models import FailureKind
from sources.models import ItemState, Source


class SourceFailed(Exception):
    """The poll cannot go on as things are; ``kind`` is what the source records."""

    kind: ClassVar[FailureKind] = FailureKind.PERMANENT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceTemporarilyFailed(SourceFailed):
    """A passing problem (connection refused or dropped, a timeout); the next poll retries."""

    kind = FailureKind.TEMPORARY


class SourcePaused(SourceTemporarilyFailed):
    """WORKDIR is below its free-space floor (docuelevate.diskspace): nothing more is taken
    in, and the item being taken stays claimed, so a later poll takes it once there is room."""

    kind = FailureKind.DISK_FULL


class SourceMisconfigured(SourceFailed):
    """The settings or credentials are wrong (a refused password, no such folder): every
    poll fails until someone fixes it."""

    kind = FailureKind.CONFIGURATION


class LeaseLost(Exception):
    """Another poller holds the source now (this one was too slow to renew its lease)."""


@dataclass(frozen=True)
class Taken:
    """What became of an item handed to ``take``."""

    state: ItemState
    document_id: int | None
    # True when this look made the decision; False when an earlier poll already had.
    new: bool
    # Why it failed or was skipped, for people.
    detail: str = ""

    @property
    def done(self) -> bool:
        """Whether the item is finished with: the kind may do what comes after."""
        return self.state != ItemState.CLAIMED


class PollContext(Protocol):
    """What a kind gets from the polling service while it walks its source."""

    source: Source

    def take(
        self, *, key: str, ref: str, filename: str, chunks: Iterable[bytes], tags: Iterable[str] = ()
    ) -> Taken:
        """Make a document of ``chunks`` unless ``key`` was taken before; exactly once."""
        ...

    def skip(self, *, key: str, ref: str, reason: str) -> Taken:
        """Record that ``key`` is left out on purpose (filtered), so it is not looked at again."""
        ...

    def seen(self, key: str) -> Taken | None:
        """The ledger's answer for ``key``, without taking anything (None: never seen)."""
        ...

    def renew(self) -> None:
        """Keep the poll's lease; LeaseLost when another poller has the source now."""
        ...


class Kind(ABC):
    """A reader of one source. Built by ``from_settings`` from cleaned settings."""

    label: ClassVar[str]
    # Secrets the kind comes by itself (a refresh token the provider replaced while in use),
    # which the environment's source keeps from its row when it is brought in step with the
    # variables; ``clean`` drops them once they no longer belong to the given credentials.
    carried_secret_names: ClassVar[tuple[str, ...]] = ()
    # Where a kind hands secrets the provider replaced while in use, to be stored with the
    # source (``sources.kinds.kind_for`` sets it); None keeps them in memory only.
    on_secrets_renewed: Callable[[Mapping[str, Any]], None] | None = None

    # What the pages and the admin ask for: ``sources/pages/forms.py`` builds a field for
    # each setting and secret from these, so no form knows a kind by name. Settings not
    # named a flag (yes/no), a number, a list (entered separated by commas) or a choice
    # are text. ``help_texts`` says what to enter in each, with an example.
    setting_names: ClassVar[tuple[str, ...]] = ()
    secret_names: ClassVar[tuple[str, ...]] = ()
    flag_settings: ClassVar[tuple[str, ...]] = ()
    number_settings: ClassVar[tuple[str, ...]] = ()
    list_settings: ClassVar[tuple[str, ...]] = ()
    choice_settings: ClassVar[Mapping[str, tuple[tuple[str, str], ...]]] = {}
    help_texts: ClassVar[Mapping[str, str]] = {}
    # Secrets entered on several lines (a private key): a text box that is never filled back.
    multiline_names: ClassVar[tuple[str, ...]] = ()
    # A kind only operators may add, always system-wide (a folder on the server itself).
    system_wide_only: ClassVar[bool] = False

    @classmethod
    def initial_settings(cls) -> dict[str, Any]:
        """What a new source's form starts with: the values ``clean`` takes when none is given."""
        return {}

    @classmethod
    @abstractmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Settings and secrets checked and normalised; InvalidInput with the reason."""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        """A reader from settings ``clean`` accepted."""

    @classmethod
    def from_environment(cls) -> list[EnvironmentSource]:
        """The system-wide sources of this kind the environment defines (none by default)."""
        return []

    @abstractmethod
    def poll(self, context: PollContext) -> int:
        """Take everything new; the number of documents made."""

    @abstractmethod
    def check(self) -> None:
        """Connect and sign in, read nothing; a SourceFailed with the reason otherwise."""


@dataclass(frozen=True)
class EnvironmentSource:
    """A system-wide source as the environment describes it (``IMAP1_*``, ``WATCH_FOLDERS``)."""

    key: str  # "env:<kind>:<which>", the row's system_key
    name: str
    settings: dict[str, Any]
    secrets: dict[str, Any]
    poll_interval_minutes: int
