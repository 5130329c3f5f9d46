from __future__ import annotations

from typing import Any

import pytest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.authentication import ApiTokenAuthentication
from accounts.models import ApiToken
from docuelevate.addresses import client_ip

factory = APIRequestFactory()


def drf_request(path: str = "/api/whoami", authorization: str | bytes | None = None, **meta: Any) -> Request:
    if authorization is not None:
        meta["HTTP_AUTHORIZATION"] = authorization
    return Request(factory.get(path, **meta))


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer", "TOKEN"])
def test_both_header_styles_authenticate_the_tokens_owner(owner, make_token, scheme):
    raw_token = make_token(owner)
    result = ApiTokenAuthentication().authenticate(drf_request(authorization=f"{scheme} {raw_token}"))
    assert result is not None
    user, token = result
    assert user == owner
    assert isinstance(token, ApiToken)
    assert token.owner == owner


@pytest.mark.parametrize("authorization", [None, "", "Basic b3duZXI6c2VjcmV0", "Digest username=x"])
def test_requests_without_a_token_are_left_to_the_other_authenticators(db, authorization):
    assert ApiTokenAuthentication().authenticate(drf_request(authorization=authorization)) is None


@pytest.mark.parametrize("path", ["/", "/files/1", "/admin/", "/apix/whoami", "/api"])
def test_a_token_is_ignored_outside_the_api(owner, make_token, path):
    request = drf_request(path, authorization=f"Bearer {make_token(owner)}")
    assert ApiTokenAuthentication().authenticate(request) is None


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Token a b",
        "Bearer de_garbage",
        "Bearer not-even-prefixed",
        "Bearer de_ä".encode(),
    ],
)
def test_a_malformed_or_unknown_token_fails_instead_of_falling_back(db, authorization):
    request = drf_request(authorization=authorization)
    with pytest.raises(AuthenticationFailed):
        ApiTokenAuthentication().authenticate(request)


def test_a_revoked_token_fails(owner, make_token):
    raw_token = make_token(owner)
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    with pytest.raises(AuthenticationFailed, match="Invalid, expired or revoked"):
        ApiTokenAuthentication().authenticate(drf_request(authorization=f"Bearer {raw_token}"))


def test_unauthenticated_answers_name_the_bearer_scheme():
    assert ApiTokenAuthentication().authenticate_header(drf_request()) == "Bearer"


def test_the_client_address_is_the_connection_without_a_proxy(settings):
    settings.SECURE_PROXY = False
    request = drf_request(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert client_ip(request) == "198.51.100.7"


def test_behind_the_proxy_only_the_last_forwarded_address_is_trusted(settings):
    settings.SECURE_PROXY = True
    request = drf_request(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.1")
    assert client_ip(request) == "203.0.113.1"


def test_behind_the_proxy_without_a_forwarded_header_the_connection_counts(settings):
    settings.SECURE_PROXY = True
    assert client_ip(drf_request(REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"


@pytest.mark.parametrize("address", ["", "unknown", "999.1.1.1"])
def test_an_address_that_is_no_ip_is_not_recorded(settings, address):
    settings.SECURE_PROXY = False
    assert client_ip(drf_request(REMOTE_ADDR=address)) is None
