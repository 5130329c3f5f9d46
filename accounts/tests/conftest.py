"""Helpers for the accounts tests: API clients signed in either way, and tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_create


@pytest.fixture(autouse=True)
def _fresh_cache(settings: Any, request: pytest.FixtureRequest) -> None:
    """allauth counts its rate limits (one confirmation mail per address every few minutes,
    failed logins) in the shared cache; each test starts with none of them spent, whatever
    ran before it, in this run or a recent one."""
    locmem = "django.core.cache.backends.locmem.LocMemCache"
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": locmem, "LOCATION": request.node.nodeid}}


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_token() -> Callable[..., str]:
    """Create a token for a user through the service and return the secret, as a client holds it."""

    def make(user: User, name: str = "laptop", **options: Any) -> str:
        _, raw_token = token_create(user=user, name=name, **options)
        return raw_token

    return make


@pytest.fixture
def session_client(api_client: APIClient) -> Callable[[User], APIClient]:
    """An API client signed in with a real session, as the browser and the mobile app sign-in."""

    def sign_in(user: User) -> APIClient:
        api_client.force_login(user)
        return api_client

    return sign_in


@pytest.fixture
def token_client(api_client: APIClient, make_token: Callable[..., str]) -> Callable[..., APIClient]:
    """An API client that sends a fresh token of ``user`` in the Authorization header."""

    def with_token(user: User, scheme: str = "Bearer", **options: Any) -> APIClient:
        api_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {make_token(user, **options)}")
        return api_client

    return with_token
