"""The free-space floor of WORKDIR: new work stops cleanly before the disk fills.

WORKDIR holds the originals, the processed files, every step's scratch copies and (in the
embedded mode) the database and the broker, so a full disk would fail documents half-written
and could stop the database. Below ``MIN_FREE_DISK_MB`` free:

- every door that takes in a file (the WSGI body spool, the upload handler, the ingest
  service, and so watched folders and mailboxes) refuses with ``InsufficientStorage`` (507);
- the pipeline pauses a document's next step instead of failing it, and runs it again by
  itself once there is room (documents.pipeline.runner);
- the readiness and health probes say so (ops.probes.workdir).

A write that finds the disk full anyway (several uploads at once, another program) is
recognised by its errno, never by its message, and reported the same way.
"""

from __future__ import annotations

import errno
import shutil

from django.conf import settings

from docuelevate.errors import InsufficientStorage

# errnos meaning "no room": the file system is full, or this user's quota is.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes() -> int:
    """Bytes free for this process in WORKDIR's file system (a statvfs: cheap)."""
    return shutil.disk_usage(settings.WORKDIR).free


def floor_bytes() -> int:
    """The free bytes WORKDIR keeps (MIN_FREE_DISK_MB)."""
    return int(settings.MIN_FREE_DISK_MB) * 1024 * 1024


def has_room(*, incoming: int = 0) -> bool:
    """Whether ``incoming`` more bytes fit while WORKDIR keeps its floor."""
    return free_bytes() - max(incoming, 0) >= floor_bytes()


def no_room_error() -> InsufficientStorage:
    """The one refusal every door gives, in the same words."""
    return InsufficientStorage(
        "The server is running out of storage space, so it cannot take in files right now. "
        "Nothing was stored; try again later."
    )


def require_room(*, incoming: int = 0) -> None:
    """Raise InsufficientStorage unless ``incoming`` more bytes fit above the floor."""
    if not has_room(incoming=incoming):
        raise no_room_error()


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found no room (ENOSPC, EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in _NO_ROOM


def pause_reason() -> str:
    """Why processing waits, for the document's log and the probes."""
    free_mb = free_bytes() // (1024 * 1024)
    return (
        f"Paused: disk nearly full ({free_mb} MiB free in WORKDIR, MIN_FREE_DISK_MB is "
        f"{settings.MIN_FREE_DISK_MB}). Processing resumes by itself when space returns."
    )
