"""Connecting a cloud drive to a destination: the OAuth pages, with the provider's token
endpoint replayed from recorded exchanges (Dropbox's; the three speak the same flow)."""

from __future__ import annotations

import base64
import hashlib
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from destinations.kinds.oauth import refresh_token_in_use
from destinations.models import Destination, HealthStatus
from destinations.services import destination_create
from destinations.tests.conftest import RECORDINGS, routes_to

CONNECTED_TOKEN = "connected-refresh-token-from-dropbox-9f8e7d"
APP_SECRET = "docuelevate-app-secret-55aa"


@pytest.fixture
def dropbox_app(settings, replay):
    settings.DROPBOX_APP_KEY = "docuelevate-app-key"
    settings.DROPBOX_APP_SECRET = APP_SECRET
    settings.PUBLIC_BASE_URL = "https://docs.example.com"
    settings.CLOUD_API_ROUTES = routes_to(
        replay, "https://api.dropboxapi.com", "https://content.dropboxapi.com"
    )
    return settings


def dropbox_destination(owner=None, **fields) -> Destination:
    return destination_create(
        kind="dropbox",
        name=fields.pop("name", "My Dropbox"),
        owner=owner,
        settings={"folder": "Scans"},
        secrets=fields.pop("secrets", {}),
        **fields,
    )


def start(client, destination: Destination, **query):
    return client.get(reverse("destination-connect", kwargs={"destination_id": destination.pk}), query)


def stored_column(destination: Destination) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM destinations_destination WHERE id = %s", [destination.pk])
        return str(cursor.fetchone()[0])


def test_connecting_sends_the_person_to_dropbox_with_state_pkce_and_the_registered_redirect_uri(
    client, owner, dropbox_app
):
    destination = dropbox_destination(owner)
    client.force_login(owner)
    response = start(client, destination)
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "www.dropbox.com", "/oauth2/authorize")
    query = {name: values[0] for name, values in parse_qs(target.query).items()}
    flow = client.session["destination_connect"]
    assert query["client_id"] == "docuelevate-app-key"
    assert query["redirect_uri"] == "https://docs.example.com/destinations/connect/dropbox/callback"
    assert query["response_type"] == "code"
    assert query["token_access_type"] == "offline"
    assert query["state"] == flow["state"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(flow["verifier"].encode()).digest()).rstrip(b"=")
    assert (query["code_challenge"], query["code_challenge_method"]) == (challenge.decode(), "S256")
    assert flow["verifier"] not in response["Location"]
    assert APP_SECRET not in response["Location"]


def test_the_callback_stores_the_refresh_token_sealed_and_never_shows_it(
    client, owner, dropbox_app, replay, caplog
):
    replay.play("dropbox_oauth_code_exchange", RECORDINGS)
    destination = dropbox_destination(owner)
    Destination.objects.filter(pk=destination.pk).update(health_status=HealthStatus.FAILING, health_error="x")
    client.force_login(owner)
    start(client, destination, next="/files")
    flow = client.session["destination_connect"]
    caplog.set_level(logging.DEBUG)
    response = client.get(
        reverse("destination-connect-callback", kwargs={"kind": "dropbox"}),
        {"code": "recorded-authorization-code", "state": flow["state"]},
        follow=True,
    )
    assert response.redirect_chain == [("/files", 302)]
    assert "My Dropbox is connected to Dropbox." in response.content.decode()
    # The code went to Dropbox's token endpoint with the verifier only this session knew.
    exchange = {name: values[0] for name, values in parse_qs(replay.received[0].body.decode()).items()}
    assert replay.received[0].headers["host"] == "api.dropboxapi.com"
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code"] == "recorded-authorization-code"
    assert exchange["code_verifier"] == flow["verifier"]
    assert exchange["redirect_uri"] == "https://docs.example.com/destinations/connect/dropbox/callback"
    destination.refresh_from_db()
    assert refresh_token_in_use(destination.secrets) == CONNECTED_TOKEN
    assert destination.health_status == HealthStatus.UNKNOWN
    assert CONNECTED_TOKEN not in stored_column(destination)
    assert CONNECTED_TOKEN not in response.content.decode()
    assert CONNECTED_TOKEN not in caplog.text
    assert "destination_connect" not in client.session  # the flow is used up


def test_a_callback_with_another_state_is_refused_and_asks_no_one(client, owner, dropbox_app, replay):
    destination = dropbox_destination(owner)
    client.force_login(owner)
    start(client, destination)
    response = client.get(
        "/destinations/connect/dropbox/callback",
        {"code": "a-code-for-the-attackers-account", "state": "forged"},
    )
    assert response.status_code == 400
    assert "not started here" in response.content.decode()
    assert replay.received == []
    destination.refresh_from_db()
    assert refresh_token_in_use(destination.secrets) == ""
    # The flow is used up by the failed attempt: the real answer cannot come later either.
    assert "destination_connect" not in client.session


def test_a_callback_without_a_flow_in_this_session_is_refused(client, owner, dropbox_app, replay):
    client.force_login(owner)
    response = client.get("/destinations/connect/dropbox/callback", {"code": "c", "state": "s"})
    assert response.status_code == 400
    assert replay.received == []


def test_a_refusal_by_the_person_at_dropbox_is_said_plainly(client, owner, dropbox_app, replay):
    destination = dropbox_destination(owner)
    client.force_login(owner)
    start(client, destination)
    state = client.session["destination_connect"]["state"]
    response = client.get(
        "/destinations/connect/dropbox/callback",
        {
            "error": "access_denied",
            "error_description": "The user chose not to give your app access",
            "state": state,
        },
    )
    assert response.status_code == 400
    assert "Dropbox did not allow the connection (access_denied)." in response.content.decode()
    assert replay.received == []


def test_a_code_the_token_endpoint_refuses_stores_nothing(client, owner, dropbox_app, replay):
    replay.play("dropbox_oauth_code_refused", RECORDINGS)
    destination = dropbox_destination(owner)
    client.force_login(owner)
    start(client, destination)
    state = client.session["destination_connect"]["state"]
    response = client.get("/destinations/connect/dropbox/callback", {"code": "old-code", "state": state})
    assert response.status_code == 400
    assert "Dropbox refused the sign-in (invalid_grant)" in response.content.decode()
    destination.refresh_from_db()
    assert refresh_token_in_use(destination.secrets) == ""


def test_someone_elses_destination_cannot_be_connected(client, owner, other_user, dropbox_app):
    destination = dropbox_destination(owner)
    client.force_login(other_user)
    assert start(client, destination).status_code == 404


def test_a_system_wide_destination_is_connected_by_operators_only(client, owner, operator, dropbox_app):
    destination = dropbox_destination(None, name="Office Dropbox")
    client.force_login(owner)
    assert start(client, destination).status_code == 404
    client.force_login(operator)
    assert start(client, destination).status_code == 302


def test_connecting_needs_a_signed_in_person(client, owner, dropbox_app):
    destination = dropbox_destination(owner)
    response = start(client, destination)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_connecting_without_the_apps_credentials_says_what_the_operator_must_set(client, owner, dropbox_app):
    dropbox_app.DROPBOX_APP_SECRET = ""
    destination = dropbox_destination(owner)
    client.force_login(owner)
    response = start(client, destination)
    assert response.status_code == 409
    assert "DROPBOX_APP_SECRET" in response.content.decode()


def test_a_next_page_elsewhere_is_not_followed(client, owner, dropbox_app, replay):
    replay.play("dropbox_oauth_code_exchange", RECORDINGS)
    destination = dropbox_destination(owner)
    client.force_login(owner)
    start(client, destination, next="https://evil.example/phish")
    state = client.session["destination_connect"]["state"]
    response = client.get("/destinations/connect/dropbox/callback", {"code": "c", "state": state})
    assert response["Location"] == reverse("dashboard")


def test_kinds_with_their_own_credentials_have_nothing_to_connect(client, operator):
    client.force_login(operator)
    assert client.get("/destinations/connect/s3/callback", {"code": "c", "state": "s"}).status_code == 404
    assert client.get("/destinations/connect/nothing/callback").status_code == 404
