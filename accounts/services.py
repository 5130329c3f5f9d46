"""Writes concerning accounts: the operator login, the single-user mode's user and API tokens."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiToken, AuditAction, User
from docuelevate.env import secret_weakness
from docuelevate.errors import InvalidInput, NotFound

ADMIN_PASSWORD_MIN_LENGTH = 12

TOKEN_PREFIX = "de_"  # noqa: S105  # a public marker that makes leaked tokens easy to scan for
# Characters of the token shown to people so they can tell tokens apart: "de_" + 8.
TOKEN_VISIBLE_CHARS = len(TOKEN_PREFIX) + 8
# A real token is 46 characters; anything far longer is not worth hashing.
TOKEN_MAX_LENGTH = 100
TOKEN_NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length or 150
DEVICE_NAME_MAX_LENGTH = 100
# The en dash is part of the name existing clients show and match.
MOBILE_DEVICE_LABEL = "Mobile App \u2013 {device_name}"
# Recording every use would turn each API read into a write; once a minute is enough to
# answer "is this token still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Bidirectional overrides are not control characters, but they can make a name read as
# something else in a list of tokens, so they go too.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


@dataclass(frozen=True)
class AdminLogin:
    """How the operator logs in, for the start-up banner."""

    username: str
    password: str | None  # only known when this installation generated it
    created: bool


@transaction.atomic
def admin_bootstrap(*, username: str, password: str, email: str = "") -> AdminLogin:
    """Create the operator superuser, or bring an existing one up to date.

    Idempotent: run at every deploy and start. The password is refused when it is a
    placeholder or too short, because this account can read every document.
    """
    if not username.strip():
        raise InvalidInput("ADMIN_USERNAME must not be empty.")
    problem = secret_weakness(password, min_length=ADMIN_PASSWORD_MIN_LENGTH)
    if problem:
        raise InvalidInput(f"ADMIN_PASSWORD is not acceptable: {problem}.")
    user, created = User.objects.select_for_update().get_or_create(
        username=username, defaults={"email": email}
    )
    user.is_staff = True
    user.is_superuser = True
    user.is_active = True
    if email:
        user.email = email
    if created or not user.check_password(password):
        user.set_password(password)
    user.save()
    return AdminLogin(username=username, password=None, created=created)


def admin_generate_initial(*, credentials_file: Path) -> AdminLogin | None:
    """Give a fresh embedded installation an ``admin`` login with a random password.

    For ``make run`` on a laptop, where nobody set ADMIN_USERNAME/ADMIN_PASSWORD. The
    password is kept in ``credentials_file`` (mode 600, under WORKDIR) so later starts can
    show it again, but only while it is still the account's password. Returns None when
    an operator account exists whose password this installation does not know.
    """
    stored = credentials_file.read_text().strip() if credentials_file.exists() else None
    existing = User.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        if stored and existing.check_password(stored):
            return AdminLogin(username=existing.username, password=stored, created=False)
        return None
    password = secrets.token_urlsafe(12)
    login = admin_bootstrap(username="admin", password=password)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return AdminLogin(username=login.username, password=password, created=True)


SINGLE_USER_DEFAULT_USERNAME = "admin"


def single_user_get_or_create() -> User:
    """The one user of single-user mode (AUTH_ENABLED=false): the operator account named by
    ADMIN_USERNAME (or ``admin``), created without a usable password when it is missing.

    Everything in that mode belongs to this user, so switching to AUTH_ENABLED=true later
    keeps every document with the operator, who can then log in and invite others.
    """
    username = settings.ADMIN_USERNAME or SINGLE_USER_DEFAULT_USERNAME
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user
    user = User(username=username, is_staff=True, is_superuser=True)
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # another request created it a moment ago
        return User.objects.get(username=username)
    return user


@transaction.atomic
def user_sync_from_identity_provider(
    *,
    user: User | None,
    subject: str,
    email: str,
    username_hint: str,
    display_name: str,
    avatar_url: str,
    groups: list[str] | None,
) -> User:
    """Create (``user`` None) or update the account of someone who signed in through SSO.

    The provider is the source of truth for the address, name and picture, and for operator
    rights: membership of ADMIN_GROUP_NAME makes staff, leaving it takes staff away at the
    next sign-in. ``groups`` None means the provider sent no groups claim, which changes
    nothing. Superusers keep their rights whatever the provider says, so the bootstrap
    operator cannot be locked out by a directory change.
    """
    if user is None:
        user = User(username=_free_username(username_hint))
        user.set_unusable_password()  # they sign in at the provider, never with a local password
    user.oidc_subject = subject
    user.email = email or user.email
    user.display_name = display_name[:150] or user.display_name
    user.avatar_url = avatar_url if avatar_url.startswith(("https://", "http://")) else user.avatar_url
    if groups is not None and not user.is_superuser:
        admin_group = settings.ADMIN_GROUP_NAME
        # Keycloak sends full group paths ("/admin"); others send bare names.
        user.is_staff = any(group.lstrip("/") == admin_group.lstrip("/") for group in groups)
    user.save()
    return user


def _free_username(hint: str) -> str:
    """A username from ``hint`` (e.g. ``preferred_username``) in Django's alphabet, made unique."""
    base = re.sub(r"[^\w.@+-]", "", unicodedata.normalize("NFKC", hint))[:140] or "user"
    candidate, number = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


# --- API tokens ------------------------------------------------------------------------------


def token_hash(raw_token: str) -> str:
    """The SHA-256 hex digest kept in place of a token.

    A plain fast hash is enough: tokens carry 256 random bits, so there is nothing to
    guess from the digest, unlike a password.
    """
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _clean_name(name: str, *, max_length: int, what: str) -> str:
    """``name`` without control characters or surrounding blanks, which would garble lists."""
    cleaned = "".join(
        char for char in name if unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS
    ).strip()
    if not cleaned:
        raise InvalidInput(f"The {what} must not be empty.")
    if len(cleaned) > max_length:
        raise InvalidInput(f"The {what} must be at most {max_length} characters long.")
    return cleaned


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    operator_scope: bool = False,
) -> tuple[ApiToken, str]:
    """Make a new API token for ``user``; returns the row and the token, shown only this once.

    ``operator_scope`` is for staff only: it is what lets a token reach operator routes.
    The API lets only a signed-in session call this, so a leaked token cannot mint a
    successor that outlives its revocation.
    """
    name = _clean_name(name, max_length=TOKEN_NAME_MAX_LENGTH, what="token name")
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
        if expires_at <= timezone.now():
            raise InvalidInput("The expiry date must lie in the future.")
    if operator_scope and not user.is_staff:
        raise InvalidInput("Only operators can create a token with operator scope.")
    raw_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        owner=user,
        name=name,
        token_prefix=raw_token[:TOKEN_VISIBLE_CHARS],
        token_hash=token_hash(raw_token),
        expires_at=expires_at,
        operator_scope=operator_scope,
    )
    audit_record(
        action=AuditAction.TOKEN_CREATED,
        target=f"token {token.token_prefix}… of {user.get_username()}",
        detail={"token_id": token.pk, "name": name, "operator_scope": operator_scope},
    )
    return token, raw_token


def token_create_for_device(*, user: User, device_name: str) -> tuple[ApiToken, str]:
    """The token the mobile app asks for when a person signs in on a device.

    Named after the device so the person can revoke one lost phone. Never operator-scoped:
    a phone is easier to lose than a workstation.
    """
    device_name = _clean_name(device_name, max_length=DEVICE_NAME_MAX_LENGTH, what="device name")
    return token_create(user=user, name=MOBILE_DEVICE_LABEL.format(device_name=device_name))


def token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s own tokens; revoking twice keeps the first date.

    Another user's token is NotFound, not forbidden, so ids of other people's tokens
    cannot be probed.
    """
    token = ApiToken.objects.filter(owner=user, pk=token_id).first()
    if token is None:
        raise NotFound("No such API token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _audit_revoked([token])
    return token


@transaction.atomic
def token_revoke_all(*, tokens: QuerySet[ApiToken]) -> int:
    """Revoke every token in ``tokens`` (the operator's admin action); returns how many changed."""
    live = list(tokens.filter(revoked_at__isnull=True).select_related("owner"))
    ApiToken.objects.filter(pk__in=[token.pk for token in live]).update(revoked_at=timezone.now())
    _audit_revoked(live)
    return len(live)


def _audit_revoked(tokens: list[ApiToken]) -> None:
    for token in tokens:
        audit_record(
            action=AuditAction.TOKEN_REVOKED,
            target=f"token {token.token_prefix}… of {token.owner.get_username()}",
            detail={"token_id": token.pk, "name": token.name},
        )


def token_authenticate(*, raw_token: str, ip: str | None) -> ApiToken | None:
    """The live token matching ``raw_token`` (with its owner loaded), or None.

    The lookup is by the token's hash, never by the token: comparing digests in the
    database reveals nothing through timing, because a caller cannot steer the digest of
    a guess towards a stored one. Revoked and expired tokens, and tokens of deactivated
    users, are refused. The last use is recorded at most once a minute (a conditional
    UPDATE, so concurrent requests do not both write).
    """
    if not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > TOKEN_MAX_LENGTH:
        return None
    token = (
        ApiToken.objects.active()
        .select_related("owner")
        .filter(token_hash=token_hash(raw_token), owner__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token
