"""The API tokens page at /api-tokens: create (shown once), list, revoke."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import token_create

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'id="new-token"[^>]*value="(de_[^"]+)"')


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def test_the_page_needs_a_login(client):
    response = client.get("/api-tokens")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_without_tokens_is_told_how_to_start(client, owner):
    html = signed_in(client, owner).get("/api-tokens").content.decode()
    assert "You have no API tokens yet" in html


def test_a_created_token_is_shown_once_and_opens_the_api(client, owner):
    response = signed_in(client, owner).post("/api-tokens", {"name": "laptop CLI"})
    assert response.status_code == 200
    html = response.content.decode()
    match = TOKEN_RE.search(html)
    assert match, "the new token is shown in the read-only field"
    raw_token = match.group(1)
    assert "readonly" in html
    assert 'data-copy-target="new-token"' in html
    assert "shown only this once" in html
    assert "no-store" in response["Cache-Control"]

    later = client.get("/api-tokens").content.decode()
    assert raw_token not in later
    assert "laptop CLI" in later
    assert raw_token[:11] + "…" in later  # the prefix tells the tokens apart

    api = Client()
    whoami = api.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert whoami.status_code == 200
    assert whoami.json()["owner_id"] == "owner"


def test_a_token_can_be_given_an_expiry_date(client, owner, clock):
    day = (timezone.localdate() + timedelta(days=30)).isoformat()
    signed_in(client, owner).post("/api-tokens", {"name": "temporary", "expires_on": day})
    token = ApiToken.objects.get(owner=owner)
    # It works through the whole chosen day and stops at the midnight after it.
    end = timezone.localtime(token.expires_at)
    assert (end - timedelta(days=1)).date().isoformat() == day
    assert (end.hour, end.minute) == (0, 0)
    assert end.strftime("%Y-%m-%d %H:%M") in client.get("/api-tokens").content.decode()


def test_an_expiry_in_the_past_is_refused_with_the_reason(client, owner, clock):
    day = (timezone.localdate() - timedelta(days=2)).isoformat()
    response = signed_in(client, owner).post("/api-tokens", {"name": "old", "expires_on": day})
    assert response.status_code == 400
    assert "must lie in the future" in response.content.decode()
    assert not ApiToken.objects.filter(owner=owner).exists()


def test_an_empty_name_is_refused_next_to_the_field(client, owner):
    response = signed_in(client, owner).post("/api-tokens", {"name": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not TOKEN_RE.search(response.content.decode())


def test_the_list_shows_last_use_with_its_address(client, owner):
    _token, raw_token = token_create(user=owner, name="scanner")
    Client().get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}", REMOTE_ADDR="192.0.2.7")
    html = signed_in(client, owner).get("/api-tokens").content.decode()
    assert "from 192.0.2.7" in html
    assert "Active" in html


def test_revoking_a_token_asks_first_and_then_locks_it_out(client, owner):
    token, raw_token = token_create(user=owner, name="old phone")
    html = signed_in(client, owner).get("/api-tokens").content.decode()
    assert f'action="/api-tokens/{token.pk}/revoke"' in html
    assert 'data-confirm="Revoke the token “old phone”?' in html

    response = client.post(f"/api-tokens/{token.pk}/revoke", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Revoked the API token “old phone”" in page
    assert "Revoked " in page
    assert f'action="/api-tokens/{token.pk}/revoke"' not in page
    assert Client().get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}").status_code == 401


def test_another_users_token_cannot_be_revoked_or_seen(client, owner, other_user):
    theirs, _raw_token = token_create(user=other_user, name="their laptop")
    signed_in(client, owner)
    assert "their laptop" not in client.get("/api-tokens").content.decode()
    assert client.post(f"/api-tokens/{theirs.pk}/revoke").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoking_needs_a_post(client, owner):
    token, _ = token_create(user=owner, name="laptop")
    assert signed_in(client, owner).get(f"/api-tokens/{token.pk}/revoke").status_code == 405


def test_only_operators_are_offered_operator_scope(client, owner, operator):
    assert "Operator scope" not in signed_in(client, owner).get("/api-tokens").content.decode()
    client.post("/api-tokens", {"name": "sneaky", "operator_scope": "on"})
    assert ApiToken.objects.get(owner=owner).operator_scope is False
    assert "Operator scope" in signed_in(client, operator).get("/api-tokens").content.decode()
    client.post("/api-tokens", {"name": "ops", "operator_scope": "on"})
    assert ApiToken.objects.get(owner=operator).operator_scope is True


def test_every_field_is_labelled_and_the_page_has_no_inline_script(client, owner):
    token_create(user=owner, name="laptop")
    response = signed_in(client, owner).post("/api-tokens", {"name": "new one"})
    html = response.content.decode()
    for field_id in re.findall(r'<input[^>]*\bid="([^"]+)"', html):
        assert f'for="{field_id}"' in html, f"{field_id} has no label"
    assert 'for="id_name"' in html
    assert 'for="id_expires_on"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r" on[a-z]+=", html)
    assert re.search(r'<script nonce="[^"]*" src="[^"]*js/tokens\.[^"]*js" defer>', html)
