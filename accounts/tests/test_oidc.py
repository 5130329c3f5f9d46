"""Single sign-on against a real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock).

The browser's part is played by two clients: Django's test client for our side, and
``requests`` for the provider's consent form. Everything between our server and the
provider (discovery, token exchange, signature check with the provider's keys, userinfo)
goes over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oidc_provider_mock import User as ProviderUser
from oidc_provider_mock import run_server_in_thread

from accounts import oidc
from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ALICE = ProviderUser(
    sub="alice-0001",
    claims={
        "email": "alice@example.org",
        "email_verified": True,
        "preferred_username": "alice",
        "name": "Alice Example",
        "groups": ["finance", "docuelevate-admins"],
    },
)
BOB = ProviderUser(
    sub="bob-0002",
    claims={"email": "bob@example.org", "preferred_username": "bob", "name": "Bob", "groups": ["finance"]},
)


@pytest.fixture
def provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=[ALICE, BOB]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def sso(settings, provider: str) -> Iterator[str]:
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "docuelevate"
    settings.OIDC_RP_CLIENT_SECRET = "a-client-secret-of-reasonable-length"
    settings.OIDC_OP_DISCOVERY_URL = f"{provider}/.well-known/openid-configuration"
    settings.ADMIN_GROUP_NAME = "docuelevate-admins"
    oidc._discovery_cache.clear()
    yield provider
    oidc._discovery_cache.clear()


def sign_in_at_provider(client, subject: str, next_url: str = "/"):
    """Start at our login button, consent as ``subject`` at the provider, finish at our callback."""
    start = client.get("/accounts/oidc/authenticate/", {"next": next_url})
    assert start.status_code == 302, start.content
    consent = requests.post(start["Location"], data={"sub": subject}, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    callback = urlsplit(consent.headers["Location"])
    assert callback.path == "/accounts/oidc/callback/"
    return client.get(callback.path, parse_qs(callback.query))


def test_first_sign_in_creates_the_user_from_the_providers_claims_and_maps_the_admin_group(client, sso):
    response = sign_in_at_provider(client, ALICE.sub, next_url="/api/whoami")
    assert response.status_code == 302
    assert response["Location"] == "/api/whoami"

    user = User.objects.get(oidc_subject=ALICE.sub)
    assert (user.username, user.email, user.display_name) == ("alice", "alice@example.org", "Alice Example")
    assert user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    whoami = client.get("/api/whoami").json()
    assert whoami["is_admin"] is True
    assert whoami["email"] == "alice@example.org"


def test_a_user_outside_the_admin_group_is_not_staff(client, sso):
    sign_in_at_provider(client, BOB.sub)
    bob = User.objects.get(oidc_subject=BOB.sub)
    assert not bob.is_staff
    assert client.get("/api/whoami").json()["is_admin"] is False
    assert client.get("/api/queue/stats").status_code == 403


def test_leaving_the_admin_group_at_the_provider_takes_staff_away_at_the_next_sign_in(client, sso):
    sign_in_at_provider(client, ALICE.sub)
    assert User.objects.get(oidc_subject=ALICE.sub).is_staff
    client.post("/accounts/logout/")

    changed = {**ALICE.claims, "groups": ["finance"], "name": "Alice Renamed"}
    requests.put(f"{sso}/users/{ALICE.sub}", json=changed, timeout=10).raise_for_status()
    sign_in_at_provider(client, ALICE.sub)

    alice = User.objects.get(oidc_subject=ALICE.sub)
    assert not alice.is_staff
    assert alice.display_name == "Alice Renamed"
    assert User.objects.filter(email="alice@example.org").count() == 1  # the same account, not a second


def test_an_existing_local_account_with_the_verified_address_is_linked_not_duplicated(client, sso):
    local = UserFactory.create(username="alice.local", email="ALICE@example.org")
    sign_in_at_provider(client, ALICE.sub)
    local.refresh_from_db()
    assert local.oidc_subject == ALICE.sub
    assert User.objects.count() == 1


def test_an_unverified_address_does_not_take_over_a_local_account(client, sso):
    UserFactory.create(username="victim", email="victim@example.org")
    claims = {"email": "victim@example.org", "email_verified": False, "preferred_username": "victim"}
    requests.put(f"{sso}/users/mallory-9", json=claims, timeout=10).raise_for_status()
    sign_in_at_provider(client, "mallory-9")
    victim = User.objects.get(username="victim")
    assert victim.oidc_subject == ""
    newcomer = User.objects.get(oidc_subject="mallory-9")
    assert newcomer.username == "victim-2"


def test_a_refused_consent_returns_to_the_login_form_with_a_reason(client, sso):
    start = client.get("/accounts/oidc/authenticate/")
    denied = requests.post(start["Location"], data={"action": "deny"}, allow_redirects=False, timeout=10)
    callback = urlsplit(denied.headers["Location"])
    response = client.get(callback.path, parse_qs(callback.query), follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/?local=1"
    assert "did not complete" in response.content.decode()
    assert client.get("/api/whoami").status_code == 401


def test_an_unreachable_provider_leaves_local_login_working(client, settings, owner):
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "docuelevate"
    settings.OIDC_RP_CLIENT_SECRET = "a-client-secret-of-reasonable-length"
    settings.OIDC_OP_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    oidc._discovery_cache.clear()

    response = client.get("/accounts/oidc/authenticate/", follow=True)
    assert "cannot be reached" in response.content.decode()
    client.post("/accounts/login/", {"login": "owner", "password": "correct-horse-battery-staple"})
    assert client.get("/api/whoami").status_code == 200


def test_the_login_page_shows_the_sso_button_and_auto_login_skips_the_form(client, sso, settings):
    settings.OIDC_PROVIDER_NAME = "Authentik"
    page = client.get("/accounts/login/").content.decode()
    assert "Log in with Authentik" in page
    assert 'name="password"' in page

    settings.SSO_AUTO_LOGIN = True
    response = client.get("/accounts/login/", {"next": "/files"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/oidc/authenticate/?next=%2Ffiles"
    # The break-glass way in for the operator when the provider is down.
    assert 'name="password"' in client.get("/accounts/login/", {"local": "1"}).content.decode()


def test_without_sso_configured_its_routes_do_not_exist(client):
    assert client.get("/accounts/oidc/authenticate/").status_code == 404
    assert client.get("/accounts/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404
    assert "Log in with" not in client.get("/accounts/login/").content.decode()
