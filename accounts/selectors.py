"""Reads concerning accounts: a user's tokens and the profile the clients show."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import ApiToken, User


@dataclass(frozen=True)
class Profile:
    """Who is calling, as the web app, the CLI and the mobile app show it."""

    owner_id: str
    display_name: str
    email: str
    avatar_url: str
    is_admin: bool
    preferred_language: str


def token_list_for_user(*, user: User) -> QuerySet[ApiToken]:
    """Every token of ``user``, newest first, revoked ones included so their history stays visible."""
    return ApiToken.objects.filter(owner=user).order_by("-created_at", "-pk")


def user_display_name(*, user: User) -> str:
    """The name to show: the chosen display name, else the full name, else the login name."""
    return user.display_name.strip() or user.get_full_name().strip() or user.get_username()


def user_profile(*, user: User, is_admin: bool) -> Profile:
    """The profile of ``user``.

    ``owner_id`` is the username because existing clients use it as the key of a user's
    documents. ``is_admin`` is passed in because it depends on the credentials of the
    request (a token without operator scope does not make its owner an operator), not
    only on the user.
    """
    return Profile(
        owner_id=user.get_username(),
        display_name=user_display_name(user=user),
        email=user.email,
        avatar_url=user.avatar_url,
        is_admin=is_admin,
        preferred_language=user.preferred_language,
    )
