from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ApiToken
from accounts.services import token_create
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

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


# --- Signing in to the admin ---------------------------------------------------------------------


def test_the_admin_sends_a_visitor_to_the_sites_sign_in_form_and_back(client, db):
    UserFactory.create(username="chief", is_staff=True, is_superuser=True)
    asked = client.get("/admin/accounts/user/")
    assert asked["Location"] == "/admin/login/?next=/admin/accounts/user/"
    sent_on = client.get(asked["Location"])
    assert sent_on.status_code == 302
    assert sent_on["Location"] == "/accounts/login/?next=%2Fadmin%2Faccounts%2Fuser%2F"

    signed_in = client.post(sent_on["Location"], {"login": "chief", "password": DEFAULT_PASSWORD})
    assert signed_in["Location"] == "/admin/accounts/user/"
    assert client.get("/admin/accounts/user/").status_code == 200


def test_the_admins_own_password_form_is_gone(client, operator):
    # The right password, posted where Django's admin form used to take it, signs nobody in.
    answer = client.post("/admin/login/", {"username": "operator", "password": DEFAULT_PASSWORD})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    assert b"Django site admin" not in client.get("/admin/login/", follow=True).content


def test_a_signed_in_user_who_is_no_operator_is_refused_not_sent_round_in_circles(client, owner):
    client.force_login(owner)
    asked = client.get("/admin/")
    assert asked["Location"] == "/admin/login/?next=/admin/"
    assert client.get(asked["Location"]).status_code == 403


def test_a_signed_in_operator_goes_straight_to_the_page_asked_for(client, operator):
    client.force_login(operator)
    assert client.get("/admin/login/?next=/admin/accounts/user/")["Location"] == "/admin/accounts/user/"


def test_a_next_address_on_another_site_is_not_followed(client):
    answer = client.get("/admin/login/?next=https://attacker.example/")
    assert answer["Location"] == "/accounts/login/?next=%2Fadmin%2F"
