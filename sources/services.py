"""Writing sources: the ones the environment defines, kept in step with it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import User
from docuelevate.errors import Conflict, InvalidInput
from sources.kinds import KINDS, kind_class
from sources.models import Source

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
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("A source needs a name of 1 to 100 characters.")
    if not 1 <= poll_interval_minutes <= 24 * 60:
        raise InvalidInput("The poll interval is from 1 to 1440 minutes.")
    cls = kind_class(kind)
    clean_settings, clean_secrets = cls.clean(settings, secrets or {}, system_wide=owner is None)
    source = Source(
        kind=kind,
        name=name,
        owner=owner,
        document_owner=document_owner if owner is None else None,
        settings=clean_settings,
        secrets=clean_secrets,
        poll_interval_minutes=poll_interval_minutes,
        enabled=enabled,
    )
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError:
        raise Conflict(f"A source named {name!r} exists already.") from None
    return source


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
            try:
                settings, secrets = cls.clean(described.settings, described.secrets, system_wide=True)
            except InvalidInput as exc:
                logger.error(
                    "the source %s from the environment is not valid: %s", described.key, exc.message
                )
                continue
            row = existing.get(described.key)
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
            if dict(row.secrets) != secrets or row.pk is None:
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
