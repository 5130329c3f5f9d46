"""Writes of destinations: a user's own or a system-wide one saved, changed or removed,
every field checked by its kind first; the environment's destinations kept in step with
their variables; the secrets a provider renewed or a connect page obtained kept."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from destinations.kinds import KINDS, kind_class
from destinations.kinds.oauth import OAuthKind
from destinations.models import CollisionPolicy, Destination, HealthStatus
from destinations.paths import folder_template_validate, folder_validate
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import Conflict, Forbidden, InvalidInput

logger = logging.getLogger(__name__)


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
