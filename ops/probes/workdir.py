"""The WORKDIR probe: documents, scratch copies and the embedded broker live there.

It must be writable, have room, and (before going live) outlive the container: a WORKDIR
in the container's writable layer or in memory loses every document at a restart.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from docuelevate import diskspace
from ops.probes.result import CheckResult, failed, passed, warned

logger = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
WORKDIR_FAIL_BELOW = 1024**3  # bytes free: documents and OCR scratch copies stop fitting
WORKDIR_WARN_BELOW = 5 * 1024**3
# Filesystems whose content does not outlive the container or the machine.
CONTAINER_LAYER_TYPES = frozenset({"overlay", "aufs", "fuse.fuse-overlayfs"})
MEMORY_TYPES = frozenset({"tmpfs", "ramfs"})
NOT_WRITABLE = "not writable"
BELOW_FLOOR = "below MIN_FREE_DISK_MB"


def _unescape_mount_point(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, plain)
    return field


def mount_of(path: Path, mountinfo: str) -> tuple[str, str] | None:
    """The mount point holding ``path`` and its filesystem type, from a mountinfo text."""
    best: tuple[str, str] | None = None
    target = PurePosixPath(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        mount_point = _unescape_mount_point(fields[4])
        if not target.is_relative_to(mount_point):
            continue
        # The deepest mount point wins; of two at the same place, the later one is on top.
        if best is None or len(mount_point) >= len(best[0]):
            best = (mount_point, fields[separator + 1])
    return best


def _volatile_storage(workdir: Path, mountinfo: Path) -> str | None:
    """Why files under ``workdir`` would not survive a restart, or None when they would
    (or when this system does not tell)."""
    try:
        mount = mount_of(workdir, mountinfo.read_text())
    except OSError:
        return None
    if mount is None:
        return None
    mount_point, fstype = mount
    if fstype in CONTAINER_LAYER_TYPES and mount_point == "/":
        return f"is in the container's writable layer ({fstype} root), lost when the container is recreated"
    if fstype in MEMORY_TYPES:
        return f"is in memory ({fstype} at {mount_point}), lost at every restart"
    return None


def probe_workdir(
    *, workdir: Path | None = None, mountinfo: Path = MOUNTINFO, thorough: bool = False
) -> CheckResult:
    """Whether WORKDIR is ``writable`` and how many bytes are free (``free_bytes``).

    ``thorough`` also reads the mount table: with documents on local storage, a WORKDIR
    that would not survive a restart fails.
    """
    workdir = Path(workdir or settings.WORKDIR)
    if not workdir.is_dir():
        reason = f"WORKDIR {workdir} does not exist"
        logger.warning("workdir probe: %s", reason)
        return failed(
            "workdir", reason, f"create it: mkdir -p {workdir}", writable=False, reason=NOT_WRITABLE
        )
    try:
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".probe-") as probe:
            probe.write(b"probe")
            probe.flush()
    except OSError as exc:
        reason = f"WORKDIR {workdir} is not writable ({exc.strerror})"
        logger.warning("workdir probe: %s", reason)
        fix = "give the user running DocuElevate write access to it"
        return failed("workdir", reason, fix, writable=False, reason=NOT_WRITABLE)
    volatile = _volatile_storage(workdir, mountinfo) if thorough else None
    if volatile and settings.DOCUMENT_STORAGE == "local":
        return failed(
            "workdir",
            f"WORKDIR {workdir} {volatile}",
            "mount a persistent volume at WORKDIR: a named volume in docker compose, a PVC in Kubernetes",
        )
    free = shutil.disk_usage(workdir).free
    free_text = f"{free / 1024**3:.1f} GiB free"
    grow = "free space or grow the volume"
    if free < diskspace.floor_bytes():
        reason = (
            f"WORKDIR {workdir} has only {free_text}, below MIN_FREE_DISK_MB "
            f"({settings.MIN_FREE_DISK_MB} MiB): uploads are refused and processing is paused"
        )
        return failed(
            "workdir", reason, grow, writable=True, free_bytes=free, reason=BELOW_FLOOR, paused=True
        )
    if free < WORKDIR_FAIL_BELOW:
        reason = f"WORKDIR {workdir} has only {free_text}"
        return failed("workdir", reason, grow, writable=True, free_bytes=free, reason="almost full")
    if free < WORKDIR_WARN_BELOW:
        reason = f"WORKDIR {workdir} has only {free_text}"
        return warned("workdir", reason, grow, writable=True, free_bytes=free, reason="little free space")
    where = "; documents are in S3" if volatile else ""
    return passed(
        "workdir", f"WORKDIR {workdir} is writable, {free_text}{where}", writable=True, free_bytes=free
    )


def probe_disk_space() -> CheckResult:
    """Whether WORKDIR is above its free-space floor (MIN_FREE_DISK_MB): one statvfs, cheap
    enough for the readiness probe. ``paused`` tells that uploads are refused and processing
    waits; the process stays ready, as reads and downloads still work."""
    free = diskspace.free_bytes()
    if free < diskspace.floor_bytes():
        reason = (
            f"WORKDIR has {free // 1024**2} MiB free, below MIN_FREE_DISK_MB ({settings.MIN_FREE_DISK_MB})"
        )
        return failed("disk", reason, "free space or grow the volume", paused=True, reason=BELOW_FLOOR)
    return passed("disk", f"WORKDIR has {free // 1024**2} MiB free", paused=False)
