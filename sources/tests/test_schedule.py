"""When sources are polled, and the ones the environment defines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sources.models import Source, SourceKind
from sources.polling import sources_due
from sources.services import system_sources_sync

pytestmark = pytest.mark.django_db


def test_each_turn_is_handed_out_once_and_an_edited_interval_counts_from_the_next(make_watch_source, clock):
    source = make_watch_source()
    now = timezone.now()

    assert sources_due(now=now) == [source.pk]
    assert sources_due(now=now) == []  # a second beat in the same minute finds nothing
    assert sources_due(now=now + timedelta(minutes=4)) == []
    assert sources_due(now=now + timedelta(minutes=5)) == [source.pk]  # the default interval

    Source.objects.filter(pk=source.pk).update(poll_interval_minutes=1)
    assert sources_due(now=now + timedelta(minutes=10)) == [source.pk]
    assert sources_due(now=now + timedelta(minutes=11)) == [source.pk]


def test_a_disabled_source_is_never_due(make_watch_source):
    source = make_watch_source()
    Source.objects.filter(pk=source.pk).update(enabled=False)
    assert sources_due() == []


def test_watch_folders_from_the_environment_become_system_sources_and_go_when_removed(
    settings, watched, tmp_path
):
    second = tmp_path / "inbox"
    second.mkdir()
    settings.WATCH_FOLDERS = [str(watched), str(second)]
    settings.WATCH_FOLDER_POLL_INTERVAL = 2
    settings.WATCH_FOLDER_DELETE_AFTER_PROCESS = True

    enabled = system_sources_sync()

    assert sorted(source.settings["path"] for source in enabled) == sorted([str(watched), str(second)])
    assert {(s.kind, s.owner, s.poll_interval_minutes) for s in enabled} == {(SourceKind.WATCH, None, 2)}
    assert all(source.settings["delete_after"] for source in enabled)
    assert system_sources_sync() == enabled  # nothing differs, nothing written

    settings.WATCH_FOLDERS = [str(second)]
    system_sources_sync()
    gone = Source.objects.get(system_key=f"env:watch:{watched}")
    assert not gone.enabled


def test_a_watched_folder_inside_workdir_is_refused_and_the_others_still_come(
    settings, watched, document_storage
):
    settings.WATCH_FOLDERS = [str(document_storage / "originals"), str(watched)]
    enabled = system_sources_sync()
    assert [source.settings["path"] for source in enabled] == [str(watched)]
