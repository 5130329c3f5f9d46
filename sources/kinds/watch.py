"""Watched folders: files a scanner, a share or a script drops in a folder on this machine.

A file is taken once it is stable: its modification and change times are both at least
``settle_seconds`` old, and its size and times are the same when it is opened as when the
folder was walked. The change time (ctime) is what copy tools cannot set back, so a copy
that keeps the original's modification time is still waited for while it is written.

Hidden files and folders (a leading dot), Office lock files (``~$…``) and the names
download and copy tools write to before renaming (``.part``, ``.tmp``, ``.crdownload``, …)
are left alone, as are symbolic links and anything that is not a regular file (a link
could point anywhere on the machine). Sub-folders are walked; their names can become tags.

After its document is made, a file moves to ``processed/`` in the watched folder (its
sub-folders kept), or is deleted when ``delete_after`` says so; a file ingest refuses
(unsupported, too large) moves to ``failed/`` with the reason beside it in ``<name>.txt``.
The ledger's key is the file's path, size and modification time: a poller killed before
the move finds the file taken and only moves it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from django.conf import settings as django_settings

from docuelevate.errors import InvalidInput
from documents.storage import read_chunks
from sources.kinds.base import EnvironmentSource, Kind, PollContext, SourceMisconfigured, Taken
from sources.models import ItemState

PROCESSED = "processed"
FAILED = "failed"
# What download, copy and office tools write to before the real name appears.
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp", ".filepart")


@dataclass(frozen=True)
class FolderRules:
    """What a folder source does with its files besides finding them, for a watched folder
    and a remote one (``sources.kinds.remote``) alike."""

    settle_seconds: int
    delete_after: bool
    subfolder_tags: bool
    tags: tuple[str, ...]

    NAMES: ClassVar[frozenset[str]] = frozenset({"settle_seconds", "delete_after", "subfolder_tags", "tags"})
    # How the forms of folder sources ask for them (``Kind.setting_names`` and the rest).
    SETTING_NAMES: ClassVar[tuple[str, ...]] = ("settle_seconds", "delete_after", "subfolder_tags", "tags")
    FLAG_SETTINGS: ClassVar[tuple[str, ...]] = ("delete_after", "subfolder_tags")
    HELP_TEXTS: ClassVar[Mapping[str, str]] = {
        "settle_seconds": "How long a file must stay unchanged before it is taken, so that a scanner "
        "or a copy still writing it is waited for, e.g. 5.",
        "delete_after": "Delete a file once its document is made. Otherwise it moves to processed/ "
        "inside the folder.",
        "subfolder_tags": "Tag a document with the names of the sub-folders its file was in: "
        "invoices/2026/scan.pdf gets the tags invoices and 2026.",
        "tags": "Tags every document from this folder gets, separated by commas, e.g. scanner, office.",
    }

    @classmethod
    def cleaned(cls, settings: Mapping[str, Any], *, default_settle: int, max_settle: int) -> dict[str, Any]:
        """The rules among ``settings`` checked, as they are stored; InvalidInput otherwise."""
        settle = settings.get("settle_seconds", default_settle)
        if not isinstance(settle, int) or isinstance(settle, bool) or not 0 <= settle <= max_settle:
            raise InvalidInput(f"settle_seconds must be a whole number of seconds from 0 to {max_settle}.")
        tags = settings.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise InvalidInput("tags must be a list of names.")
        return {
            "settle_seconds": settle,
            "delete_after": bool(settings.get("delete_after", False)),
            "subfolder_tags": bool(settings.get("subfolder_tags", False)),
            "tags": [tag.strip()[:64] for tag in tags if tag.strip()],
        }

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> FolderRules:
        """The rules of settings ``cleaned`` accepted."""
        return cls(
            settle_seconds=settings["settle_seconds"],
            delete_after=settings["delete_after"],
            subfolder_tags=settings["subfolder_tags"],
            tags=tuple(settings["tags"]),
        )

    def tags_for(self, folders: Iterable[str]) -> list[str]:
        """A file's tags: the source's, then the names of the sub-folders it is in if wanted."""
        return [*self.tags, *(folders if self.subfolder_tags else ())]


SETTINGS = {"path", *FolderRules.NAMES}


class WatchKind(Kind):
    label = "Watched folder"
    setting_names = ("path", *FolderRules.SETTING_NAMES)
    flag_settings = FolderRules.FLAG_SETTINGS
    number_settings = ("settle_seconds",)
    list_settings = ("tags",)
    help_texts = {
        "path": "The folder on the server to take files from: an absolute path outside WORKDIR that "
        "the workers' user can read and write, e.g. /srv/scans.",
        **FolderRules.HELP_TEXTS,
    }
    system_wide_only = True

    def __init__(self, *, path: Path, rules: FolderRules) -> None:
        self.root = path
        self.rules = rules

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not system_wide:
            # A folder on the server is the operator's to hand out, never a user's to pick.
            raise InvalidInput("Only operators can watch a folder on the server.")
        unknown = sorted(set(settings) - SETTINGS)
        if unknown or secrets:
            raise InvalidInput(f"A watched folder has no setting {', '.join(unknown or sorted(secrets))}.")
        raw = str(settings.get("path") or "").strip()
        if not raw or not Path(raw).is_absolute():
            raise InvalidInput("The folder must be an absolute path, such as /srv/scans.")
        path = Path(os.path.normpath(raw))
        workdir = Path(django_settings.WORKDIR).resolve()
        if path.resolve() == workdir or workdir in path.resolve().parents:
            raise InvalidInput("The folder cannot be inside WORKDIR, where DocuElevate keeps its own files.")
        rules = FolderRules.cleaned(
            settings, default_settle=django_settings.WATCH_FOLDER_SETTLE_SECONDS, max_settle=3600
        )
        return {"path": str(path), **rules}, {}

    @classmethod
    def initial_settings(cls) -> dict[str, Any]:
        return {
            "settle_seconds": django_settings.WATCH_FOLDER_SETTLE_SECONDS,
            "delete_after": django_settings.WATCH_FOLDER_DELETE_AFTER_PROCESS,
            "subfolder_tags": False,
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(path=Path(settings["path"]), rules=FolderRules.of(settings))

    @classmethod
    def from_environment(cls) -> list[EnvironmentSource]:
        return [
            EnvironmentSource(
                key=f"env:watch:{folder}",
                name=f"Watched folder {folder}"[:100],
                settings={
                    "path": folder,
                    "delete_after": django_settings.WATCH_FOLDER_DELETE_AFTER_PROCESS,
                    "settle_seconds": django_settings.WATCH_FOLDER_SETTLE_SECONDS,
                },
                secrets={},
                poll_interval_minutes=django_settings.WATCH_FOLDER_POLL_INTERVAL,
            )
            for folder in django_settings.WATCH_FOLDERS
        ]

    def check(self) -> None:
        if not self.root.is_dir():
            raise SourceMisconfigured(f"The folder {self.root} does not exist or is not a folder.")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SourceMisconfigured(f"The folder {self.root} cannot be read by the worker's user.")
        if not os.access(self.root, os.W_OK):
            raise SourceMisconfigured(
                f"The folder {self.root} cannot be written by the worker's user, so taken files "
                "cannot be moved to processed/."
            )

    def poll(self, context: PollContext) -> int:
        self.check()
        made = 0
        for path, seen in self._stable_files():
            relative = path.relative_to(self.root)
            ref = _printable(path)
            key = f"{_printable(relative)}|{seen.st_size}|{seen.st_mtime_ns}"
            done = context.seen(key)
            if done is None:
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    continue  # taken away since the walk
                with handle:
                    now = os.fstat(handle.fileno())
                    if (now.st_size, now.st_mtime_ns) != (seen.st_size, seen.st_mtime_ns):
                        continue  # still being written after all: next time
                    done = context.take(
                        key=key,
                        ref=ref,
                        filename=_printable(Path(path.name)),
                        chunks=read_chunks(handle),
                        tags=self.rules.tags_for(_printable(Path(part)) for part in relative.parent.parts),
                    )
                made += done.new and done.state == ItemState.INGESTED
            self._put_away(path, relative, done)
        return made

    def _stable_files(self) -> Iterator[tuple[Path, os.stat_result]]:
        settled_before = time.time() - self.rules.settle_seconds
        for folder, folders, files in os.walk(self.root, onerror=_walk_failed):
            here = Path(folder)
            folders[:] = sorted(
                name
                for name in folders
                if not name.startswith(".") and not (here == self.root and name in {PROCESSED, FAILED})
            )
            for name in sorted(files):
                if ignored_name(name):
                    continue
                path = here / name
                try:
                    seen = path.lstat()
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(seen.st_mode):
                    continue  # links, sockets, devices
                if max(seen.st_mtime, seen.st_ctime) > settled_before:
                    continue  # written to, or moved in, too recently
                yield path, seen

    def _put_away(self, path: Path, relative: Path, taken: Taken) -> None:
        """What comes after the file is taken: deleted, or moved to processed/ or failed/."""
        if taken.state == ItemState.INGESTED and self.rules.delete_after:
            path.unlink(missing_ok=True)
            return
        shelf = self.root / (FAILED if taken.state == ItemState.FAILED else PROCESSED)
        target = _free_name(shelf / relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.rename(target)
        except FileNotFoundError:
            return  # someone else moved it meanwhile
        if taken.state == ItemState.FAILED:
            reason = taken.detail or "It could not be taken in."
            target.with_name(target.name + ".txt").write_text(reason + "\n", encoding="utf-8")


def ignored_name(name: str) -> bool:
    lowered = name.lower()
    return name.startswith((".", "~$")) or lowered.endswith(TEMPORARY_SUFFIXES)


def _free_name(target: Path) -> Path:
    """``target``, or ``name (2).pdf``, ``name (3).pdf``, … when that is taken."""
    candidate, number = target, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".txt").exists():
        number += 1
        candidate = target.with_name(f"{target.stem} ({number}){target.suffix}")
    return candidate


def _printable(path: Path) -> str:
    # A name that is not UTF-8 on disk is kept readable (and storable) with escapes.
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _walk_failed(error: OSError) -> None:
    # A sub-folder that cannot be read is skipped; the root's own trouble is check()'s.
    return None
