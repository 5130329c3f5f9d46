"""sources.services: changing a source (its schedule, its write-only secrets) and removing it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from docuelevate.errors import Conflict, InvalidInput
from documents.models import Document
from documents.services import document_ingest
from sources.models import ItemState, Source, SourceCursor, SourceItem, SourceKind
from sources.services import source_create, source_delete, source_update, system_sources_sync

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def mailbox_source(owner) -> Source:
    return source_create(
        kind=SourceKind.IMAP,
        name="Mine",
        owner=owner,
        # A name with no address passes the public-host check; nothing here connects.
        settings={"host": "mail.example.invalid", "username": "scanner"},
        secrets={"password": PASSWORD},
        poll_interval_minutes=60,
    )


def test_a_new_interval_makes_the_source_due_at_once_and_then_every_new_interval(mailbox_source):
    later = timezone.now() + timedelta(minutes=55)
    Source.objects.filter(pk=mailbox_source.pk).update(next_poll_at=later)
    mailbox_source.refresh_from_db()

    source_update(source=mailbox_source, poll_interval_minutes=5)

    stored = Source.objects.get(pk=mailbox_source.pk)
    assert stored.poll_interval_minutes == 5
    assert stored.next_poll_at is None  # beat's next minute hands it to a worker


def test_a_change_that_leaves_the_interval_alone_keeps_the_schedule(mailbox_source):
    later = timezone.now() + timedelta(minutes=55)
    Source.objects.filter(pk=mailbox_source.pk).update(next_poll_at=later)
    mailbox_source.refresh_from_db()

    source_update(source=mailbox_source, name="Renamed", enabled=False)

    stored = Source.objects.get(pk=mailbox_source.pk)
    assert (stored.name, stored.enabled, stored.next_poll_at) == ("Renamed", False, later)


@pytest.mark.parametrize("minutes", [0, -5, 1441])
def test_an_interval_outside_a_minute_and_a_day_is_refused_and_nothing_changes(mailbox_source, minutes):
    with pytest.raises(InvalidInput, match="from 1 to 1440 minutes"):
        source_update(source=mailbox_source, name="Renamed", poll_interval_minutes=minutes)
    stored = Source.objects.get(pk=mailbox_source.pk)
    assert (stored.name, stored.poll_interval_minutes) == ("Mine", 60)


def test_new_settings_keep_the_stored_password_when_none_is_given(mailbox_source):
    source_update(source=mailbox_source, settings={"host": "other.example.invalid", "username": "scanner"})
    stored = Source.objects.get(pk=mailbox_source.pk)
    assert stored.settings["host"] == "other.example.invalid"
    assert stored.secrets.reveal() == {"password": PASSWORD}


def test_a_given_secret_replaces_the_stored_one_and_the_settings_stay(mailbox_source):
    source_update(source=mailbox_source, secrets={"password": "a-new-one"})
    stored = Source.objects.get(pk=mailbox_source.pk)
    assert stored.secrets.reveal() == {"password": "a-new-one"}
    assert stored.settings["host"] == "mail.example.invalid"


def test_removing_the_only_password_is_refused_because_a_mailbox_needs_one(mailbox_source):
    with pytest.raises(InvalidInput, match="needs its password"):
        source_update(source=mailbox_source, secrets={"password": ""})
    assert Source.objects.get(pk=mailbox_source.pk).secrets.reveal() == {"password": PASSWORD}


def test_a_secret_the_kind_does_not_know_is_refused_not_stored(mailbox_source):
    with pytest.raises(InvalidInput, match="no setting token"):
        source_update(source=mailbox_source, secrets={"token": "x"})
    assert Source.objects.get(pk=mailbox_source.pk).secrets.reveal() == {"password": PASSWORD}


def test_deleting_a_source_removes_its_cursors_and_ledger_and_keeps_its_documents(
    mailbox_source, owner, document_storage
):
    document = document_ingest(
        owner=owner, chunks=[b"an attachment's text"], filename="a.txt", source="imap", enqueue=False
    ).document
    SourceCursor.objects.create(source=mailbox_source, folder="INBOX", validity=1, position=42)
    SourceItem.objects.create(
        source=mailbox_source, key="<m@x>|abc", ref="INBOX/42", state=ItemState.INGESTED,
        document=document, claimed_at=timezone.now(),
    )  # fmt: skip

    source_delete(source=mailbox_source)

    assert not Source.objects.filter(pk=mailbox_source.pk).exists()
    assert not SourceCursor.objects.filter(source_id=mailbox_source.pk).exists()
    assert not SourceItem.objects.filter(source_id=mailbox_source.pk).exists()
    assert Document.objects.get(pk=document.pk).source == "imap"


def test_a_source_the_environment_defines_is_not_deleted_nor_its_settings_changed(settings, tmp_path, db):
    folder = tmp_path / "scans"
    folder.mkdir()
    settings.WATCH_FOLDERS = [str(folder)]
    (source,) = system_sources_sync()

    with pytest.raises(Conflict, match="remove it from the variables instead"):
        source_delete(source=source)
    with pytest.raises(Conflict, match="defined by the environment"):
        source_update(source=source, poll_interval_minutes=1)
    renamed = source_update(source=source, name="Scanner share")

    assert Source.objects.get(pk=source.pk).name == renamed.name == "Scanner share"
