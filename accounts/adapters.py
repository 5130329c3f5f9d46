"""allauth adapters: this installation's rules for who may create an account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]  # allauth ships no types
    """Local sign-up is open only when the operator sets ALLOW_LOCAL_SIGNUP=true."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.ALLOW_LOCAL_SIGNUP)


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]  # allauth ships no types
    """Google, Microsoft or GitHub sign in existing users (matched by verified email);
    they create new accounts only where local sign-up is open too, so enabling a provider
    never opens the instance to everyone who has an account there."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return bool(settings.ALLOW_LOCAL_SIGNUP)
