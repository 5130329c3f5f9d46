"""Where a delivery puts the document: the remote path worked out, what is there looked at
before each write, the upload under the collision policy, and the copy an earlier delivery
left under an older name removed. Called by ``delivery_run`` under its claim; raises the
kinds' ``DeliveryFailed`` family, which the run records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from destinations.kinds import kind_for
from destinations.kinds.base import (
    DeliveryFailed,
    DestinationMisconfigured,
    Kind,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.models import CollisionPolicy, Delivery, DeliveryStatus
from destinations.paths import remote_path, renamed_candidates
from destinations.selectors import delivery_facts
from destinations.state import DeliveryReceipts
from docuelevate.errors import InvalidInput
from documents import storage
from documents.models import DocumentStatus

# Names tried under the "rename" collision policy: name.pdf, name (2).pdf … name (20).pdf.
RENAME_LIMIT = 20


@dataclass(frozen=True)
class Placed:
    """What placing a delivery came to, for ``delivery_run`` to record."""

    status: DeliveryStatus  # DELIVERED or SKIPPED
    message: str
    uploaded: Uploaded | None = None


def delivery_place(*, delivery: Delivery) -> tuple[Placed, str]:
    """Put the document's processed PDF at its remote path; what happened, and its SHA-256."""
    destination, document = delivery.destination, delivery.document
    if not destination.enabled:
        return Placed(DeliveryStatus.SKIPPED, "The destination is disabled."), ""
    if document.status != DocumentStatus.COMPLETED or not document.processed_file:
        return Placed(DeliveryStatus.SKIPPED, "The document has no processed file to deliver."), ""
    try:
        target = remote_path(
            folder=str(destination.settings.get("folder", "")),
            template=destination.folder_template,
            document=document,
        )
    except InvalidInput as exc:
        raise DestinationMisconfigured(exc.message) from None
    try:
        with storage.local_copy(document.processed_file) as path:
            sha256 = _sha256_of(path)
            local = LocalFile(
                path=path,
                size=path.stat().st_size,
                sha256=sha256,
                facts=replace(delivery_facts(document), delivery_key=_delivery_key(delivery, sha256)),
            )
            with kind_for(destination) as kind:
                kind.keep_receipts_in(DeliveryReceipts(delivery))
                placed = _place(kind, local, target, delivery, CollisionPolicy(destination.collision_policy))
                if placed.uploaded is not None:
                    placed = _remove_previous(kind, delivery, placed)
    except FileNotFoundError:
        raise DeliveryFailed("The processed file is missing from the document storage.") from None
    return placed, local.sha256


def _place(kind: Kind, local: LocalFile, target: str, delivery: Delivery, policy: CollisionPolicy) -> Placed:
    """Upload ``local`` to ``target`` (or, renaming, beside it), checking before each write."""
    candidates = (
        renamed_candidates(target, limit=RENAME_LIMIT) if policy == CollisionPolicy.RENAME else [target]
    )
    for candidate in candidates:
        there = kind.stat(candidate)
        if there is not None and (
            kind.same_content(there, local) or _left_here_before(there, local, candidate, delivery)
        ):
            # Delivered already (by an earlier run whose record was lost, or by anyone).
            found = Uploaded(path=candidate, remote_id=there.remote_id, remote_version=there.version)
            return Placed(DeliveryStatus.DELIVERED, f"Already at {candidate}; nothing to upload.", found)
        if there is None or candidate == delivery.remote_path or policy == CollisionPolicy.REPLACE:
            uploaded = kind.upload(local, candidate)
            return Placed(DeliveryStatus.DELIVERED, f"Delivered as {uploaded.path}.", uploaded)
        if policy == CollisionPolicy.SKIP:
            return Placed(
                DeliveryStatus.SKIPPED,
                f"{candidate} holds another file; left alone (collision policy: skip).",
            )
    raise DeliveryFailed(f"{target} and the {RENAME_LIMIT - 1} numbered names beside it are all taken.")


def _remove_previous(kind: Kind, delivery: Delivery, placed: Placed) -> Placed:
    """Remove the file this delivery left under an older name, if it still holds what was
    delivered then: one document, one file per destination. Someone else's file, or one
    changed since, stays."""
    assert placed.uploaded is not None
    previous = delivery.remote_path
    if not previous or previous == placed.uploaded.path or not delivery.content_sha256:
        return placed
    try:
        there = kind.stat(previous)
        if there is not None and _unchanged_since_delivered(kind, there, delivery):
            kind.remove(previous)
    except DeliveryFailed as exc:
        # The new file is in place; the delivery succeeded all the same.
        return Placed(
            placed.status,
            f"{placed.message} The earlier copy {previous} stays: {exc.message}",
            placed.uploaded,
        )
    return Placed(placed.status, f"{placed.message} Removed the earlier copy {previous}.", placed.uploaded)


def _unchanged_since_delivered(kind: Kind, there: RemoteFile, delivery: Delivery) -> bool:
    """Whether the file at the delivery's earlier path is still what it delivered: the same
    SHA-256; where the server cannot tell a SHA-256, the very revision it recorded then
    (Dropbox, OneDrive); else the content read back (FTP, SFTP)."""
    if there.sha256 is not None:
        return there.sha256 == delivery.content_sha256
    if there.version:
        return there.version == delivery.remote_version
    return kind.content_sha256(there.path) == delivery.content_sha256


def _left_here_before(there: RemoteFile, local: LocalFile, path: str, delivery: Delivery) -> bool:
    """Where the server tells no hash at all (a WebDAV server keeping no properties):
    whether ``there`` is the file this delivery left at ``path`` with this very content, of
    the same size and, where the server has versions, unchanged since."""
    if there.sha256 is not None or there.content_hash:
        return False
    return (
        path == delivery.remote_path
        and delivery.content_sha256 == local.sha256
        and there.size == local.size
        and there.version == delivery.remote_version
    )


def _delivery_key(delivery: Delivery, sha256: str) -> str:
    """This delivery of this content, the same on every attempt (a mail's Message-ID)."""
    return f"docuelevate.{delivery.document.uuid.hex}.{delivery.destination_id}.{sha256[:16]}"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(storage.CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
