"""/api/destinations: who sees and changes which destination, secrets that never come back,
hostile requests, addresses a user's destination may not reach, and the test button's
check against a real S3 API."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from destinations.models import Destination, HealthStatus
from destinations.services import destination_create, system_destinations_sync
from destinations.tests.conftest import S3_KEYS
from documents.models import FailureKind

LIST = "/api/destinations"


def detail(destination: Destination) -> str:
    return f"/api/destinations/{destination.pk}"


@pytest.fixture
def as_persona(request):
    """An API client signed in as the named persona (a session: an operator's carries
    operator rights), or none for ``anonymous``."""

    def sign_in(persona: str) -> APIClient:
        client = APIClient()
        if persona != "anonymous":
            client.force_authenticate(request.getfixturevalue(persona))
        return client

    return sign_in


def s3(owner=None, name="Archive", **settings) -> Destination:
    """A destination that is never contacted (AWS itself, no endpoint)."""
    return destination_create(
        kind="s3", name=name, owner=owner, settings={"bucket": "archive", **settings}, secrets=S3_KEYS
    )


@pytest.fixture
def world(owner, other_user, operator):
    return {
        "owner": s3(owner, "owner's"),
        "other_user": s3(other_user, "other user's"),
        "operator": s3(operator, "operator's"),
        "system": s3(None, "everyone's"),
    }


# --- Who sees what -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "sees"),
    [
        ("owner", {"owner's"}),
        ("other_user", {"other user's"}),
        ("operator", {"operator's", "everyone's"}),
    ],
)
def test_a_user_lists_their_own_destinations_and_an_operator_the_system_wide_ones_too(
    as_persona, world, persona, sees
):
    answer = as_persona(persona).get(LIST)
    assert answer.status_code == 200
    assert {row["name"] for row in answer.json()} == sees


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST), ("post", LIST), ("get", "/api/destinations/1"), ("patch", "/api/destinations/1"),
     ("delete", "/api/destinations/1"), ("post", "/api/destinations/1/test")],
)  # fmt: skip
def test_anonymous_callers_are_refused_with_401(as_persona, db, method, path):
    answer = getattr(as_persona("anonymous"), method)(path, {}, format="json")
    assert answer.status_code == 401
    assert answer.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize(
    ("persona", "whose"),
    [("owner", "other_user"), ("owner", "system"), ("other_user", "owner"), ("other_user", "system"),
     # Operator rights are about system-wide destinations, not about other people's own.
     ("operator", "owner"), ("operator", "other_user")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("get", "", None), ("patch", "", {"name": "taken over"}), ("delete", "", None), ("post", "/test", None)],
)
def test_a_destination_someone_may_not_see_is_not_found_whatever_they_ask(
    as_persona, world, persona, whose, method, suffix, body
):
    destination = world[whose]
    answer = getattr(as_persona(persona), method)(detail(destination) + suffix, body, format="json")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "No such destination."}
    assert Destination.objects.get(pk=destination.pk).name == destination.name


def test_an_operators_token_without_operator_scope_sees_only_their_own(world, operator):
    _, everyday = token_create(user=operator, name="phone")
    _, scoped = token_create(user=operator, name="admin script", operator_scope=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {everyday}")
    assert {row["name"] for row in client.get(LIST).json()} == {"operator's"}
    assert client.get(detail(world["system"])).status_code == 404
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scoped}")
    assert {row["name"] for row in client.get(LIST).json()} == {"operator's", "everyone's"}


def test_an_operator_changes_and_removes_a_system_wide_destination(as_persona, world):
    operator = as_persona("operator")
    system = world["system"]
    answer = operator.patch(detail(system), {"name": "Company archive", "enabled": False}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["enabled"], answer.json()["system_wide"]) == (
        "Company archive", False, True,
    )  # fmt: skip
    assert operator.delete(detail(system)).status_code == 204
    assert not Destination.objects.filter(pk=system.pk).exists()


# --- Making and changing ------------------------------------------------------------------------


def new_s3(**fields):
    return {
        "kind": "s3",
        "name": "My bucket",
        "settings": {"bucket": "my-bucket", "folder": "scans", "region": "eu-central-1"},
        "secrets": S3_KEYS,
        "folder_template": "{year}/{document_type}",
        **fields,
    }


def test_a_user_makes_a_destination_whose_secrets_are_stored_sealed_and_never_answered(
    as_persona, owner, caplog
):
    client = as_persona("owner")
    with caplog.at_level(logging.DEBUG):
        made = client.post(LIST, new_s3(), format="json")
        listed = client.get(LIST)
        shown = client.get(f"{LIST}/{made.json()['id']}")
    assert made.status_code == 201
    body = made.json()
    assert body["system_wide"] is False
    assert body["settings"]["bucket"] == "my-bucket"
    assert body["secrets_set"] == ["access_key_id", "secret_access_key"]
    assert "secrets" not in body
    assert body["health"]["status"] == "unknown"
    for answer in (made, listed, shown):
        assert S3_KEYS["secret_access_key"] not in answer.content.decode()
        assert S3_KEYS["access_key_id"] not in answer.content.decode()
    assert S3_KEYS["secret_access_key"] not in caplog.text
    stored = Destination.objects.get(pk=body["id"])
    assert stored.owner == owner
    assert stored.secrets.reveal() == S3_KEYS


def test_only_an_operator_makes_a_system_wide_destination(as_persona, db):
    refused = as_persona("owner").post(LIST, new_s3(system_wide=True), format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only operators can make system-wide destinations."
    made = as_persona("operator").post(LIST, new_s3(system_wide=True), format="json")
    assert made.status_code == 201
    assert made.json()["system_wide"] is True
    assert Destination.objects.get(pk=made.json()["id"]).owner is None


def test_a_change_keeps_what_is_not_given_and_secrets_change_one_by_one(as_persona, world):
    client = as_persona("owner")
    mine = world["owner"]
    renamed = client.patch(detail(mine), {"name": "Renamed"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["settings"]["bucket"] == "archive"
    new_key = {"secret_access_key": "a-brand-new-secret-value"}
    assert client.patch(detail(mine), {"secrets": new_key}, format="json").status_code == 200
    assert Destination.objects.get(pk=mine.pk).secrets.reveal() == {
        "access_key_id": S3_KEYS["access_key_id"],
        **new_key,
    }
    settings = {"bucket": "elsewhere", "folder": "in/here"}
    moved = client.patch(detail(mine), {"settings": settings}, format="json")
    assert moved.json()["settings"]["folder"] == "in/here"
    assert moved.json()["secrets_set"] == ["access_key_id", "secret_access_key"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "s3"}, "kind: A destination's kind cannot change; make a new destination."),
        ({"system_wide": True}, "system_wide: Whose destination it is cannot change"),
        ({"colour": "red"}, "Unknown field colour."),
        ({"settings": {"bucket": "b", "colour": "red"}}, "S3 destinations have no setting colour."),
        ({"folder_template": "{year}/{author}"}, "{author}, which is not a placeholder"),
        ({"secrets": {"secret_access_key": ""}}, "go together"),
    ],
)
def test_a_change_that_cannot_be_made_is_refused_with_the_reason(as_persona, world, body, message):
    answer = as_persona("owner").patch(detail(world["owner"]), body, format="json")
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert Destination.objects.get(pk=world["owner"].pk).secrets.reveal() == S3_KEYS


def test_a_name_a_user_already_has_is_a_conflict(as_persona, world):
    answer = as_persona("owner").post(LIST, new_s3(name="owner's"), format="json")
    assert answer.status_code == 409


@pytest.fixture
def environment_destination(db, settings) -> Destination:
    settings.S3_ENABLED = True
    settings.S3_BUCKET_NAME = "company"
    settings.AWS_ACCESS_KEY_ID = S3_KEYS["access_key_id"]
    settings.AWS_SECRET_ACCESS_KEY = S3_KEYS["secret_access_key"]
    (destination,) = system_destinations_sync()
    return destination


@pytest.mark.parametrize(
    "body",
    [{"settings": {"bucket": "elsewhere"}}, {"secrets": {"secret_access_key": "x"}}, {"enabled": False}],
)
def test_the_environments_destination_keeps_its_settings_secrets_and_switch(
    as_persona, environment_destination, body
):
    answer = as_persona("operator").patch(detail(environment_destination), body, format="json")
    assert answer.status_code == 409
    assert "defined by the environment" in answer.json()["detail"]


def test_the_environments_destination_is_renamed_and_templated_but_never_removed(
    as_persona, environment_destination
):
    operator = as_persona("operator")
    changes = {"name": "Company bucket", "folder_template": "{year}", "collision_policy": "replace"}
    changed = operator.patch(detail(environment_destination), changes, format="json")
    assert changed.status_code == 200
    assert changed.json()["from_environment"] is True
    assert {key: changed.json()[key] for key in changes} == changes
    removed = operator.delete(detail(environment_destination))
    assert removed.status_code == 409
    assert "S3_ENABLED=false" in removed.json()["detail"]
    assert Destination.objects.filter(pk=environment_destination.pk).exists()


# --- Hostile requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (new_s3(kind="gopher"), 400, '"gopher" is not a valid choice.'),
        (new_s3(kind=["s3"]), 400, "kind"),
        (new_s3(name={"first": "x"}), 400, "name: Not a valid string."),
        (new_s3(name=""), 400, "name: This field may not be blank."),
        (new_s3(settings=["bucket"]), 400, "settings: Expected a dictionary"),
        (new_s3(settings={"bucket": {"nested": "object"}}), 400, "A setting is text, a whole number or"),
        (new_s3(settings={"bucket": "b" * 9000}), 400, "at most 8192 characters"),
        (new_s3(settings={"Bucket Name": "b"}), 400, "Names are lowercase letters"),
        (new_s3(settings={f"key_{n}": "x" for n in range(40)}), 400, "At most 32 names."),
        (new_s3(settings={"bucket": "b", "acl": "everyone"}), 400, "The ACL must be"),
        (new_s3(secrets={"password": "x"}), 400, "S3 destinations have no setting password."),
        (new_s3(secrets={"access_key_id": ["AKIA"]}), 400, "Not a valid string."),
        (new_s3(enabled="perhaps"), 400, "enabled: Must be a valid boolean."),
        (new_s3(collision_policy="overwrite"), 400, "collision_policy"),
        (new_s3(folder_template="../{title}"), 400, "folder template"),
        (new_s3(owner=7), 400, "Unknown field owner."),
        ([new_s3()], 400, "Invalid data. Expected a dictionary, but got list."),
    ],
)  # fmt: skip
def test_a_malformed_destination_is_refused_with_a_readable_reason(as_persona, db, body, status, message):
    answer = as_persona("owner").post(LIST, body, format="json")
    assert answer.status_code == status, answer.content
    assert message in answer.json()["detail"]
    assert not Destination.objects.exists()


def test_broken_and_oversized_json_are_refused(as_persona, db, settings):
    client = as_persona("owner")
    broken = client.post(LIST, data='{"kind": "s3", "name": ', content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error")
    huge = json.dumps(new_s3(secrets={"secret_access_key": "x" * (settings.MAX_REQUEST_BODY_SIZE + 1)}))
    too_large = client.post(LIST, data=huge, content_type="application/json")
    assert too_large.status_code == 413
    assert not Destination.objects.exists()


# --- Where a user's destination may point -------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://10.1.2.3",
        "http://169.254.169.254",
        "http://0.0.0.0",
    ],
)
def test_a_users_destination_may_not_point_at_the_servers_own_network(as_persona, db, endpoint):
    body = new_s3(settings={"bucket": "b", "endpoint_url": endpoint})
    answer = as_persona("owner").post(LIST, body, format="json")
    assert answer.status_code == 400
    assert "private, loopback or reserved address" in answer.json()["detail"]
    assert not Destination.objects.exists()


# Every kind that takes a host, with the least it needs besides.
USERS_HOSTS = [
    ("s3", {"bucket": "b", "endpoint_url": "http://127.0.0.1:9000"}, S3_KEYS),
    ("paperless", {"host": "http://127.0.0.1:8000"}, {"api_token": "a-paperless-token"}),
    ("ftp", {"host": "127.0.0.1", "username": "scanner"}, {"password": "pw"}),
    ("sftp", {"host": "127.0.0.1", "username": "scanner"}, {"password": "pw"}),
    ("webdav", {"url": "https://127.0.0.1/dav", "username": "scanner"}, {"password": "pw"}),
    ("nextcloud", {"url": "https://127.0.0.1", "username": "scanner"}, {"password": "pw"}),
    ("email", {"host": "127.0.0.1", "sender": "a@example.com", "recipient": "b@example.com"}, {}),
]


@pytest.mark.parametrize(("kind", "given", "secrets"), USERS_HOSTS, ids=[kind for kind, *_ in USERS_HOSTS])
def test_no_kind_lets_a_users_destination_reach_this_machine_but_an_operators_may(
    as_persona, db, kind, given, secrets
):
    body = {"kind": kind, "name": "Mine", "settings": given, "secrets": secrets}
    refused = as_persona("owner").post(LIST, body, format="json")
    assert refused.status_code == 400
    assert "(127.0.0.1) is at a private, loopback or reserved address" in refused.json()["detail"]
    assert not Destination.objects.exists()
    allowed = as_persona("operator").post(LIST, {**body, "system_wide": True}, format="json")
    assert allowed.status_code == 201, allowed.content


def test_a_name_that_resolves_to_a_private_address_is_refused_too(as_persona, db, monkeypatch):
    from documents.tests.file_server import resolve_as

    resolve_as(monkeypatch, {"minio.internal.test": ["203.0.113.9", "192.168.1.20"]})
    body = new_s3(settings={"bucket": "b", "endpoint_url": "http://minio.internal.test:9000"})
    answer = as_persona("owner").post(LIST, body, format="json")
    assert answer.status_code == 400
    assert "(minio.internal.test) is at a private, loopback or reserved address" in answer.json()["detail"]


def test_an_allowed_network_lets_a_users_destination_in_but_never_a_metadata_address(
    as_persona, db, settings
):
    settings.URL_FETCH_ALLOWED_NETWORKS = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("169.254.0.0/16"),
    )
    client = as_persona("owner")
    body = new_s3(settings={"bucket": "b", "endpoint_url": "http://127.0.0.1:9000"})
    allowed = client.post(LIST, body, format="json")
    assert allowed.status_code == 201, allowed.content
    metadata = new_s3(name="metadata", settings={"bucket": "b", "endpoint_url": "http://169.254.169.254"})
    assert client.post(LIST, metadata, format="json").status_code == 400


def test_a_system_wide_destination_may_point_at_a_private_server(as_persona, db):
    body = new_s3(system_wide=True, settings={"bucket": "b", "endpoint_url": "http://10.0.0.5:9000"})
    answer = as_persona("operator").post(LIST, body, format="json")
    assert answer.status_code == 201, answer.content


# --- The test button ----------------------------------------------------------------------------


def test_testing_a_working_destination_leaves_nothing_behind_and_marks_it_working(
    as_persona, owner, make_s3_destination, bucket
):
    destination = make_s3_destination(owner=owner, folder="checks")
    answer = as_persona("owner").post(f"{detail(destination)}/test")
    assert answer.status_code == 200
    assert answer.json()["ok"] is True
    assert answer.json()["failure_kind"] is None
    assert "works" in answer.json()["detail"]
    assert bucket.keys() == []
    destination.refresh_from_db()
    assert destination.health_status == HealthStatus.OK
    assert destination.health_checked_at is not None


def test_testing_a_broken_destination_says_why_and_of_what_kind_without_a_secret(
    as_persona, owner, make_s3_destination, s3_server
):
    destination = make_s3_destination(
        owner=owner, keys={**S3_KEYS, "secret_access_key": "wrong-key-0123456789"}
    )
    s3_server.authentication(enforced=True)
    try:
        answer = as_persona("owner").post(f"{detail(destination)}/test")
    finally:
        s3_server.authentication(enforced=False)
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is False
    assert body["failure_kind"] == FailureKind.CONFIGURATION
    assert "refused the credentials" in body["detail"]
    assert "wrong-key-0123456789" not in answer.content.decode()
    destination.refresh_from_db()
    assert destination.health_status == HealthStatus.FAILING
    assert destination.health_error == body["detail"]


def test_a_destination_whose_host_now_resolves_privately_fails_its_test_as_misconfigured(
    as_persona, owner, make_s3_destination, settings
):
    destination = make_s3_destination(owner=owner)
    settings.URL_FETCH_ALLOWED_NETWORKS = ()  # the operator took the allowance back
    body = as_persona("owner").post(f"{detail(destination)}/test").json()
    assert (body["ok"], body["failure_kind"]) == (False, FailureKind.CONFIGURATION)
    assert "private, loopback or reserved address" in body["detail"]


# --- Query budget -------------------------------------------------------------------------------


def test_the_list_costs_the_same_queries_for_one_destination_or_many(
    as_persona, owner, django_assert_num_queries
):
    client = as_persona("owner")
    s3(owner, "first")
    with django_assert_num_queries(1):  # the destinations; the user comes with force_authenticate
        assert len(client.get(LIST).json()) == 1
    for number in range(5):
        s3(owner, f"more {number}")
    with django_assert_num_queries(1):
        assert len(client.get(LIST).json()) == 6
