"""/api/sources: who sees and changes which source, what users may make and what only
operators may, passwords that never come back, the environment's sources, the test button
against a real Dovecot, and a poll queued on demand."""

from __future__ import annotations

import ipaddress
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import token_create
from documents.models import FailureKind
from sources.models import ItemState, Source, SourceItem, SourceKind
from sources.services import source_create, system_sources_sync
from sources.tasks import source_poll_task

LIST = "/api/sources"
PASSWORD = "correct-horse-battery-staple"
# A name with no address: the public-host check lets it pass (connecting would fail), and
# none of these tests connects to it.
NOWHERE = "mail.example.invalid"


def detail(source: Source) -> str:
    return f"/api/sources/{source.pk}"


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


def mailbox_of(owner, name: str, **settings) -> Source:
    return source_create(
        kind=SourceKind.IMAP,
        name=name,
        owner=owner,
        settings={"host": NOWHERE, "username": "scanner", **settings},
        secrets={"password": PASSWORD},
    )


@pytest.fixture
def world(owner, other_user, operator, watched):
    return {
        "owner": mailbox_of(owner, "owner's"),
        "other_user": mailbox_of(other_user, "other user's"),
        "operator": mailbox_of(operator, "operator's"),
        "system": source_create(
            kind=SourceKind.WATCH, name="everyone's", owner=None, settings={"path": str(watched)}
        ),
    }


def new_mailbox(**fields):
    return {
        "kind": "imap",
        "name": "My mail",
        "settings": {"host": NOWHERE, "username": "me@example.com", "folders": ["INBOX", "Scans"]},
        "secrets": {"password": PASSWORD},
        **fields,
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
def test_a_user_lists_their_own_sources_and_an_operator_the_system_wide_ones_too(
    as_persona, world, persona, sees
):
    answer = as_persona(persona).get(LIST)
    assert answer.status_code == 200
    assert {row["name"] for row in answer.json()} == sees


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST), ("post", LIST), ("get", "/api/sources/1"), ("patch", "/api/sources/1"),
     ("delete", "/api/sources/1"), ("post", "/api/sources/1/test"), ("post", "/api/sources/1/poll")],
)  # fmt: skip
def test_anonymous_callers_are_refused_with_401(as_persona, db, method, path):
    answer = getattr(as_persona("anonymous"), method)(path, {}, format="json")
    assert answer.status_code == 401
    assert answer.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize(
    ("persona", "whose"),
    [("owner", "other_user"), ("owner", "system"), ("other_user", "owner"), ("other_user", "system"),
     # Operator rights are about system-wide sources, not about other people's mailboxes.
     ("operator", "owner"), ("operator", "other_user")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("get", "", None), ("patch", "", {"name": "taken over"}), ("delete", "", None), ("post", "/test", None),
     ("post", "/poll", None)],
)  # fmt: skip
def test_a_source_someone_may_not_see_is_not_found_whatever_they_ask(
    as_persona, world, persona, whose, method, suffix, body
):
    source = world[whose]
    answer = getattr(as_persona(persona), method)(detail(source) + suffix, body, format="json")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "No such source."}
    stored = Source.objects.get(pk=source.pk)
    assert (stored.name, stored.last_error) == (source.name, "")


def test_an_operators_token_without_operator_scope_sees_only_their_own(world, operator):
    _, everyday = token_create(user=operator, name="phone")
    _, scoped = token_create(user=operator, name="admin script", operator_scope=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {everyday}")
    assert {row["name"] for row in client.get(LIST).json()} == {"operator's"}
    assert client.get(detail(world["system"])).status_code == 404
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scoped}")
    assert {row["name"] for row in client.get(LIST).json()} == {"operator's", "everyone's"}


# --- Making, changing, removing ---------------------------------------------------------------


def test_a_user_adds_a_mailbox_whose_password_is_stored_sealed_and_never_answered(as_persona, owner, caplog):
    client = as_persona("owner")
    with caplog.at_level(logging.DEBUG):
        made = client.post(LIST, new_mailbox(poll_interval_minutes=15), format="json")
        listed = client.get(LIST)
        shown = client.get(f"{LIST}/{made.json()['id']}")
        renamed = client.patch(f"{LIST}/{made.json()['id']}", {"name": "Scans by mail"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["kind"], body["name"], body["enabled"]) == ("imap", "My mail", True)
    assert (body["system_wide"], body["defined_by_environment"]) == (False, False)
    assert body["owner"] == owner.pk
    assert body["poll_interval_minutes"] == 15
    assert body["settings"]["folders"] == ["INBOX", "Scans"]
    assert body["settings"]["username"] == "me@example.com"
    assert body["secrets"] == ["password"]
    assert body["state"] == {
        "last_poll_at": None, "last_success_at": None, "last_error": "", "last_error_kind": "",
        "documents_today": 0, "next_poll_at": None,
    }  # fmt: skip
    for answer in (made, listed, shown, renamed):
        assert PASSWORD not in answer.content.decode()
    assert PASSWORD not in caplog.text
    stored = Source.objects.get(pk=body["id"])
    assert stored.owner == owner
    assert stored.secrets.reveal() == {"password": PASSWORD}


def test_only_an_operator_adds_a_system_wide_source(as_persona, db):
    refused = as_persona("owner").post(LIST, new_mailbox(system_wide=True), format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only operators can add system-wide sources."
    made = as_persona("operator").post(LIST, new_mailbox(system_wide=True), format="json")
    assert made.status_code == 201
    assert (made.json()["system_wide"], made.json()["owner"]) == (True, None)
    assert Source.objects.get(pk=made.json()["id"]).owner is None


def test_a_watched_folder_is_for_operators_only(as_persona, watched):
    folder = {"kind": "watch", "name": "Scanner", "settings": {"path": str(watched), "subfolder_tags": True}}
    own = as_persona("owner").post(LIST, folder, format="json")
    # Even an operator's own (not system-wide) source may not watch a folder: it is the server's.
    operators_own = as_persona("operator").post(LIST, folder, format="json")
    for refused in (own, operators_own):
        assert refused.status_code == 400
        assert refused.json()["detail"] == "Only operators can watch a folder on the server."
    assert not Source.objects.exists()
    made = as_persona("operator").post(LIST, {**folder, "system_wide": True}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["settings"]["path"] == str(watched)
    assert made.json()["settings"]["subfolder_tags"] is True
    assert made.json()["secrets"] == []


def test_a_change_keeps_what_is_not_given_and_the_password_stays_unless_replaced(as_persona, world):
    client = as_persona("owner")
    mine = world["owner"]
    renamed = client.patch(detail(mine), {"name": "Renamed", "enabled": False}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["enabled"]) == ("Renamed", False)
    assert renamed.json()["settings"]["host"] == NOWHERE
    moved = client.patch(
        detail(mine), {"settings": {"host": NOWHERE, "username": "other", "after": "nothing"}}, format="json"
    )
    assert moved.status_code == 200
    assert (moved.json()["settings"]["username"], moved.json()["settings"]["after"]) == ("other", "nothing")
    assert Source.objects.get(pk=mine.pk).secrets.reveal() == {"password": PASSWORD}
    replaced = client.patch(detail(mine), {"secrets": {"password": "a-new-one"}}, format="json")
    assert replaced.json()["secrets"] == ["password"]
    assert Source.objects.get(pk=mine.pk).secrets.reveal() == {"password": "a-new-one"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "watch"}, "kind: A source's kind cannot change; make a new source."),
        ({"system_wide": True}, "system_wide: Whose source it is cannot change"),
        ({"colour": "red"}, "Unknown field colour."),
        (
            {"settings": {"host": NOWHERE, "username": "u", "colour": "red"}},
            "A mailbox has no setting colour.",
        ),
        ({"settings": {"host": NOWHERE, "username": "u", "after": "move"}}, "needs the folder to move it to"),
        ({"secrets": {"password": ""}}, "A mailbox needs its password."),
        ({"poll_interval_minutes": 0}, "The poll interval is from 1 to 1440 minutes."),
        ({"poll_interval_minutes": 1441}, "The poll interval is from 1 to 1440 minutes."),
        ({"name": "   "}, "name"),
    ],
)
def test_a_change_that_cannot_be_made_is_refused_with_the_reason(as_persona, world, body, message):
    answer = as_persona("owner").patch(detail(world["owner"]), body, format="json")
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    stored = Source.objects.get(pk=world["owner"].pk)
    assert stored.secrets.reveal() == {"password": PASSWORD}
    assert (stored.name, stored.poll_interval_minutes) == ("owner's", 5)


def test_a_name_a_user_already_has_is_a_conflict(as_persona, world):
    answer = as_persona("owner").post(LIST, new_mailbox(name="owner's"), format="json")
    assert answer.status_code == 409
    assert "exists already" in answer.json()["detail"]


def test_removing_a_source_removes_its_ledger_but_keeps_its_documents(as_persona, world, document_storage):
    from documents.services import document_ingest

    mine = world["owner"]
    document = document_ingest(
        owner=mine.owner, chunks=[b"an attachment's text"], filename="a.txt", source="imap", enqueue=False
    ).document
    SourceItem.objects.create(
        source=mine, key="<m@x>|abc", ref="INBOX/1", state=ItemState.INGESTED, document=document,
        claimed_at=document.created_at,
    )  # fmt: skip
    answer = as_persona("owner").delete(detail(mine))
    assert answer.status_code == 204
    assert not Source.objects.filter(pk=mine.pk).exists()
    assert not SourceItem.objects.filter(source_id=mine.pk).exists()
    assert type(document).objects.filter(pk=document.pk).exists()


def test_an_operator_changes_and_removes_a_system_wide_source(as_persona, world):
    operator = as_persona("operator")
    system = world["system"]
    answer = operator.patch(
        detail(system), {"name": "Office scanner", "poll_interval_minutes": 2}, format="json"
    )
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["poll_interval_minutes"]) == ("Office scanner", 2)
    assert operator.delete(detail(system)).status_code == 204
    assert not Source.objects.filter(pk=system.pk).exists()


# --- Sources the environment defines -----------------------------------------------------------


@pytest.fixture
def environment_source(db, settings, watched: Path) -> Source:
    settings.WATCH_FOLDERS = [str(watched)]
    (source,) = system_sources_sync()
    return source


@pytest.mark.parametrize(
    "body",
    [{"settings": {"path": "/srv/elsewhere"}}, {"enabled": False}, {"poll_interval_minutes": 30},
     {"secrets": {"password": "x"}}],
)  # fmt: skip
def test_the_environments_source_keeps_its_settings_interval_and_switch(as_persona, environment_source, body):
    answer = as_persona("operator").patch(detail(environment_source), body, format="json")
    assert answer.status_code == 409
    assert "defined by the environment" in answer.json()["detail"]


def test_the_environments_source_is_renamed_but_never_removed(as_persona, environment_source):
    operator = as_persona("operator")
    renamed = operator.patch(detail(environment_source), {"name": "Scanner share"}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["defined_by_environment"]) == ("Scanner share", True)
    removed = operator.delete(detail(environment_source))
    assert removed.status_code == 409
    assert "remove it from the variables instead" in removed.json()["detail"]
    assert Source.objects.filter(pk=environment_source.pk).exists()


# --- Hostile requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (new_mailbox(kind="pop3"), '"pop3" is not a valid choice.'),
        (new_mailbox(kind=["imap"]), "kind"),
        (new_mailbox(name={"first": "x"}), "name: Not a valid string."),
        (new_mailbox(name=""), "name: This field may not be blank."),
        (new_mailbox(settings=["host"]), "settings: Expected a dictionary"),
        (new_mailbox(settings={"host": {"nested": "object"}}), "A setting is text, a whole number"),
        (new_mailbox(settings={"folders": ["INBOX", 7]}), "A setting is text, a whole number"),
        (new_mailbox(settings={"folders": ["x"] * 101}), "A list setting has at most 100 names"),
        (new_mailbox(settings={"host": "h" * 3000}), "at most 2048 characters"),
        (new_mailbox(settings={"Host Name": "h"}), "Names are lowercase letters"),
        (new_mailbox(settings={f"key_{n}": "x" for n in range(40)}), "At most 32 names."),
        (new_mailbox(settings={"host": NOWHERE, "username": "u", "port": 70000}), "The port is a number"),
        (new_mailbox(secrets={"token": "x"}), "A mailbox has no setting token."),
        (new_mailbox(secrets={"password": ["x"]}), "Not a valid string."),
        (new_mailbox(secrets={}), "A mailbox needs its password."),
        (new_mailbox(enabled="perhaps"), "enabled: Must be a valid boolean."),
        (new_mailbox(poll_interval_minutes="often"), "poll_interval_minutes: A valid integer is required."),
        (new_mailbox(poll_interval_minutes=2**60), "poll_interval_minutes"),
        (new_mailbox(owner=7), "Unknown field owner."),
        ([new_mailbox()], "Invalid data. Expected a dictionary, but got list."),
    ],
)  # fmt: skip
def test_a_malformed_source_is_refused_with_a_readable_reason(as_persona, db, body, message):
    answer = as_persona("owner").post(LIST, body, format="json")
    assert answer.status_code == 400, answer.content
    assert message in answer.json()["detail"]
    assert not Source.objects.exists()


def test_broken_and_oversized_json_are_refused(as_persona, db, settings):
    client = as_persona("owner")
    broken = client.post(LIST, data='{"kind": "imap", "name": ', content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error")
    huge = json.dumps(new_mailbox(secrets={"password": "x" * (settings.MAX_REQUEST_BODY_SIZE + 1)}))
    assert client.post(LIST, data=huge, content_type="application/json").status_code == 413
    assert not Source.objects.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "169.254.169.254", "localhost"])
def test_a_users_mailbox_may_not_be_on_the_servers_own_network_but_an_operators_may(as_persona, db, host):
    body = new_mailbox(settings={"host": host, "username": "u"})
    refused = as_persona("owner").post(LIST, body, format="json")
    assert refused.status_code == 400
    assert "private, loopback or reserved address" in refused.json()["detail"]
    assert not Source.objects.exists()
    allowed = as_persona("operator").post(LIST, {**body, "system_wide": True}, format="json")
    assert allowed.status_code == 201, allowed.content


def test_an_allowed_network_lets_a_users_mailbox_in_but_never_a_metadata_address(as_persona, db, settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("169.254.0.0/16"),
    )
    client = as_persona("owner")
    allowed = client.post(LIST, new_mailbox(settings={"host": "127.0.0.1", "username": "u"}), format="json")
    assert allowed.status_code == 201, allowed.content
    metadata = new_mailbox(name="metadata", settings={"host": "169.254.169.254", "username": "u"})
    assert client.post(LIST, metadata, format="json").status_code == 400


# --- The test button ----------------------------------------------------------------------------


@pytest.fixture
def users_mailbox(as_persona, settings, dovecot_server, mailbox) -> dict:
    """The owner's own mailbox on the Dovecot server, added through the API; its 127.0.0.1
    is let in by URL_FETCH_ALLOWED_NETWORKS, as an operator would for a local mail server."""
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    body = new_mailbox(
        settings={"host": dovecot_server.host, "port": dovecot_server.port, "username": mailbox.username},
        secrets={"password": mailbox.password},
    )
    made = as_persona("owner").post(LIST, body, format="json")
    assert made.status_code == 201, made.content
    return made.json()


def test_testing_a_working_mailbox_signs_in_and_says_it_works(as_persona, users_mailbox, mailbox):
    client = as_persona("owner")
    answer = client.post(f"{LIST}/{users_mailbox['id']}/test")
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True, "detail": "It works: the source could be reached and read.", "failure_kind": None,
    }  # fmt: skip
    assert mailbox.password not in answer.content.decode()


def test_testing_a_mailbox_with_a_wrong_password_says_why_and_of_what_kind_without_the_password(
    as_persona, users_mailbox, mailbox
):
    client = as_persona("owner")
    path = f"{LIST}/{users_mailbox['id']}"
    assert client.patch(path, {"secrets": {"password": "not-the-password"}}, format="json").status_code == 200
    answer = client.post(f"{path}/test")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["ok"], body["failure_kind"]) == (False, FailureKind.CONFIGURATION)
    assert "refused the sign-in" in body["detail"]
    assert "not-the-password" not in answer.content.decode()
    # The source shows it, as after a poll that failed; the right password clears it.
    state = client.get(path).json()["state"]
    assert (state["last_error"], state["last_error_kind"]) == (body["detail"], FailureKind.CONFIGURATION)
    client.patch(path, {"secrets": {"password": mailbox.password}}, format="json")
    assert client.post(f"{path}/test").json()["ok"] is True
    assert client.get(path).json()["state"]["last_error"] == ""


def test_testing_a_watched_folder_that_is_gone_says_so(as_persona, world, watched):
    operator = as_persona("operator")
    works = operator.post(f"{detail(world['system'])}/test").json()
    assert works["ok"] is True
    watched.rmdir()
    gone = operator.post(f"{detail(world['system'])}/test").json()
    assert (gone["ok"], gone["failure_kind"]) == (False, FailureKind.CONFIGURATION)
    assert "does not exist" in gone["detail"]


# --- Polling now --------------------------------------------------------------------------------


def test_a_poll_asked_for_is_queued_for_a_worker_once_the_request_commits(
    as_persona, world, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr(source_poll_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_persona("owner").post(f"{detail(world['owner'])}/poll")
    assert answer.status_code == 202
    assert answer.json() == {"source_id": world["owner"].pk, "status": "queued"}
    assert queued == [world["owner"].pk]


def test_a_disabled_source_is_not_polled(as_persona, world, monkeypatch, django_capture_on_commit_callbacks):
    queued: list[int] = []
    monkeypatch.setattr(source_poll_task, "delay", queued.append)
    client = as_persona("owner")
    client.patch(detail(world["owner"]), {"enabled": False}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"{detail(world['owner'])}/poll")
    assert answer.status_code == 409
    assert "is disabled" in answer.json()["detail"]
    assert queued == []


# --- What a source has done, and the query budget ----------------------------------------------


def test_the_state_counts_the_documents_made_today(as_persona, world, document_storage):
    mine = world["owner"]
    now = timezone.now()
    for number, state in enumerate([ItemState.INGESTED, ItemState.INGESTED, ItemState.SKIPPED]):
        SourceItem.objects.create(
            source=mine, key=f"k{number}", ref=f"INBOX/{number}", state=state, claimed_at=now, finished_at=now
        )
    SourceItem.objects.create(
        source=mine, key="yesterday", ref="INBOX/9", state=ItemState.INGESTED,
        claimed_at=now - timedelta(days=2), finished_at=now - timedelta(days=2),
    )  # fmt: skip
    client = as_persona("owner")
    assert client.get(detail(mine)).json()["state"]["documents_today"] == 2
    assert client.get(LIST).json()[0]["state"]["documents_today"] == 2


def test_the_list_costs_the_same_queries_for_one_source_or_many(as_persona, owner, django_assert_num_queries):
    client = as_persona("owner")
    mailbox_of(owner, "first")
    # The sources and today's counts; the user comes with force_authenticate.
    with django_assert_num_queries(2):
        assert len(client.get(LIST).json()) == 1
    for number in range(5):
        mailbox_of(owner, f"more {number}")
    with django_assert_num_queries(2):
        assert len(client.get(LIST).json()) == 6
