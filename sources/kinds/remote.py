"""Remote folders: files taken from a folder on an FTP, SFTP, WebDAV or Nextcloud server, in
a Dropbox, a OneDrive or a Google Drive folder, or below a prefix in an S3 bucket, signed in
exactly as the destinations are.

The destinations' kinds do all the talking (connection, TLS, host keys, the translation of
each protocol's errors); they list a folder, stream a file, rename and make folders for
this module (``list_folder``, ``read_chunks``, ``rename``, ``make_folder``). Their errors
become the source's by the failure kind their class carries, never by their wording.

A remote file is taken when it is stable, judged on what the server tells:
- its modification time, as the server reports it, is at least ``settle_seconds`` old
  (a server whose clock runs ahead only makes the wait longer), and
- its size is the same when it is looked at again just before the download as in the
  listing, and as many bytes arrive as the listing said; a file that changed in between is
  left for the next poll.
S3 objects appear whole (a put is atomic), so for S3 the settle time only guards against a
client that writes an object several times in a row.

Hidden and temporary names are left alone as in a watched folder; sub-folders are walked
(their names can become tags), but not ``processed/`` and ``failed/`` at the top. The
ledger's key is the path, the size and the modification time (or the ETag where the server
gives no time), so a file is taken once; after its document is made it moves to
``processed/`` beside the others (sub-folders kept), or is deleted with ``delete_after``; a
file ingest refuses moves to ``failed/`` with the reason in ``<name>.txt``. A poller killed
between the document and the move finds the file in the ledger and only moves it.

A folder a destination of the same account delivers into is refused when the source is
cleaned (``_not_where_documents_are_delivered``): delivered documents would come back in.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Self

from django.conf import settings as django_settings

from destinations.kinds.base import DeliveryFailed, ListedEntry, LocalFile
from destinations.kinds.dropbox import DropboxKind
from destinations.kinds.ftp import FtpKind
from destinations.kinds.google_drive import GoogleDriveKind
from destinations.kinds.nextcloud import NextcloudKind
from destinations.kinds.onedrive import OneDriveKind
from destinations.kinds.s3 import S3Kind
from destinations.kinds.sftp import SftpKind
from destinations.kinds.webdav import WebDavKind
from destinations.selectors import destination_settings_of_kind
from docuelevate.errors import InvalidInput
from documents.models import FailureKind
from sources.kinds.base import (
    EnvironmentSource,
    Kind,
    PollContext,
    SourceFailed,
    SourceMisconfigured,
    SourceTemporarilyFailed,
    Taken,
)
from sources.kinds.watch import FAILED, PROCESSED, FolderRules, ignored_name
from sources.models import ItemState


class _ChangedWhileRead(Exception):
    """The file's length differs from the listing's: still being written after all."""


@contextmanager
def _speaking() -> Iterator[None]:
    """The destination kind's errors as the source's, decided on their failure kind."""
    try:
        yield
    except DeliveryFailed as exc:
        raise source_failure(exc) from None


def source_failure(exc: DeliveryFailed) -> SourceFailed:
    if exc.kind == FailureKind.CONFIGURATION:
        return SourceMisconfigured(exc.message)
    if exc.kind == FailureKind.TEMPORARY:
        return SourceTemporarilyFailed(exc.message)
    return SourceFailed(exc.message)


class RemoteFolderKind(Kind):
    """One folder on a remote server, read through ``protocol`` (a destination kind)."""

    protocol: ClassVar[Any]  # the destination kind's class
    name: ClassVar[str]  # the SourceKind value (and DestinationKind's), the <KIND> of its variables
    folder_setting: ClassVar[str] = "folder"
    # The variable naming the environment's folder, where it is not <KIND>_INGEST_FOLDER.
    environment_folder_variable: ClassVar[str] = ""
    # The (cleaned) settings that name one account on one server: a source and a destination
    # with the same values read and write the same files.
    account_settings: ClassVar[tuple[str, ...]] = ("host", "port", "username")

    # Whether the ledger tells a file's versions apart by the server's own version of its
    # content (Dropbox's content_hash) rather than by its modification time: where uploads
    # appear whole and every new content has a new version, that is the exact one.
    ledger_by_version: ClassVar[bool] = False

    # Help that differs from the destination's: a source's form has no Connect button.
    own_help_texts: ClassVar[Mapping[str, str]] = {}

    # Settings of the destination kind that only writing uses.
    write_only_settings: ClassVar[frozenset[str]] = frozenset({"storage_class", "acl"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The form of a remote folder: the destination kind's sign-in settings and secrets,
        the folder to read, and the folder rules."""
        super().__init_subclass__(**kwargs)
        protocol = cls.protocol
        cls.setting_names = (
            *(name for name in protocol.setting_names if name not in cls.write_only_settings),
            *FolderRules.SETTING_NAMES,
        )
        # Secrets the destination kind comes by itself (a renewed refresh token) are kept by
        # the services across edits, never asked for on a form.
        cls.secret_names = tuple(
            name for name in protocol.secret_names if name not in protocol.carried_secret_names
        )
        cls.carried_secret_names = tuple(protocol.carried_secret_names)
        cls.multiline_names = tuple(protocol.multiline_names)
        cls.flag_settings = (*protocol.flag_settings, *FolderRules.FLAG_SETTINGS)
        cls.number_settings = ("settle_seconds",)
        cls.list_settings = ("tags",)
        cls.help_texts = {
            **protocol.help_texts,
            cls.folder_setting: "The folder to take files from; processed/ and failed/ are made "
            "inside it. Never the folder documents are delivered to, e.g. scans/inbox.",
            **FolderRules.HELP_TEXTS,
            **cls.own_help_texts,
        }

    @classmethod
    def initial_settings(cls) -> dict[str, Any]:
        return {
            **dict(cls.protocol.flag_settings),
            "settle_seconds": django_settings.REMOTE_INGEST_SETTLE_SECONDS,
            "delete_after": False,
            "subfolder_tags": False,
        }

    def __init__(self, *, client: Any, folder: str, rules: FolderRules) -> None:
        self.client = client
        self.root = folder
        self.rules = rules

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        protocol = {name: value for name, value in settings.items() if name not in FolderRules.NAMES}
        # The destination's own checks: a user's host must be public, host keys, TLS, …
        cleaned, kept = cls.protocol.clean(protocol, secrets, system_wide=system_wide)
        if not str(cleaned.get(cls.folder_setting) or "").strip("/"):
            # Never a whole account or bucket: processed/ would land among everything else.
            raise InvalidInput(f"A remote folder needs the {cls.folder_setting} to take files from.")
        rules = FolderRules.cleaned(
            settings, default_settle=django_settings.REMOTE_INGEST_SETTLE_SECONDS, max_settle=24 * 3600
        )
        cls._not_where_documents_are_delivered(cleaned)
        cleaned.update(rules)
        return cleaned, kept

    @classmethod
    def _not_where_documents_are_delivered(cls, cleaned: Mapping[str, Any]) -> None:
        """InvalidInput when a destination of the same account (the environment's
        ``<KIND>_*`` one, or anyone's saved one) delivers into the folder: each delivered
        document would come back in as a new one, and be delivered again. That is when the
        folder is the delivery folder, or holds it (sub-folders are walked), or lies inside
        it while a folder template sends deliveries into sub-folders."""
        account = cls._account(cleaned)
        from_root, folder = cls._place(cleaned, folder_setting=cls.folder_setting)
        delivering = destination_settings_of_kind(kind=cls.name)
        environment = cls.protocol.from_environment()
        if environment is not None:
            try:  # cleaned as rows are, so ports, URLs and folders compare alike
                settings = cls.protocol.clean(environment.settings, environment.secrets, system_wide=True)[0]
                delivering.append((settings, ""))
            except InvalidInput:
                pass  # not valid: the environment's destination delivers nothing
        for settings, template in delivering:
            delivered_from_root, delivered = cls._place(settings, folder_setting="folder")
            if cls._account(settings) != account or delivered_from_root != from_root:
                continue
            holds_deliveries = folder[: len(delivered)] == delivered  # the same, or inside it
            inside = len(folder) > len(delivered)
            if (holds_deliveries and (template or not inside)) or delivered[: len(folder)] == folder:
                where = "/".join(delivered) or "the top folder"
                raise InvalidInput(
                    f"Documents are delivered to {where} on this {cls.label} account; a remote folder "
                    f"{'/'.join(folder)} would take them in again: choose one apart from it."
                )

    @classmethod
    def _place(cls, settings: Mapping[str, Any], *, folder_setting: str) -> tuple[bool, tuple[str, ...]]:
        """A folder as (counted from the server's root?, its parts). Where the protocol has
        ``folder_from_root`` (FTP, SFTP), ``/srv/scans`` and ``srv/scans/`` with it are one
        place, ``srv/scans`` from the login folder another; elsewhere slashes around a
        folder change nothing."""
        folder = str(settings.get(folder_setting) or "")
        from_root = "folder_from_root" in cls.protocol.setting_names and (
            folder.startswith("/") or bool(settings.get("folder_from_root"))
        )
        return from_root, tuple(part for part in folder.split("/") if part)

    @classmethod
    def _account(cls, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(settings.get(name) or "").strip().lower() for name in cls.account_settings)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        protocol = {name: value for name, value in settings.items() if name not in FolderRules.NAMES}
        return cls(
            client=cls.protocol.from_settings(protocol, secrets),
            folder=str(settings[cls.folder_setting]).strip("/"),
            rules=FolderRules.of(settings),
        )

    @classmethod
    def from_environment(cls) -> list[EnvironmentSource]:
        prefix = cls.name.upper()
        if not getattr(django_settings, f"{prefix}_INGEST_ENABLED"):
            return []
        folder = getattr(django_settings, cls.environment_folder_variable or f"{prefix}_INGEST_FOLDER")
        account = cls.protocol.environment_account()
        return [
            EnvironmentSource(
                key=f"env:{cls.name}",
                name=f"{cls.label} folder {folder} (environment)"[:100],
                settings={
                    **account.settings,
                    cls.folder_setting: folder,
                    "delete_after": getattr(django_settings, f"{prefix}_INGEST_DELETE_AFTER_PROCESS"),
                },
                secrets=dict(account.secrets),
                poll_interval_minutes=django_settings.REMOTE_INGEST_POLL_INTERVAL,
            )
        ]

    # --- Polling --------------------------------------------------------------------------

    def check(self) -> None:
        self._hand_on_renewed_secrets()
        try:
            with _speaking():
                self.client.list_folder(self.root)
        finally:
            self.client.close()

    def poll(self, context: PollContext) -> int:
        self._hand_on_renewed_secrets()
        made = 0
        try:
            with _speaking():
                for entry in self._stable_files():
                    taken = self._take(entry, context)
                    if taken is None:
                        continue
                    made += taken.new and taken.state == ItemState.INGESTED
                    self._put_away(entry, taken)
        finally:
            self.client.close()
        return made

    def _hand_on_renewed_secrets(self) -> None:
        """Secrets the client's provider replaces while in use (Microsoft's refresh tokens)
        go where ``kind_for`` told this source to store them: the client signs in, not this."""
        self.client.on_secrets_renewed = self.on_secrets_renewed

    def _stable_files(self) -> Iterator[ListedEntry]:
        settled_before = time.time() - self.rules.settle_seconds
        pending = [self.root]
        while pending:
            folder = pending.pop(0)
            for entry in sorted(self.client.list_folder(folder), key=lambda entry: entry.path):
                name = PurePosixPath(entry.path).name
                if entry.is_folder:
                    top_shelf = folder == self.root and name in {PROCESSED, FAILED}
                    if not name.startswith(".") and not top_shelf:
                        pending.append(entry.path)
                    continue
                if ignored_name(name) or entry.size < 0:
                    continue
                if entry.modified is None and not entry.version:
                    continue  # nothing to tell a changed file by
                if entry.modified is not None and entry.modified > settled_before:
                    continue  # written to too recently
                yield entry

    def _take(self, entry: ListedEntry, context: PollContext) -> Taken | None:
        relative = self._relative(entry.path)
        by_version = entry.version and (self.ledger_by_version or entry.modified is None)
        key = f"{relative}|{entry.size}|{entry.version if by_version else entry.modified}"
        done = context.seen(key)
        if done is not None:
            return done
        there = self.client.stat(entry.path)
        if there is None or there.size != entry.size:
            return None  # gone, or changed since the listing: next time
        try:
            return context.take(
                key=key,
                ref=there.remote_id or entry.path,
                filename=PurePosixPath(entry.path).name,
                chunks=self._exactly(entry),
                tags=self.rules.tags_for(PurePosixPath(relative).parent.parts),
            )
        except _ChangedWhileRead:
            return None  # its ledger row stays claimed, and is taken up by a later poll

    def _exactly(self, entry: ListedEntry) -> Iterator[bytes]:
        """The file's bytes as they arrive, refused when more or fewer than listed come."""
        received = 0
        for block in self.client.read_chunks(entry.path):
            received += len(block)
            if received > entry.size:
                raise _ChangedWhileRead(entry.path)
            yield block
        if received != entry.size:
            raise _ChangedWhileRead(entry.path)

    def _put_away(self, entry: ListedEntry, taken: Taken) -> None:
        """What comes after the file is taken: deleted, or moved to processed/ or failed/."""
        if taken.state == ItemState.INGESTED and self.rules.delete_after:
            self.client.remove(entry.path)
            return
        shelf = FAILED if taken.state == ItemState.FAILED else PROCESSED
        # The root is "" where the folder is the client's own root (a Google Drive folder id).
        target = self._free_name(
            "/".join(part for part in (self.root, shelf, self._relative(entry.path)) if part)
        )
        self.client.make_folder(str(PurePosixPath(target).parent))
        self.client.rename(entry.path, target)
        if taken.state == ItemState.FAILED:
            self._write_reason(f"{target}.txt", taken.detail or "It could not be taken in.")

    def _free_name(self, target: str) -> str:
        """``target``, or ``name (2).pdf``, … when a file is there already."""
        path, number = PurePosixPath(target), 1
        candidate = target
        while self.client.stat(candidate) is not None:
            number += 1
            candidate = str(path.with_name(f"{path.stem} ({number}){path.suffix}"))
        return candidate

    def _write_reason(self, path: str, reason: str) -> None:
        content = (reason + "\n").encode()
        with tempfile.NamedTemporaryFile(suffix=".txt") as handle:
            handle.write(content)
            handle.flush()
            local = LocalFile(
                path=Path(handle.name),
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content_type="text/plain",
            )
            self.client.upload(local, path)

    def _relative(self, path: str) -> str:
        if not self.root:
            return path
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path


class FtpFolderKind(RemoteFolderKind):
    protocol = FtpKind
    name = "ftp"
    label = "FTP"


class SftpFolderKind(RemoteFolderKind):
    protocol = SftpKind
    name = "sftp"
    label = "SFTP"


class S3FolderKind(RemoteFolderKind):
    protocol = S3Kind
    name = "s3"
    label = "S3"
    environment_folder_variable = "S3_INGEST_PREFIX"
    account_settings = ("bucket", "endpoint_url")


class WebDavFolderKind(RemoteFolderKind):
    protocol = WebDavKind
    name = "webdav"
    label = "WebDAV"
    account_settings = ("url", "username")


class NextcloudFolderKind(RemoteFolderKind):
    protocol = NextcloudKind
    name = "nextcloud"
    label = "Nextcloud"
    account_settings = ("url", "username")


class DropboxFolderKind(RemoteFolderKind):
    """A folder in a Dropbox. Uploads appear whole there, and each new content has a new
    content_hash, which is the ledger's version of a file; the settle time counts from
    when Dropbox finished the upload (``server_modified``)."""

    protocol = DropboxKind
    name = "dropbox"
    label = "Dropbox"
    # The account is the refresh token's, which settings do not name: any Dropbox
    # destination's folder counts as on the same account, so a folder one delivers to is
    # never read (a folder of the same name in another account is refused too, the safe side).
    account_settings = ()
    ledger_by_version = True
    own_help_texts = {
        "refresh_token": "A refresh token this server's Dropbox app (DROPBOX_APP_KEY) was given for the "
        "account, with offline access (docs/ingestion.md says how), e.g. a1B2c3D4e5AAAAAAAAAAAf….",
    }

    @classmethod
    def _place(cls, settings: Mapping[str, Any], *, folder_setting: str) -> tuple[bool, tuple[str, ...]]:
        # Dropbox paths ignore case: /Archive and archive are one folder.
        from_root, parts = super()._place(settings, folder_setting=folder_setting)
        return from_root, tuple(part.lower() for part in parts)


class OneDriveFolderKind(RemoteFolderKind):
    """A folder in a OneDrive, through Microsoft Graph. Uploads appear whole there (Graph
    keeps an upload session's chunks aside until the last), and the cTag changes with each
    new content: it is the ledger's version of a file; the settle time counts from Graph's
    ``lastModifiedDateTime``."""

    protocol = OneDriveKind
    name = "onedrive"
    label = "OneDrive"
    environment_folder_variable = "ONEDRIVE_INGEST_FOLDER_PATH"
    # As for Dropbox: the refresh token names the account, the settings do not.
    account_settings = ()
    ledger_by_version = True
    own_help_texts = {
        "refresh_token": "A refresh token this server's Microsoft app (ONEDRIVE_CLIENT_ID) was given for "
        "the account, with Files.ReadWrite and offline_access (docs/ingestion.md says how), e.g. M.C5….",
    }

    @classmethod
    def _place(cls, settings: Mapping[str, Any], *, folder_setting: str) -> tuple[bool, tuple[str, ...]]:
        # OneDrive paths ignore case, as Dropbox's do.
        from_root, parts = super()._place(settings, folder_setting=folder_setting)
        return from_root, tuple(part.lower() for part in parts)


class GoogleDriveFolderKind(RemoteFolderKind):
    """A Google Drive folder, named by its id (Drive has no paths: names need not even be
    unique), optionally a folder path below it. The client's root is the folder's id, so
    this source's own root is the path below it, "" for the folder itself. Uploads appear
    whole in Drive, and the md5Checksum changes with each new content: it is the ledger's
    version of a file; the settle time counts from Drive's ``modifiedTime``."""

    protocol = GoogleDriveKind
    name = "google_drive"
    label = "Google Drive"
    folder_setting = "folder_id"
    environment_folder_variable = "GOOGLE_DRIVE_INGEST_FOLDER_ID"
    # As for Dropbox: the settings do not name the account that signs in.
    account_settings = ()
    ledger_by_version = True
    own_help_texts = {
        "folder": "A folder below it to take files from, e.g. Scans. Empty: the folder itself.",
        "credentials_json": "Without use_oauth: the service account's JSON key, as downloaded, e.g. "
        '{"type": "service_account", "client_email": "…", …}.',
        "refresh_token": "With use_oauth: a refresh token this server's Google app (GOOGLE_DRIVE_CLIENT_ID) "
        "was given for the account, with offline access (docs/ingestion.md says how), e.g. 1//0g….",
    }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        protocol = {name: value for name, value in settings.items() if name not in FolderRules.NAMES}
        return cls(
            client=cls.protocol.from_settings(protocol, secrets),
            folder=str(settings.get("folder") or "").strip("/"),
            rules=FolderRules.of(settings),
        )

    @classmethod
    def _place(cls, settings: Mapping[str, Any], *, folder_setting: str) -> tuple[bool, tuple[str, ...]]:
        """A folder as its id and the path below it, for a source and a destination alike
        (a destination's ``folder`` is a path below its ``folder_id`` too). A folder id of
        another folder inside this one cannot be told without asking Google."""
        below = str(settings.get("folder") or "")
        # Drive's names are compared as Drive looks them up: exactly.
        return False, (str(settings.get("folder_id") or "root"), *(part for part in below.split("/") if part))
