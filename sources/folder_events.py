"""Filesystem events for the local watched folders, so a long-running ``poll_sources`` takes
a file seconds after it settles instead of at the folder's next turn.

Events are only a wake-up call: the poll that follows applies the same stability rule and
ledger as any other, and a file whose events never arrive (a network share, where the
kernel sees no change made by another machine) is still taken at the folder's turn.
An event starts a countdown of the folder's settle time (plus a margin), since the file is
by definition not stable at the moment it changed; more events push the poll back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import watchfiles

# How long one wait for events lasts: the caller's loop runs at least this often.
TICK_MILLISECONDS = 1000
SETTLE_MARGIN_SECONDS = 0.5


class FolderEvents:
    """Which watched sources have had files land, and when each is worth polling."""

    def __init__(self, folders: dict[int, tuple[Path, int]]) -> None:
        # source id -> (folder, settle seconds)
        self._folders = {source_id: (path.resolve(), settle) for source_id, (path, settle) in folders.items()}
        self._poll_at: dict[int, float] = {}
        self._changes: Iterator[set[tuple[watchfiles.Change, str]]] | None = None
        existing = [str(path) for path, _ in self._folders.values() if path.is_dir()]
        if existing:
            self._changes = watchfiles.watch(
                *existing,
                watch_filter=_worth_a_look,
                rust_timeout=TICK_MILLISECONDS,
                yield_on_timeout=True,
                raise_interrupt=True,
            )

    def wait(self) -> list[int]:
        """Wait up to a tick for events; the sources whose countdown has run out."""
        if self._changes is None:
            time.sleep(TICK_MILLISECONDS / 1000)
        else:
            now = time.monotonic()
            for _change, changed in next(self._changes):
                for source_id in self._owners_of(Path(changed)):
                    settle = self._folders[source_id][1]
                    self._poll_at[source_id] = now + settle + SETTLE_MARGIN_SECONDS
        now = time.monotonic()
        ready = sorted(source_id for source_id, when in self._poll_at.items() if when <= now)
        for source_id in ready:
            del self._poll_at[source_id]
        return ready

    def _owners_of(self, changed: Path) -> list[int]:
        return [source_id for source_id, (folder, _) in self._folders.items() if folder in changed.parents]


def _worth_a_look(change: watchfiles.Change, path: str) -> bool:
    # A file taken away (moved to processed/, deleted) is no news; neither are hidden names.
    return change != watchfiles.Change.deleted and not Path(path).name.startswith(".")
