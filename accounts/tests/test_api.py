from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create

PERSONAS = ["owner", "other_user", "operator"]
TOKEN_FIELDS = {
    "id",
    "name",
    "token_prefix",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "revoked",
    "operator_scope",
}
PROFILE_FIELDS = {"owner_id", "display_name", "email", "avatar_url", "is_admin", "preferred_language"}


# --- Anonymous callers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/api-tokens/"),
        ("post", "/api/api-tokens/"),
        ("get", "/api/api-tokens"),
        ("post", "/api/api-tokens"),
        ("delete", "/api/api-tokens/1"),
        ("delete", "/api/api-tokens/1/"),
        ("get", "/api/whoami"),
        ("get", "/api/mobile/whoami"),
        ("post", "/api/mobile/generate-token"),
    ],
)
def test_anonymous_callers_get_401_json_on_every_route(db, api_client, method, path):
    response = getattr(api_client, method)(path, {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


# --- Creating ----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_signed_in_user_creates_a_token_and_sees_it_once(request, session_client, persona):
    user = request.getfixturevalue(persona)
    response = session_client(user).post("/api/api-tokens/", {"name": "backup script"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "token_prefix", "token"}
    assert body["name"] == "backup script"
    assert body["token"].startswith("de_")
    assert body["token_prefix"] == body["token"][:11]
    token = ApiToken.objects.get(pk=body["id"])
    assert token.owner == user
    assert body["token"] not in repr(list(ApiToken.objects.values()))


def test_a_new_token_works_at_once(owner, session_client, api_client):
    raw_token = session_client(owner).post("/api/api-tokens/", {"name": "cli"}, format="json").json()["token"]
    api_client.logout()
    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 200
    assert response.json()["owner_id"] == "owner"


def test_a_token_can_be_created_with_an_expiry(owner, session_client, clock):
    expires_at = timezone.now() + timedelta(days=7)
    response = session_client(owner).post(
        "/api/api-tokens", {"name": "week", "expires_at": expires_at.isoformat()}, format="json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == expires_at


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({}, "name: This field is required."),
        ({"name": ""}, "name: This field may not be blank."),
        ({"name": "\x07\x1b"}, "The token name must not be empty."),
        ({"name": "x" * 151}, "name: Ensure this field has no more than 150 characters."),
        ({"name": "old", "expires_at": "2001-01-01T00:00:00Z"}, "The expiry date must lie in the future."),
        ({"name": "when", "expires_at": "next tuesday"}, None),
    ],
)
def test_an_unacceptable_token_request_is_400_json(owner, session_client, payload, detail):
    response = session_client(owner).post("/api/api-tokens/", payload, format="json")
    assert response.status_code == 400
    if detail is not None:
        assert response.json()["detail"] == detail
    assert isinstance(response.json()["detail"], str)
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("persona", ["owner", "other_user"])
def test_operator_scope_is_refused_to_people_who_are_not_staff(request, session_client, persona):
    client = session_client(request.getfixturevalue(persona))
    response = client.post("/api/api-tokens/", {"name": "ops", "operator_scope": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Only operators can create a token with operator scope."}
    assert not ApiToken.objects.exists()


def test_an_operator_creates_a_token_with_operator_scope(operator, session_client):
    response = session_client(operator).post(
        "/api/api-tokens/", {"name": "ops", "operator_scope": True}, format="json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).operator_scope is True


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_token_cannot_create_tokens(request, token_client, persona):
    # Else a leaked token could mint a successor that outlives its revocation.
    response = token_client(request.getfixturevalue(persona)).post(
        "/api/api-tokens/", {"name": "successor"}, format="json"
    )
    assert response.status_code == 403
    assert "session" in response.json()["detail"]
    assert ApiToken.objects.count() == 1


# --- Listing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_list_shows_only_the_callers_own_tokens_without_secrets(
    request, session_client, owner, other_user, operator, persona
):
    for someone in (owner, other_user, operator):
        token_create(user=someone, name=f"{someone.username}'s token")
    user = request.getfixturevalue(persona)
    response = session_client(user).get("/api/api-tokens/")
    assert response.status_code == 200
    tokens = response.json()
    assert [token["name"] for token in tokens] == [f"{persona}'s token"]
    assert set(tokens[0]) == TOKEN_FIELDS
    assert tokens[0]["revoked"] is False
    stored = ApiToken.objects.get(owner=user)
    assert stored.token_hash not in response.content.decode()


def test_revoked_tokens_stay_in_the_list_marked_revoked(owner, session_client):
    token_create(user=owner, name="kept")
    gone, _ = token_create(user=owner, name="gone")
    client = session_client(owner)
    client.delete(f"/api/api-tokens/{gone.pk}")
    listed = {token["name"]: token["revoked"] for token in client.get("/api/api-tokens").json()}
    assert listed == {"kept": False, "gone": True}


def test_the_list_is_available_with_a_token_and_shows_its_last_use(owner, token_client):
    client = token_client(owner)
    response = client.get("/api/api-tokens/", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 200
    [token] = response.json()
    assert token["last_used_ip"] == "203.0.113.5"
    assert token["last_used_at"] is not None


def test_the_list_costs_the_same_few_queries_however_many_tokens(
    owner, session_client, django_assert_num_queries
):
    client = session_client(owner)
    for number in range(10):
        token_create(user=owner, name=f"token {number}")
    with django_assert_num_queries(3):  # session, user, tokens
        assert len(client.get("/api/api-tokens/").json()) == 10


# --- Revoking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_people_revoke_their_own_tokens_and_the_token_stops_working(
    request, session_client, api_client, persona
):
    user = request.getfixturevalue(persona)
    token, raw_token = token_create(user=user, name="laptop")
    response = session_client(user).delete(f"/api/api-tokens/{token.pk}")
    assert response.status_code == 204
    assert response.content == b""
    api_client.logout()
    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 401


@pytest.mark.parametrize("persona", ["other_user", "operator"])
def test_revoking_someone_elses_token_is_404_and_changes_nothing(request, owner, session_client, persona):
    token, _ = token_create(user=owner, name="laptop")
    response = session_client(request.getfixturevalue(persona)).delete(f"/api/api-tokens/{token.pk}")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such API token."}
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("token_id", ["999999", "abc", "-1"])
def test_revoking_an_unknown_token_is_404_json(owner, session_client, token_id):
    response = session_client(owner).delete(f"/api/api-tokens/{token_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such API token."}


def test_a_token_can_revoke_itself(owner, api_client):
    token, raw_token = token_create(user=owner, name="laptop")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw_token}")
    assert api_client.delete(f"/api/api-tokens/{token.pk}/").status_code == 204
    assert api_client.get("/api/whoami").status_code == 401


# --- Using a token -----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_both_header_styles_open_the_api(request, token_client, persona, scheme):
    user = request.getfixturevalue(persona)
    response = token_client(user, scheme=scheme).get("/api/whoami")
    assert response.status_code == 200
    assert response.json()["owner_id"] == user.username


@pytest.mark.parametrize(
    "authorization",
    ["Bearer de_garbage", "Bearer", "Token a b", "Bearer " + "de_" + "x" * 43, "Bearer not-a-token"],
)
def test_a_garbage_token_is_401_json(db, api_client, authorization):
    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert set(response.json()) == {"detail"}


def test_a_revoked_token_is_401_json(owner, api_client):
    token, raw_token = token_create(user=owner, name="laptop")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid, expired or revoked API token."}


def test_an_expired_token_is_401_json(owner, api_client, clock):
    _, raw_token = token_create(user=owner, name="laptop", expires_at=timezone.now() + timedelta(hours=1))
    assert api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}").status_code == 200
    clock.shift(timedelta(hours=1))
    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid, expired or revoked API token."}


def test_a_bad_token_is_refused_even_beside_a_valid_session(owner, session_client):
    client = session_client(owner)
    response = client.get("/api/whoami", HTTP_AUTHORIZATION="Bearer de_revoked-or-stolen")
    assert response.status_code == 401


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_token_does_not_open_the_admin(request, api_client, make_token, persona):
    raw_token = make_token(request.getfixturevalue(persona), operator_scope=persona == "operator")
    response = api_client.get("/admin/", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_using_a_token_records_when_and_from_where_at_most_once_a_minute(owner, api_client, clock):
    token, raw_token = token_create(user=owner, name="laptop")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    api_client.get("/api/whoami", REMOTE_ADDR="198.51.100.1")
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use == timezone.now()
    assert token.last_used_ip == "198.51.100.1"

    clock.shift(timedelta(seconds=59))
    api_client.get("/api/whoami", REMOTE_ADDR="198.51.100.2")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (first_use, "198.51.100.1")

    clock.shift(timedelta(seconds=1))
    api_client.get("/api/whoami", REMOTE_ADDR="198.51.100.3")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (first_use + timedelta(minutes=1), "198.51.100.3")


# --- Who am I ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/whoami", "/api/mobile/whoami", "/api/whoami/"])
@pytest.mark.parametrize(
    ("persona", "is_admin"), [("owner", False), ("other_user", False), ("operator", True)]
)
def test_whoami_describes_the_signed_in_user(request, session_client, path, persona, is_admin):
    user = request.getfixturevalue(persona)
    response = session_client(user).get(path)
    assert response.status_code == 200
    assert response.json() == {
        "owner_id": persona,
        "display_name": persona,
        "email": f"{persona}@example.com",
        "avatar_url": "",
        "is_admin": is_admin,
        "preferred_language": "en",
    }


def test_whoami_shows_the_profile_the_user_chose(owner, token_client):
    owner.display_name = "Olivia Owner"
    owner.avatar_url = "https://example.org/olivia.png"
    owner.preferred_language = "de"
    owner.save()
    body = token_client(owner).get("/api/mobile/whoami").json()
    assert set(body) == PROFILE_FIELDS
    assert body["display_name"] == "Olivia Owner"
    assert body["avatar_url"] == "https://example.org/olivia.png"
    assert body["preferred_language"] == "de"
    assert body["owner_id"] == "owner"


@pytest.mark.parametrize(("operator_scope", "is_admin"), [(False, False), (True, True)])
def test_whoami_reports_admin_only_when_the_token_may_use_operator_routes(
    operator, token_client, operator_scope, is_admin
):
    body = token_client(operator, operator_scope=operator_scope).get("/api/whoami").json()
    assert body["is_admin"] is is_admin


# --- Mobile sign-in ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_mobile_app_gets_a_device_token_from_a_session(request, session_client, api_client, persona):
    user = request.getfixturevalue(persona)
    response = session_client(user).post(
        "/api/mobile/generate-token", {"device_name": "Pixel 8"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "token_id", "name", "created_at"}
    assert body["name"] == "Mobile App \u2013 Pixel 8"
    token = ApiToken.objects.get(pk=body["token_id"])
    assert token.owner == user
    assert token.operator_scope is False
    api_client.logout()
    whoami = api_client.get("/api/mobile/whoami", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert whoami.status_code == 200
    assert whoami.json()["owner_id"] == user.username


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_token_cannot_generate_a_device_token(request, token_client, persona):
    response = token_client(request.getfixturevalue(persona)).post(
        "/api/mobile/generate-token", {"device_name": "Pixel 8"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "This needs a signed-in session; an API token cannot be used here."}
    assert ApiToken.objects.count() == 1


def test_a_device_name_loses_its_control_characters(owner, session_client):
    response = session_client(owner).post(
        "/api/mobile/generate-token", {"device_name": "Anna\x1b[2J\u202e's phone"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["name"] == "Mobile App \u2013 Anna[2J's phone"


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({}, "device_name: This field is required."),
        ({"device_name": "   "}, "device_name: This field may not be blank."),
        ({"device_name": "x" * 101}, "device_name: Ensure this field has no more than 100 characters."),
        ({"device_name": "\x01\x02"}, "The device name must not be empty."),
        ({"device_name": ["a", "b"]}, "device_name: Not a valid string."),
    ],
)
def test_a_bad_device_name_is_400_json(owner, session_client, payload, detail):
    response = session_client(owner).post("/api/mobile/generate-token", payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not ApiToken.objects.exists()


# --- Schema ------------------------------------------------------------------------------------


def test_the_schema_documents_the_accounts_api(db, api_client):
    response = api_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert set(paths["/api/api-tokens/"]) == {"get", "post"}
    assert set(paths["/api/api-tokens/{token_id}"]) == {"delete"}
    for route in ("/api/whoami", "/api/mobile/whoami"):
        assert paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Profile"
        }
    assert "/api/api-tokens" not in paths  # the second spelling is not documented twice
    created = schema["components"]["schemas"]["ApiTokenCreated"]
    assert set(created["properties"]) == {"id", "name", "token_prefix", "token"}
    assert "token_hash" not in schema["components"]["schemas"]["ApiToken"]["properties"]
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "de_…",
    }
    assert paths["/api/mobile/generate-token"]["post"]["security"] == [{"cookieAuth": []}]


def test_the_accounts_api_schema_has_no_warnings():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator(patterns=[path("api/", include("accounts.api.urls"))]).get_schema(
        request=None, public=True
    )
    assert not GENERATOR_STATS, "drf-spectacular warned about the accounts API; run manage.py spectacular"
