"""Writes concerning accounts."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from accounts.models import User
from docuelevate.env import secret_weakness
from docuelevate.errors import InvalidInput

ADMIN_PASSWORD_MIN_LENGTH = 12


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
