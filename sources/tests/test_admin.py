"""Sources, their ledger and cursors in the operators' admin: secrets by name only, the
environment's sources keep what their variables say, the ledger changes for nobody."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from documents.tests.factories import DocumentFactory
from sources.models import ItemState, Source, SourceCursor, SourceItem
from sources.services import source_create, system_sources_sync

PASSWORD = "a-mailbox-password-nobody-may-read"


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def source(owner, settings) -> Source:
    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    return source_create(
        kind="imap",
        name="Scanner mail",
        owner=owner,
        settings={"host": "127.0.0.1", "username": "scans@example.com"},
        secrets={"password": PASSWORD},
    )


def test_an_operator_sees_a_source_and_the_names_of_its_secrets_only(operator_client, source):
    listing = operator_client.get(reverse("admin:sources_source_changelist"))
    page = operator_client.get(reverse("admin:sources_source_change", args=[source.pk]))
    assert listing.status_code == page.status_code == 200
    html = page.content.decode()
    assert "scans@example.com" in html  # settings are not secret
    assert "password" in html
    assert PASSWORD not in html
    assert str(Source.objects.get(pk=source.pk).secrets.token) not in html
    assert reverse("admin:sources_source_add") not in listing.content.decode()  # added on /sources


def test_a_user_without_staff_rights_does_not_reach_the_admin(client, owner, source):
    client.force_login(owner)
    answer = client.get(reverse("admin:sources_source_change", args=[source.pk]))
    assert answer.status_code == 302


def test_an_operator_renames_and_pauses_a_source_and_its_password_stays(operator_client, source):
    url = reverse("admin:sources_source_change", args=[source.pk])
    answer = operator_client.post(url, {"name": "Old scanner", "poll_interval_minutes": "15"})
    assert answer.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.enabled, source.poll_interval_minutes) == ("Old scanner", False, 15)
    assert source.secrets.reveal() == {"password": PASSWORD}
    refused = operator_client.post(
        url, {"name": "Old scanner", "enabled": "on", "poll_interval_minutes": "0"}
    )
    assert refused.status_code == 200
    assert "The poll interval is from 1 to 1440 minutes." in refused.content.decode()


def test_the_environments_source_gets_a_document_owner_and_keeps_its_variables(
    operator_client, owner, settings, watched
):
    settings.WATCH_FOLDERS = [str(watched)]
    settings.WATCH_FOLDER_POLL_INTERVAL = 3
    (source,) = system_sources_sync()
    url = reverse("admin:sources_source_change", args=[source.pk])
    answer = operator_client.post(
        url, {"name": "Scanner share", "poll_interval_minutes": "60", "document_owner": str(owner.pk)}
    )
    assert answer.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.document_owner, source.enabled, source.poll_interval_minutes) == (
        "Scanner share", owner, True, 3,
    )  # fmt: skip
    listing = operator_client.get(reverse("admin:sources_source_changelist")).content.decode()
    assert (
        reverse("admin:sources_source_delete", args=[source.pk])
        not in operator_client.get(url).content.decode()
    )
    assert "Scanner share" in listing


def test_operators_filter_the_ledger_by_state_and_source_and_change_nothing(operator_client, source, owner):
    other = source_create(
        kind="imap",
        name="Other mail",
        owner=owner,
        settings={"host": "127.0.0.1", "username": "other@example.com"},
        secrets={"password": PASSWORD},
    )
    now = timezone.now()
    failed = SourceItem.objects.create(
        source=source, key="a", ref="imap://scans/INBOX;UID=1;PART=2", state=ItemState.FAILED,
        detail="The file type is not supported.", claimed_at=now, finished_at=now,
    )  # fmt: skip
    SourceItem.objects.create(
        source=other, key="b", ref="imap://other/INBOX;UID=9;PART=1", state=ItemState.INGESTED,
        document=DocumentFactory.create(owner=owner), claimed_at=now, finished_at=now,
    )  # fmt: skip
    listing = reverse("admin:sources_sourceitem_changelist")
    everything = operator_client.get(listing).content.decode()
    assert "UID=1;PART=2" in everything
    assert "UID=9;PART=1" in everything
    for query in ("state=failed", f"source__id__exact={source.pk}"):
        filtered = operator_client.get(f"{listing}?{query}").content.decode()
        assert "UID=1;PART=2" in filtered, query
        assert "UID=9;PART=1" not in filtered, query
    change = reverse("admin:sources_sourceitem_change", args=[failed.pk])
    assert operator_client.post(change, {"state": "ingested"}).status_code == 403
    failed.refresh_from_db()
    assert failed.state == ItemState.FAILED


def test_cursors_are_shown_and_never_changed(operator_client, source):
    cursor = SourceCursor.objects.create(source=source, folder="INBOX", validity=7, position=42)
    assert operator_client.get(reverse("admin:sources_sourcecursor_changelist")).status_code == 200
    change = reverse("admin:sources_sourcecursor_change", args=[cursor.pk])
    assert operator_client.post(change, {"position": "0"}).status_code == 403
    cursor.refresh_from_db()
    assert cursor.position == 42
