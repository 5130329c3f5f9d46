"""Writes of destinations and deliveries: destinations saved, documents delivered exactly once.

After processing, ``deliveries_schedule`` makes one Delivery per enabled destination that
applies to the document (the system-wide ones and the owner's own) and queues each on its
own once the transaction commits: one destination's trouble never holds up or fails
another, nor the document. ``delivery_run`` delivers one of them:

1. claim it with a conditional update (``destinations.state``): a message delivered
   twice, or a delivery already delivered, finds nothing to do;
2. work out the remote path from the destination's folder and template;
3. check before writing: the same content already there counts as delivered, with
   nothing uploaded, which is what makes a run after a crash (upload done, record not)
   harmless;
4. upload (atomically: see ``destinations.kinds.base``), the collision policy deciding
   about somebody else's file under the name;
5. remove the copy an earlier delivery left under an older name (new metadata, new name);
6. record the outcome, still under the claim.

Temporary failures are retried after TASK_RETRY_DELAYS (with jitter) up to
TASK_RETRY_MAX_RETRIES times; permanent and configuration failures end at once with a
readable reason. A run killed outright leaves its delivery in progress; the next worker
start on that node, a redelivered message there, or the watchdog gives it back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from destinations.kinds import KINDS, kind_class, kind_for
from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    Kind,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.oauth import OAuthKind
from destinations.models import CollisionPolicy, Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.paths import folder_template_validate, folder_validate, remote_path, renamed_candidates
from destinations.selectors import delivery_facts, destinations_for_document
from destinations.state import (
    DeliveryReceipts,
    deliveries_release,
    deliveries_request,
    delivery_claim,
    delivery_record,
    in_progress_since,
)
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import Conflict, Forbidden, InvalidInput, NotFound
from documents import storage
from documents.models import Document, DocumentStatus, FailureKind
from documents.pipeline.runner import retry_delay

logger = logging.getLogger(__name__)

# A delivery's hard time limit: a 1 GiB file at a slow 2.5 Mbit/s. Past it (and a grace),
# a delivery still in progress has lost its worker.
DELIVERY_TIME_LIMIT = 3600
DELIVERY_SOFT_TIME_LIMIT = DELIVERY_TIME_LIMIT - 60
DELIVERY_STALE_GRACE_SECONDS = 120
# Names tried under the "rename" collision policy: name.pdf, name (2).pdf … name (20).pdf.
RENAME_LIMIT = 20
# A request that came in during the run makes the run go round again; with --sync, at most so often.
SYNC_ROUNDS = 3


# --- Destinations ------------------------------------------------------------------------


def destination_create(
    *,
    kind: str,
    name: str,
    owner: User | None,
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any],
    folder_template: str = "",
    collision_policy: str = CollisionPolicy.RENAME,
    enabled: bool = True,
) -> Destination:
    """Save a new destination for ``owner`` (None: system-wide), every field checked first.

    InvalidInput names what is wrong (an unknown placeholder in the template, a setting the
    kind does not have, a missing key); Conflict when the owner already has one of that name.
    """
    clean_settings, clean_secrets = _cleaned(
        kind=kind, settings=settings, secrets=secrets, system_wide=owner is None
    )
    destination = Destination(
        kind=kind,
        name=_clean_name(name),
        owner=owner,
        settings=clean_settings,
        secrets=clean_secrets,
        folder_template=_clean_template(folder_template),
        collision_policy=_clean_policy(collision_policy),
        enabled=enabled,
    )
    _save(destination)
    return destination


def destination_update(
    *,
    destination: Destination,
    name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    folder_template: str | None = None,
    collision_policy: str | None = None,
    enabled: bool | None = None,
) -> Destination:
    """Change what is given (None leaves a field as it is), every change checked first.

    ``secrets`` are write-only: the keys given replace theirs, a key given empty is
    removed, keys not given stay. A destination the environment defines keeps the kind,
    settings, secrets and enabled of its ``<KIND>_*`` variables (Conflict otherwise).
    """
    if destination.system_key and (settings is not None or secrets is not None or enabled is not None):
        raise Conflict(
            f"{destination.name} is defined by the environment; change its {destination.kind.upper()}_* "
            "variables instead."
        )
    if settings is not None or secrets is not None:
        destination.settings, destination.secrets = _cleaned(
            kind=destination.kind,
            settings=destination.settings if settings is None else settings,
            secrets=destination_secrets_merged(destination=destination, given=secrets or {}),
            system_wide=destination.owner_id is None,
        )
    if name is not None:
        destination.name = _clean_name(name)
    if folder_template is not None:
        destination.folder_template = _clean_template(folder_template)
    if collision_policy is not None:
        destination.collision_policy = _clean_policy(collision_policy)
    if enabled is not None:
        destination.enabled = enabled
    _save(destination)
    return destination


def destination_owner(*, viewer: Viewer, system_wide: bool) -> User | None:
    """Whom a destination ``viewer`` makes belongs to: themselves, or nobody (system-wide,
    every document goes there) when a request with operator rights asks for that."""
    user = viewer.user
    if not isinstance(user, User):
        raise Forbidden("Sign in to make a destination.")
    if not system_wide:
        return user
    if not viewer.operator:
        raise Forbidden("Only operators can make system-wide destinations.")
    return None


def destination_delete(*, destination: Destination) -> None:
    """Remove a destination and the record of its deliveries; the files it received stay
    where they are. One the environment defines cannot go (Conflict): it would come back
    with the next worker start; switch it off with its ``<KIND>_ENABLED`` instead."""
    if destination.system_key:
        raise Conflict(
            f"{destination.name} is defined by the environment; set {destination.kind.upper()}_ENABLED=false "
            "to switch it off."
        )
    destination.delete()


def destination_secrets_merged(*, destination: Destination, given: Mapping[str, Any]) -> dict[str, Any]:
    """The secrets ``destination`` would keep after ``given``: the keys given replace
    theirs, a key given empty is removed, keys not given stay (write-only: nobody who
    changes one secret has to know the others)."""
    merged = _stored_secrets(destination)
    for key, value in given.items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def destination_settings_validate(
    *, kind: str, settings: Mapping[str, Any], secrets: Mapping[str, Any], system_wide: bool
) -> None:
    """Refuse (InvalidInput, naming what is wrong) settings and secrets that
    ``destination_create`` or ``destination_update`` would refuse; for forms that must
    show the reason beside their fields before anything is saved (the admin)."""
    _cleaned(kind=kind, settings=settings, secrets=secrets, system_wide=system_wide)


def _cleaned(
    *, kind: str, settings: Mapping[str, Any], secrets: Mapping[str, Any], system_wide: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    clean_settings, clean_secrets = kind_class(kind).clean(settings, secrets, system_wide=system_wide)
    if "folder" in clean_settings:
        clean_settings["folder"] = folder_validate(str(clean_settings["folder"]))
    return clean_settings, clean_secrets


def _stored_secrets(destination: Destination) -> dict[str, Any]:
    try:
        return destination.secrets.reveal()
    except SecretsUnreadable:
        return {}  # lost with an old SESSION_SECRET: only what is given now counts


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput("A destination needs a name of at most 100 characters.")
    return name


def _clean_template(template: str) -> str:
    template = template.strip()
    folder_template_validate(template)
    return template


def _clean_policy(policy: str) -> str:
    if policy not in CollisionPolicy.values:
        raise InvalidInput(f"The collision policy must be one of {', '.join(CollisionPolicy.values)}.")
    return policy


def _save(destination: Destination) -> None:
    try:
        with transaction.atomic():
            destination.save()
    except IntegrityError:
        raise Conflict(f"There is already a destination named {destination.name}.") from None


def system_destinations_sync() -> list[Destination]:
    """The system-wide destinations the environment defines, each in step with its
    ``<KIND>_*`` variables; those of kinds switched off are disabled (kept, with their
    deliveries' history). Returns the enabled ones.

    Run by the worker, where deliveries happen: when it starts, and before each document's
    deliveries are scheduled, so a changed variable counts from the next document on.
    Idempotent, and writes nothing when nothing differs. The environment owns the kind,
    settings, secrets and whether it is enabled; operators may rename it and set its folder
    template and collision policy.
    """
    existing = {row.system_key: row for row in Destination.objects.filter(system_key__isnull=False)}
    enabled = []
    for kind in KINDS:
        key = f"env:{kind}"
        row = existing.get(key)
        cls = kind_class(kind)
        described = cls.from_environment()
        if described is None:
            if row is not None and row.enabled:
                row.enabled = False
                row.save(update_fields=["enabled", "updated_at"])
            continue
        # What the kind came by itself (a connected or renewed refresh token) stays with the
        # row; the kind's clean drops it once it no longer belongs to the variables' credentials.
        stored = _stored_secrets(row) if row is not None else {}
        carried = {name: value for name, value in stored.items() if name in cls.carried_secret_names}
        try:
            clean_settings, clean_secrets = _cleaned(
                kind=kind,
                settings=described.settings,
                secrets={**carried, **described.secrets},
                system_wide=True,
            )
        except InvalidInput as exc:
            logger.error("the %s destination from the environment is not valid: %s", kind, exc.message)
            continue
        if row is None:
            row = Destination(kind=kind, name=described.name, owner=None, system_key=key)
        wanted: dict[str, Any] = {"kind": kind, "settings": clean_settings, "enabled": True}
        changed = [field for field, value in wanted.items() if getattr(row, field) != value]
        for field in changed:
            setattr(row, field, wanted[field])
        if _stored_secrets(row) != clean_secrets or row.pk is None:
            row.secrets = clean_secrets
            changed.append("secrets")
        if row.pk is None:
            _save(row)
        elif changed:
            row.save(update_fields=[*changed, "updated_at"])
        enabled.append(row)
    return enabled


def destination_secrets_renew(*, destination_id: int, secrets: Mapping[str, Any]) -> None:
    """Store ``secrets`` over the destination's own: ones a provider replaced while a kind
    used them (a refresh token Microsoft rotated), handed on through
    ``Kind.on_secrets_renewed``. Checked by the kind like any secret. A destination the
    environment defines takes them too: they are its kind's carried secrets, kept when the
    row is brought in step with the variables."""
    with transaction.atomic():
        destination = Destination.objects.select_for_update().filter(pk=destination_id).first()
        if destination is None:
            return  # removed meanwhile: nothing to keep the secrets for
        merged = {**_stored_secrets(destination), **secrets}
        _settings, destination.secrets = kind_class(destination.kind).clean(
            destination.settings, merged, system_wide=destination.owner_id is None
        )
        destination.save(update_fields=["secrets", "updated_at"])


def destination_connect(*, destination: Destination, refresh_token: str) -> Destination:
    """Keep the refresh token a connect page obtained for ``destination`` (sealed, as its
    renewed token: see ``destinations.kinds.oauth``), and forget that it was failing: the
    next delivery or check tells again. InvalidInput for a kind that does not connect."""
    cls = kind_class(destination.kind)
    if not issubclass(cls, OAuthKind):
        raise InvalidInput(f"{destination.name} does not connect to an account; it has its own credentials.")
    destination_secrets_renew(
        destination_id=destination.pk,
        secrets=cls.connected_secrets(_stored_secrets(destination), refresh_token),
    )
    Destination.objects.filter(pk=destination.pk, health_status=HealthStatus.FAILING).update(
        health_status=HealthStatus.UNKNOWN, health_error="", health_error_kind="", updated_at=timezone.now()
    )
    destination.refresh_from_db()
    return destination


# --- Deliveries ----------------------------------------------------------------------------


class DeliveryOutcome(StrEnum):
    """How one run of a delivery ended, for the caller deciding what to do next."""

    DELIVERED = "delivered"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"  # a temporary failure; run again in retry_in seconds
    NOOP = "noop"  # nothing to do: finished already, or another run has it


@dataclass(frozen=True)
class DeliveryRun:
    outcome: DeliveryOutcome
    retry_in: int | None = None
    message: str = ""
    # Asked for again while this run was going: run it again now (its new content may differ).
    again: bool = False


@dataclass(frozen=True)
class _Placed:
    status: DeliveryStatus  # DELIVERED or SKIPPED
    message: str
    uploaded: Uploaded | None = None


def deliveries_schedule(*, document_id: int, enqueue: bool = True) -> list[int]:
    """Deliver a processed document to every enabled destination that applies to it: the
    system-wide ones and its owner's own. Returns the deliveries due.

    Called explicitly once processing has finished (the pipeline task, ``pipeline_run_sync``)
    and by a redeliver. Each delivery is queued on its own after the transaction commits;
    ``enqueue=False`` leaves running them to the caller (``--sync``).
    """
    system_destinations_sync()
    document = Document.objects.select_related("owner").get(pk=document_id)
    if document.status != DocumentStatus.COMPLETED:
        return []
    due = deliveries_request(document=document, destinations=destinations_for_document(document))
    if enqueue:
        for delivery_id in due:
            delivery_enqueue(delivery_id=delivery_id)
    return due


def deliveries_redeliver(*, document: Document, destination_id: int | None = None) -> list[int]:
    """Deliver ``document`` again, now: to every enabled destination it goes to, or to the
    one ``destination_id`` names. Returns the deliveries queued.

    Finished deliveries (delivered, failed, skipped) start over with a fresh set of
    attempts; one in progress goes round once more when it ends (``deliveries_request``).
    A delivered file whose content is still the same there costs one look and no upload.
    The caller has checked that the person may see ``document`` (``document_get_for_user``).
    Conflict for a document whose processing has not finished; NotFound for a destination
    it does not go to.
    """
    if document.status != DocumentStatus.COMPLETED:
        raise Conflict(
            "Only a processed document can be delivered; it goes out once its processing has finished."
        )
    destinations = destinations_for_document(document)
    if destination_id is not None:
        destinations = destinations.filter(pk=destination_id)
        if not destinations.exists():
            raise NotFound("This document does not go to that destination (or it is disabled).")
    due = deliveries_request(document=document, destinations=destinations)
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


def delivery_enqueue(*, delivery_id: int) -> None:
    """Hand one delivery to the workers once the current transaction (if any) has committed."""
    from destinations.tasks import delivery_run_task

    transaction.on_commit(lambda: delivery_run_task.delay(delivery_id))


def delivery_run(
    *, delivery_id: int, task_id: str = "", worker_name: str = "", retries_allowed: bool = True
) -> DeliveryRun:
    """Deliver one document to one destination, unless that is done or under way (a no-op).

    Whatever goes wrong is recorded on the delivery (reason and kind) and in the
    document's log, never raised: the document and its other deliveries are not affected.
    """
    delivery = delivery_claim(delivery_id=delivery_id, task_id=task_id, worker_name=worker_name)
    if delivery is None:
        return DeliveryRun(DeliveryOutcome.NOOP)
    name = delivery.destination.name
    try:
        placed, sha256 = _deliver(delivery)
    except DeliveryTemporarilyFailed as exc:
        if retries_allowed and delivery.attempts <= settings.TASK_RETRY_MAX_RETRIES:
            delay = retry_delay(delivery.attempts)
            again = delivery_record(
                delivery=delivery,
                status=DeliveryStatus.PENDING,
                message=f"{exc.message} Retrying in {delay} s.",
                task_id=task_id,
                kind=exc.kind,
            )
            return DeliveryRun(DeliveryOutcome.RETRY, retry_in=delay, message=exc.message, again=bool(again))
        return _failed(delivery, exc.message, exc.kind, task_id)
    except DeliveryFailed as exc:
        return _failed(delivery, exc.message, exc.kind, task_id)
    except SoftTimeLimitExceeded:
        message = f"The delivery to {name} did not finish within {DELIVERY_SOFT_TIME_LIMIT} seconds."
        return _failed(delivery, message, FailureKind.TIMEOUT, task_id)
    except Exception as exc:
        # A bug or an unforeseen answer: this delivery fails visibly, the worker carries on.
        logger.exception("delivery %s to destination %s crashed", delivery_id, delivery.destination_id)
        message = f"Internal error while delivering to {name} ({exc.__class__.__name__}); see the server log."
        return _failed(delivery, message, FailureKind.INTERNAL_ERROR, task_id)
    again = delivery_record(
        delivery=delivery,
        status=placed.status,
        message=placed.message,
        task_id=task_id,
        uploaded=placed.uploaded,
        content_sha256=sha256,
    )
    return DeliveryRun(DeliveryOutcome(placed.status.value), message=placed.message, again=bool(again))


def _failed(delivery: Delivery, message: str, kind: FailureKind, task_id: str) -> DeliveryRun:
    again = delivery_record(
        delivery=delivery, status=DeliveryStatus.FAILED, message=message, task_id=task_id, kind=kind
    )
    return DeliveryRun(DeliveryOutcome.FAILED, message=message, again=bool(again))


def _deliver(delivery: Delivery) -> tuple[_Placed, str]:
    """Put the document's processed PDF at its remote path; what happened, and its SHA-256."""
    destination, document = delivery.destination, delivery.document
    if not destination.enabled:
        return _Placed(DeliveryStatus.SKIPPED, "The destination is disabled."), ""
    if document.status != DocumentStatus.COMPLETED or not document.processed_file:
        return _Placed(DeliveryStatus.SKIPPED, "The document has no processed file to deliver."), ""
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


def _place(kind: Kind, local: LocalFile, target: str, delivery: Delivery, policy: CollisionPolicy) -> _Placed:
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
            return _Placed(DeliveryStatus.DELIVERED, f"Already at {candidate}; nothing to upload.", found)
        if there is None or candidate == delivery.remote_path or policy == CollisionPolicy.REPLACE:
            uploaded = kind.upload(local, candidate)
            return _Placed(DeliveryStatus.DELIVERED, f"Delivered as {uploaded.path}.", uploaded)
        if policy == CollisionPolicy.SKIP:
            return _Placed(
                DeliveryStatus.SKIPPED,
                f"{candidate} holds another file; left alone (collision policy: skip).",
            )
    raise DeliveryFailed(f"{target} and the {RENAME_LIMIT - 1} numbered names beside it are all taken.")


def _remove_previous(kind: Kind, delivery: Delivery, placed: _Placed) -> _Placed:
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
        return _Placed(
            placed.status,
            f"{placed.message} The earlier copy {previous} stays: {exc.message}",
            placed.uploaded,
        )
    return _Placed(placed.status, f"{placed.message} Removed the earlier copy {previous}.", placed.uploaded)


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


def deliveries_run_sync(*, document_id: int) -> list[Delivery]:
    """Deliver a processed document in this process, one destination after another
    (``ingest --sync``, ``reprocess --sync``); a temporary failure fails at once."""
    due = deliveries_schedule(document_id=document_id, enqueue=False)
    for delivery_id in due:
        for _round in range(SYNC_ROUNDS):
            if not delivery_run(delivery_id=delivery_id, retries_allowed=False).again:
                break
    return list(Delivery.objects.filter(pk__in=due).select_related("destination"))


def deliveries_resume_abandoned(*, worker_name: str) -> list[int]:
    """Deliveries a worker of this name left in progress when it died; due again now.

    Called when the worker starts, before it takes any task, so whatever is claimed under
    its name belongs to its previous, dead incarnation. Queues them; returns their ids.
    """
    abandoned = Delivery.objects.filter(
        status=DeliveryStatus.IN_PROGRESS, claimed_by__startswith=f"{worker_name} "
    )
    due = deliveries_release(
        abandoned=abandoned, message="The worker stopped during the delivery; delivering again."
    )
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due


def deliveries_resume_stale(*, now: datetime | None = None) -> list[int]:
    """Send again the deliveries in progress for longer than any run may take (their worker
    vanished without a word), and return their ids. Run every minute by the watchdog."""
    cutoff = (now or timezone.now()) - timedelta(seconds=DELIVERY_TIME_LIMIT + DELIVERY_STALE_GRACE_SECONDS)
    due = deliveries_release(
        abandoned=in_progress_since(cutoff),
        message=f"The delivery did not finish within {DELIVERY_TIME_LIMIT} seconds; delivering again.",
    )
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return due
