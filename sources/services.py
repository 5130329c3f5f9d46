"""Writing sources: the ones the environment defines, kept in step with it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from accounts.access import Viewer
from accounts.models import User
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import Conflict, Forbidden, InvalidInput
from sources.kinds import KINDS, kind_class, kind_for
from sources.kinds.base import SourceFailed
from sources.models import Source
from sources.polling import source_poll_enqueue

logger = logging.getLogger(__name__)


def source_create(
    *,
    kind: str,
    name: str,
    owner: User | None,
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    poll_interval_minutes: int = 5,
    document_owner: User | None = None,
    enabled: bool = True,
) -> Source:
    """A new source, its settings checked by its kind; ``owner`` None makes it system-wide
    (an operator's decision, checked by the caller)."""
    _check_interval(poll_interval_minutes)
    cls = kind_class(kind)
    clean_settings, clean_secrets = cls.clean(settings, secrets or {}, system_wide=owner is None)
    source = Source(
        kind=kind,
        name=_clean_name(name),
        owner=owner,
        document_owner=document_owner if owner is None else None,
        settings=clean_settings,
        secrets=clean_secrets,
        poll_interval_minutes=poll_interval_minutes,
        enabled=enabled,
    )
    _save(source)
    return source


def source_update(
    *,
    source: Source,
    name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    poll_interval_minutes: int | None = None,
    enabled: bool | None = None,
) -> Source:
    """Change what is given (None leaves a field as it is), every change checked first.

    ``secrets`` are write-only: the keys given replace theirs, a key given empty is
    removed, keys not given stay. A source the environment defines keeps the settings,
    secrets, interval and enabled of its variables (Conflict otherwise). A new interval
    counts from now: the next turn comes no later than one new interval away.
    """
    if source.system_key and any(v is not None for v in (settings, secrets, poll_interval_minutes, enabled)):
        raise Conflict(f"{source.name} is defined by the environment; change its variables instead.")
    if settings is not None or secrets is not None:
        merged = {**_stored_secrets(source), **(secrets or {})}
        merged = {key: value for key, value in merged.items() if value not in ("", None)}
        source.settings, source.secrets = kind_class(source.kind).clean(
            source.settings if settings is None else settings, merged, system_wide=source.owner_id is None
        )
    if name is not None:
        source.name = _clean_name(name)
    if poll_interval_minutes is not None:
        _check_interval(poll_interval_minutes)
        source.poll_interval_minutes = poll_interval_minutes
        source.next_poll_at = None  # due at beat's next minute, then every new interval
    if enabled is not None:
        source.enabled = enabled
    _save(source)
    return source


def source_owner(*, viewer: Viewer, system_wide: bool) -> User | None:
    """Whom a source ``viewer`` makes belongs to: themselves, or nobody (system-wide) when a
    request with operator rights asks for that."""
    user = viewer.user
    if not isinstance(user, User):
        raise Forbidden("Sign in to add a source.")
    if not system_wide:
        return user
    if not viewer.operator:
        raise Forbidden("Only operators can add system-wide sources.")
    return None


def source_document_owner_set(*, source: Source, document_owner: User | None) -> Source:
    """Choose whose documents a system-wide source makes (None: the first operator's). Also
    for one the environment defines, whose variables do not say. A user's own source makes
    that user's documents and nobody else's (InvalidInput)."""
    if source.owner_id is not None:
        raise InvalidInput(f"{source.name} is a user's own source: its documents are that user's.")
    if source.document_owner_id != (document_owner.pk if document_owner else None):
        source.document_owner = document_owner
        source.save(update_fields=["document_owner", "updated_at"])
    return source


def source_delete(*, source: Source) -> None:
    """Remove a source and its ledger; the documents it made stay. One the environment
    defines cannot go (Conflict): it would come back at beat's next minute."""
    if source.system_key:
        raise Conflict(f"{source.name} is defined by the environment; remove it from the variables instead.")
    source.delete()


def source_test(*, source: Source) -> str:
    """Connect and sign in, reading nothing; "" when it works, else the reason (also
    recorded on the source, as a poll's would be)."""
    try:
        kind_for(source).check()
    except SourceFailed as exc:
        Source.objects.filter(pk=source.pk).update(last_error=exc.message, last_error_kind=exc.kind)
        return exc.message
    Source.objects.filter(pk=source.pk).update(last_error="", last_error_kind="")
    return ""


def source_secrets_renew(*, source_id: int, secrets: Mapping[str, Any]) -> None:
    """Store ``secrets`` over the source's own: ones a provider replaced while a kind used
    them (a refresh token Microsoft rotated), handed on through ``Kind.on_secrets_renewed``.
    Checked by the kind like any secret. A source the environment defines takes them too:
    they are its kind's carried secrets, kept when the row is brought in step with the
    variables."""
    with transaction.atomic():
        source = Source.objects.select_for_update().filter(pk=source_id).first()
        if source is None:
            return  # removed meanwhile: nothing to keep the secrets for
        merged = {**_stored_secrets(source), **secrets}
        _settings, source.secrets = kind_class(source.kind).clean(
            source.settings, merged, system_wide=source.owner_id is None
        )
        source.save(update_fields=["secrets", "updated_at"])


def source_poll_now(*, source: Source) -> None:
    """A poll of ``source`` at once, on a worker, besides its schedule."""
    if not source.enabled:
        raise Conflict(f"{source.name} is disabled; enable it first.")
    source_poll_enqueue(source_id=source.pk)


def _check_interval(minutes: int) -> None:
    if not 1 <= minutes <= 24 * 60:
        raise InvalidInput("The poll interval is from 1 to 1440 minutes.")


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput("A source needs a name of 1 to 100 characters.")
    return name


def _stored_secrets(source: Source) -> dict[str, Any]:
    try:
        return dict(source.secrets)
    except SecretsUnreadable:
        return {}  # sealed under a secret no longer known: new ones must be given


def _save(source: Source) -> None:
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError:
        raise Conflict(f"A source named {source.name!r} exists already.") from None


def system_sources_sync() -> list[Source]:
    """The system-wide sources the environment defines (``IMAP1_*``, ``IMAP2_*``,
    ``WATCH_FOLDERS``, …), each in step with its variables; those no longer defined are
    disabled (kept, with their ledger, so a folder put back is not taken again). Returns
    the enabled ones.

    Run by beat's minute task and by ``poll_sources``; idempotent, and writes nothing when
    nothing differs. The environment owns the kind, settings, secrets, interval and whether
    it is enabled; operators may rename it and choose whose documents it makes.
    """
    existing = {row.system_key: row for row in Source.objects.filter(system_key__isnull=False)}
    enabled: list[Source] = []
    described_keys: set[str] = set()
    for kind in KINDS:
        cls = kind_class(kind)
        for described in cls.from_environment():
            described_keys.add(described.key)
            row = existing.get(described.key)
            # What the kind came by itself (a renewed refresh token) stays with the row; the
            # kind's clean drops it once it no longer belongs to the variables' credentials.
            stored = _stored_secrets(row) if row is not None else {}
            carried = {name: value for name, value in stored.items() if name in cls.carried_secret_names}
            try:
                settings, secrets = cls.clean(
                    described.settings, {**carried, **described.secrets}, system_wide=True
                )
            except InvalidInput as exc:
                logger.error(
                    "the source %s from the environment is not valid: %s", described.key, exc.message
                )
                continue
            if row is None:
                row = Source(kind=kind, name=_free_system_name(described.name), system_key=described.key)
            wanted = {
                "kind": kind,
                "settings": settings,
                "enabled": True,
                "poll_interval_minutes": described.poll_interval_minutes,
            }
            changed = [field for field, value in wanted.items() if getattr(row, field) != value]
            for field in changed:
                setattr(row, field, wanted[field])
            if _stored_secrets(row) != secrets or row.pk is None:
                row.secrets = secrets
                changed.append("secrets")
            if row.pk is None:
                row.save()
            elif changed:
                row.save(update_fields=[*changed, "updated_at"])
            enabled.append(row)
    for key, row in existing.items():
        if key not in described_keys and row.enabled:
            row.enabled = False
            row.save(update_fields=["enabled", "updated_at"])
    return enabled


def _free_system_name(name: str) -> str:
    """``name``, or ``name (2)``… when an operator's system-wide source has it already."""
    candidate, number = name, 1
    while Source.objects.filter(owner__isnull=True, name=candidate).exists():
        number += 1
        candidate = f"{name[:90]} ({number})"
    return candidate
