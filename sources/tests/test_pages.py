"""The /sources pages, and where a document came from on its page: who sees and changes what,
passwords that are never shown back, and the buttons that poll and test (the test against a
real Dovecot)."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from html import escape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from documents.tests.factories import DocumentFactory
from sources.kinds import KINDS, kind_class
from sources.models import ItemState, Source, SourceItem
from sources.services import source_create, system_sources_sync

PASSWORD = "a-mailbox-password-nobody-may-read"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """Users' mail servers may be on the loopback network here, as the operator of a test
    machine would allow with URL_FETCH_ALLOWED_NETWORKS (Dovecot listens on 127.0.0.1)."""
    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def browser_as(request):
    """A signed-in browser session of the named persona (none for ``anonymous``)."""

    def sign_in(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(request.getfixturevalue(persona))
        return client

    return sign_in


def imap_source(owner=None, name="Scanner mail", **settings) -> Source:
    return source_create(
        kind="imap",
        name=name,
        owner=owner,
        settings={"host": "127.0.0.1", "username": "scans@example.com", **settings},
        secrets={"password": PASSWORD},
    )


@pytest.fixture
def queued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("sources.tasks.source_poll_task.delay", sent.append)
    return sent


# --- The list -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "shown", "hidden"),
    [
        ("owner", ["Owners mail"], ["Other users mail", "Company mail", "System-wide sources"]),
        ("other_user", ["Other users mail"], ["Owners mail", "Company mail"]),
        ("operator", ["Company mail", "System-wide sources"], ["Owners mail", "Other users mail"]),
    ],
)
def test_the_list_shows_a_persona_what_they_manage(browser_as, owner, other_user, persona, shown, hidden):
    imap_source(owner, "Owners mail")
    imap_source(other_user, "Other users mail")
    imap_source(None, "Company mail")
    page = browser_as(persona).get(reverse("sources"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/sources" aria-current="page"' in html  # in the navigation
    for text in shown:
        assert text in html
    for text in hidden:
        assert text not in html
    assert PASSWORD not in html
    # Works under the site's CSP: no inline script or event handler (confirmations are app.js's).
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize(
    ("name", "kwargs", "method"),
    [
        ("sources", {}, "get"),
        ("source-new", {}, "get"),
        ("source-edit", {"source_id": 1}, "get"),
        ("source-test", {"source_id": 1}, "post"),
        ("source-poll", {"source_id": 1}, "post"),
        ("source-remove", {"source_id": 1}, "post"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(browser_as, db, name, kwargs, method):
    answer = getattr(browser_as("anonymous"), method)(reverse(name, kwargs=kwargs))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("account_login"))


def test_the_list_shows_how_polls_go_and_costs_the_same_queries_for_one_source_or_many(
    browser_as, owner, django_assert_max_num_queries
):
    client = browser_as("owner")
    failing = imap_source(owner, "Broken mail")
    Source.objects.filter(pk=failing.pk).update(
        last_poll_at=timezone.now(),
        last_error="The mail server refused the sign-in of scans@example.com: check the password.",
        last_error_kind="configuration",
    )
    working = imap_source(owner, "Working mail")
    Source.objects.filter(pk=working.pk).update(last_poll_at=timezone.now(), last_success_at=timezone.now())
    now = timezone.now()
    for number, finished in enumerate([now, now, now - timedelta(days=2)]):
        SourceItem.objects.create(
            source=working, key=f"mail-{number}", ref=f"imap://x/{number}", state=ItemState.INGESTED,
            claimed_at=finished, finished_at=finished,
        )  # fmt: skip
    with django_assert_max_num_queries(6) as few:
        html = client.get(reverse("sources")).content.decode()
    assert 'data-status="failing">Failing<' in html
    assert "refused the sign-in of scans@example.com: check the password. " in html
    assert "(Configuration)" in html
    assert 'data-status="ok">Working<' in html
    assert "2 documents" in html  # today's; the one of two days ago is not counted
    assert "Next: within a minute" in html
    for number in range(5):
        imap_source(owner, f"More mail {number}")
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("sources"))


# --- Adding -------------------------------------------------------------------------------------


def form(**fields):
    return {
        "name": "My mail",
        "enabled": "on",
        "poll_interval_minutes": "10",
        "setting_host": "127.0.0.1",
        "setting_port": "",
        "setting_ssl": "on",
        "setting_username": "me@example.com",
        "setting_folders": "INBOX, Scans",
        "setting_since": "2026-01-31",
        "setting_sender_filter": "@scanner.example.com",
        "setting_subject_filter": "",
        "setting_tags": "mail, invoices",
        "setting_attachment_filter": "documents_only",
        "setting_after": "move",
        "setting_move_to": "Archive",
        "secret_password": PASSWORD,
        **fields,
    }


def test_a_user_adds_a_mailbox_through_the_form(browser_as, owner):
    client = browser_as("owner")
    empty = client.get(reverse("source-new") + "?kind=imap").content.decode()
    for label in ("Host", "Port", "Folders", "Password", "After", "Move to"):
        assert f">{label}</label>" in empty
    assert 'type="password" name="secret_password"' in empty
    assert "system_wide" not in empty  # an operator's choice only
    assert "document_owner" not in empty
    answer = client.post(reverse("source-new") + "?kind=imap", form())
    assert answer.status_code == 302
    source = Source.objects.get()
    assert (source.owner, source.name, source.kind, source.poll_interval_minutes) == (
        owner, "My mail", "imap", 10,
    )  # fmt: skip
    assert source.settings["folders"] == ["INBOX", "Scans"]
    assert source.settings["tags"] == ["mail", "invoices"]
    assert (source.settings["port"], source.settings["after"], source.settings["move_to"]) == (
        993,
        "move",
        "Archive",
    )
    assert source.settings["include_mail"] is False  # the box was not ticked
    assert source.secrets.reveal() == {"password": PASSWORD}
    assert "Saved My mail" in client.get(reverse("sources")).content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_a_kind_says_what_to_enter_with_an_example(browser_as, db, kind):
    page = browser_as("operator").get(reverse("source-new") + f"?kind={kind}").content.decode()
    cls = kind_class(kind)
    for name in (*cls.setting_names, *cls.secret_names):
        help_text = cls.help_texts.get(name, "")
        assert help_text, f"{kind}'s {name} has no help text"
        # A box to tick or a list to choose from shows its answers; any other field an example.
        chosen = name in cls.flag_settings or name in cls.choice_settings
        assert chosen or "e.g." in help_text, f"{kind}'s {name} gives no example"
        # Announced with its field: the span has the id the field's aria-describedby names.
        helptext_id = (
            f"id_setting_{name}_helptext" if name in cls.setting_names else f"id_secret_{name}_helptext"
        )
        assert f'<span id="{helptext_id}" class="text-sm muted">{escape(help_text)}</span>' in page
    assert escape("in minutes from 1 to 1440, e.g. 5.") in page


def test_a_refused_mailbox_says_why_and_never_shows_the_password_typed(browser_as, owner):
    answer = browser_as("owner").post(reverse("source-new") + "?kind=imap", form(setting_host="10.0.0.5"))
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "private, loopback or reserved address" in html
    assert PASSWORD not in html
    assert 'value="me@example.com"' in html  # what is not secret stays filled in
    assert not Source.objects.exists()


def test_a_user_cannot_add_a_watched_folder(browser_as, owner, tmp_path):
    client = browser_as("owner")
    listing = client.get(reverse("sources")).content.decode()
    assert '<option value="imap">' in listing
    assert '<option value="watch">' not in listing
    refused = client.get(reverse("source-new") + "?kind=watch", follow=True)
    assert refused.redirect_chain[-1][0] == reverse("sources")
    assert "Only operators can add a watched folder." in refused.content.decode()
    client.post(
        reverse("source-new") + "?kind=watch",
        {"name": "My disk", "enabled": "on", "poll_interval_minutes": "1", "setting_path": str(tmp_path)},
    )
    assert not Source.objects.exists()


def test_an_operator_adds_a_watched_folder_whose_documents_go_to_a_chosen_user(
    browser_as, operator, owner, watched
):
    page = browser_as("operator").get(reverse("source-new") + "?kind=watch").content.decode()
    assert 'name="system_wide"' not in page  # a folder on the server is always system-wide
    assert 'name="document_owner"' in page
    answer = browser_as("operator").post(
        reverse("source-new") + "?kind=watch",
        {
            "name": "Office scanner",
            "enabled": "on",
            "poll_interval_minutes": "1",
            "document_owner": str(owner.pk),
            "setting_path": str(watched),
            "setting_settle_seconds": "30",
            "setting_subfolder_tags": "on",
            "setting_tags": "scanner",
        },
    )
    assert answer.status_code == 302
    source = Source.objects.get()
    assert (source.owner, source.document_owner, source.kind) == (None, owner, "watch")
    assert source.settings == {
        "path": str(watched), "settle_seconds": 30, "delete_after": False, "subfolder_tags": True,
        "tags": ["scanner"],
    }  # fmt: skip
    listing = browser_as("operator").get(reverse("sources")).content.decode()
    assert "Documents belong to owner" in listing


def test_an_operator_adds_a_system_wide_mailbox_and_a_users_box_is_ignored(browser_as, operator, owner):
    browser_as("operator").post(reverse("source-new") + "?kind=imap", form(system_wide="on"))
    assert Source.objects.get().owner is None
    Source.objects.all().delete()
    browser_as("owner").post(reverse("source-new") + "?kind=imap", form(system_wide="on"))
    assert Source.objects.get().owner == owner  # the box is not on a user's form


# --- Changing -----------------------------------------------------------------------------------


def test_editing_never_shows_the_password_and_an_empty_field_keeps_it(browser_as, owner):
    source = imap_source(owner, "Mine")
    client = browser_as("owner")
    page = client.get(reverse("source-edit", args=[source.pk])).content.decode()
    assert PASSWORD not in page
    assert escape("Stored; leave empty to keep it.") in page
    assert 'value="scans@example.com"' in page  # settings are not secret
    answer = client.post(reverse("source-edit", args=[source.pk]), form(name="Renamed", secret_password=""))
    assert answer.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.settings["username"]) == ("Renamed", "me@example.com")
    assert source.secrets.reveal() == {"password": PASSWORD}
    client.post(reverse("source-edit", args=[source.pk]), form(secret_password="a-new-password"))
    source.refresh_from_db()
    assert source.secrets.reveal() == {"password": "a-new-password"}


@pytest.mark.parametrize("persona", ["other_user", "operator"])
@pytest.mark.parametrize(
    ("name", "method"),
    [("source-edit", "get"), ("source-edit", "post"), ("source-test", "post"), ("source-poll", "post"),
     ("source-remove", "post")],
)  # fmt: skip
def test_someone_elses_source_is_not_found_on_any_page(browser_as, owner, persona, name, method, queued):
    source = imap_source(owner, "Mine")
    answer = getattr(browser_as(persona), method)(reverse(name, args=[source.pk]), form(name="Taken"))
    assert answer.status_code == 404
    source.refresh_from_db()
    assert source.name == "Mine"
    assert queued == []


def test_the_environments_source_offers_only_its_name_and_owner_and_stays(
    browser_as, owner, settings, watched
):
    settings.WATCH_FOLDERS = [str(watched)]
    (source,) = system_sources_sync()
    client = browser_as("operator")
    page = client.get(reverse("source-edit", args=[source.pk])).content.decode()
    assert "The environment defines this source" in page
    assert 'name="setting_path"' not in page
    assert 'name="enabled"' not in page
    listing = client.get(reverse("sources")).content.decode()
    assert "From the environment" in listing
    assert reverse("source-remove", args=[source.pk]) not in listing
    answer = client.post(
        reverse("source-edit", args=[source.pk]), {"name": "Scanner share", "document_owner": str(owner.pk)}
    )
    assert answer.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.document_owner, source.settings["path"]) == (
        "Scanner share",
        owner,
        str(watched),
    )
    refused = client.post(reverse("source-remove", args=[source.pk]), follow=True)
    assert "remove it from the variables instead" in refused.content.decode()
    assert Source.objects.filter(pk=source.pk).exists()


# --- Polling, testing and removing --------------------------------------------------------------


def test_poll_now_queues_a_poll_once_the_request_commits(
    browser_as, owner, queued, django_capture_on_commit_callbacks
):
    source = imap_source(owner, "Mine")
    with django_capture_on_commit_callbacks(execute=True):
        answer = browser_as("owner").post(reverse("source-poll", args=[source.pk]), follow=True)
    assert queued == [source.pk]
    assert "Mine is being polled now" in answer.content.decode()


def test_poll_now_refuses_a_disabled_source_and_says_so(
    browser_as, owner, queued, django_capture_on_commit_callbacks
):
    source = imap_source(owner, "Paused")
    Source.objects.filter(pk=source.pk).update(enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        answer = browser_as("owner").post(reverse("source-poll", args=[source.pk]), follow=True)
    assert queued == []
    assert "Paused is disabled; enable it first." in answer.content.decode()


def test_test_connection_shows_why_a_wrong_password_fails_and_that_the_right_one_works(
    browser_as, owner, dovecot_server, mailbox
):
    source = source_create(
        kind="imap",
        name="Dovecot",
        owner=owner,
        settings={"host": dovecot_server.host, "port": dovecot_server.port, "username": mailbox.username},
        secrets={"password": "not-the-password"},
    )
    client = browser_as("owner")
    failed = client.post(reverse("source-test", args=[source.pk]), follow=True).content.decode()
    assert f"refused the sign-in of {mailbox.username}: check the password. (Configuration)" in failed
    assert "not-the-password" not in failed
    source.refresh_from_db()
    assert source.last_error_kind == "configuration"
    client.post(reverse("source-edit", args=[source.pk]), {
        "name": "Dovecot", "enabled": "on", "poll_interval_minutes": "5", "setting_host": dovecot_server.host,
        "setting_port": str(dovecot_server.port), "setting_ssl": "on", "setting_username": mailbox.username,
        "setting_folders": "INBOX", "setting_attachment_filter": "documents_only", "setting_after": "seen",
        "secret_password": mailbox.password,
    })  # fmt: skip
    worked = client.post(reverse("source-test", args=[source.pk]), follow=True).content.decode()
    assert "Dovecot: the connection works." in worked
    assert mailbox.password not in worked
    source.refresh_from_db()
    assert source.last_error == ""


def test_removing_a_source_keeps_its_documents(browser_as, owner):
    source = imap_source(owner, "Old mail")
    document = DocumentFactory.create(owner=owner, source="imap", source_ref="imap://scans@example.com/INBOX")
    answer = browser_as("owner").post(reverse("source-remove", args=[source.pk]), follow=True)
    assert "Removed Old mail. The documents it made stay." in answer.content.decode()
    assert not Source.objects.exists()
    document.refresh_from_db()


# --- Where a document came from -----------------------------------------------------------------


def test_the_document_page_says_where_the_document_came_from(browser_as, owner):
    ref = "imap://scans@example.com@127.0.0.1/INBOX;UIDVALIDITY=7;UID=42;PART=2"
    document = DocumentFactory.create(owner=owner, source="imap", source_ref=ref)
    page = browser_as("owner").get(reverse("file-detail", args=[document.pk])).content.decode()
    assert f"Came in by imap from {escape(ref)}" in page
