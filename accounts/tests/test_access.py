"""signed_in_user: the signed-in user for views that act for them, refusing anyone else."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from accounts.access import signed_in_user


def test_a_signed_in_request_gives_its_user(owner):
    page = RequestFactory().get("/api-tokens")
    page.user = owner
    assert signed_in_user(page) == owner
    api = Request(RequestFactory().get("/api/whoami"))
    api.user = owner
    assert signed_in_user(api) == owner


def test_an_anonymous_page_request_is_forbidden(anonymous):
    request = RequestFactory().get("/api-tokens")
    request.user = anonymous
    with pytest.raises(PermissionDenied):
        signed_in_user(request)


def test_an_anonymous_api_request_is_asked_to_authenticate(anonymous):
    request = Request(RequestFactory().get("/api/whoami"))
    request.user = anonymous
    with pytest.raises(NotAuthenticated):
        signed_in_user(request)
