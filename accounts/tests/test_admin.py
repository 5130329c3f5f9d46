from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ApiToken
from accounts.services import token_create
from accounts.tests.factories import UserFactory

CHANGELIST = "/admin/accounts/apitoken/"


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="chief", is_staff=True, is_superuser=True))
    return client


def test_operators_see_tokens_by_prefix_but_never_the_hash(superuser_client, owner):
    token, raw_token = token_create(user=owner, name="backup script")
    listing = superuser_client.get(CHANGELIST).content.decode()
    assert "backup script" in listing
    assert token.token_prefix in listing
    detail = superuser_client.get(f"{CHANGELIST}{token.pk}/change/").content.decode()
    for page in (listing, detail):
        assert token.token_hash not in page
        assert raw_token not in page


def test_tokens_cannot_be_added_in_the_admin(superuser_client):
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_revoke_action_revokes_the_selected_tokens(superuser_client, owner, other_user):
    chosen, _ = token_create(user=owner, name="lost laptop")
    untouched, _ = token_create(user=other_user, name="desktop")
    response = superuser_client.post(
        CHANGELIST, {"action": "revoke", "_selected_action": [chosen.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Revoked 1 API token(s)." in response.content.decode()
    assert ApiToken.objects.get(pk=chosen.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=untouched.pk).revoked_at is None


def test_an_operator_without_admin_permissions_cannot_see_tokens(client, operator, owner):
    token_create(user=owner, name="laptop")
    client.force_login(operator)
    assert client.get(CHANGELIST).status_code == 403


def test_the_user_admin_shows_the_profile_fields(superuser_client, owner):
    page = superuser_client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()
    for field in ("display_name", "avatar_url", "preferred_language"):
        assert f'name="{field}"' in page
