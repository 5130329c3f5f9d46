"""The Meilisearch backend at our client boundary, against recorded exchanges of its HTTP API.

No Meilisearch server runs on these machines; the recordings in ``recordings/`` follow
Meilisearch's API reference (v1.x) and are replayed by a real HTTP server on 127.0.0.1,
so the official client really sends and parses every request. Each test checks what we
send (paths, settings, filters, documents) and what we make of the answers.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from accounts.access import Viewer
from accounts.tests.factories import UserFactory
from documents.tests.http_replay import assert_matches_recording, running_replay_server
from documents.visibility import Visibility
from search import selectors, services
from search.backends import meilisearch as backend
from search.backends import search_backend
from search.backends.base import SearchFilters

pytestmark = pytest.mark.django_db

RECORDINGS = Path(__file__).resolve().parent / "recordings"
API_KEY = "test-master-key-0123456789abcdef"


@pytest.fixture
def meili(settings):
    with running_replay_server() as replay:
        settings.MEILISEARCH_URL = replay.url
        settings.MEILISEARCH_API_KEY = API_KEY
        settings.MEILISEARCH_INDEX_NAME = "documents"
        yield replay


@pytest.fixture
def reader():
    """A user with the id the search recording filters on."""
    return UserFactory.create(pk=7, username="reader")


def play(replay, name: str) -> list[dict]:
    return replay.play(name, RECORDINGS)["exchanges"]


def sent_as_recorded(replay, exchanges: list[dict]) -> None:
    assert len(replay.received) == len(exchanges)
    for received, exchange in zip(replay.received, exchanges, strict=True):
        assert_matches_recording(received, exchange["request"])


def test_setup_creates_the_index_and_applies_its_settings_even_when_it_exists(meili):
    exchanges = play(meili, "meilisearch_setup_existing_index")
    search_backend().setup()
    sent_as_recorded(meili, exchanges)
    assert meili.received[2].json() == backend.INDEX_SETTINGS


def test_a_finished_document_is_sent_with_every_searchable_and_filterable_field(meili, make_document, owner):
    exchanges = play(meili, "meilisearch_add_document")
    document = make_document(
        index=False,
        original_filename="linn.pdf",
        document_title="The LinnSequencer",
        ocr_text="32 Track MIDI Sequence Recorder",
        document_type="Manual",
        correspondent="Linn Electronics",
        language="en",
        tags=("music", "manual"),
        document_date=datetime.date(1985, 6, 1),
    )
    assert services.index_document(document_id=document.pk) is True
    sent_as_recorded(meili, exchanges)
    [sent] = meili.received[0].json()
    assert sent == {
        "file_id": document.pk,
        "owner_id": owner.pk,
        "title": "The LinnSequencer",
        "filename": "linn.pdf",
        "ocr_text": "32 Track MIDI Sequence Recorder",
        "tags": ["manual", "music"],
        "correspondent": "Linn Electronics",
        "sender": "",
        "recipient": "",
        "document_type": "Manual",
        "language": "en",
        "mime_type": "application/pdf",
        "date": 486432000,  # 1985-06-01T00:00:00Z
        "year": 1985,
        "size": 1000,
        "confidence": None,
        "created_at": int(document.created_at.timestamp()),
        "fingerprint": document.updated_at.isoformat(),
    }
    backend_fields = set(backend.INDEX_SETTINGS["searchableAttributes"]) | set(
        backend.INDEX_SETTINGS["filterableAttributes"]
    )
    assert backend_fields <= set(sent)


def test_removal_waits_for_meilisearch_to_finish_the_deletion(meili):
    exchanges = play(meili, "meilisearch_remove_document")
    services.remove_document(document_id=101)
    sent_as_recorded(meili, exchanges)  # both polls of the task were made


def test_search_filters_by_owner_inside_meilisearch_and_marks_matches_safely(
    meili, make_document, reader, settings
):
    settings.MULTI_USER_ENABLED = True
    make_document(pk=101, owner=reader, index=False, original_filename="linn.pdf", tags=("manual", "music"))
    make_document(pk=102, owner=reader, index=False, original_filename="service.pdf", tags=("manual",))
    exchanges = play(meili, "meilisearch_search_owner_filtered")

    found = selectors.search(
        viewer=Viewer(reader), query="LinnSequencer ", filters=SearchFilters(tags=("manual",))
    )

    sent_as_recorded(meili, exchanges)
    assert [result.document.pk for result in found.results] == [101, 102]
    assert (found.total, found.pages) == (2, 1)
    first = found.results[0].formatted
    assert first["document_title"] == "The <mark>LinnSequencer</mark> &lt;Rev. 2&gt;"
    assert first["ocr_text"].count("<mark>LinnSequencer</mark>") == 2
    assert found.facets["tags"] == [("manual", 2), ("music", 1)]
    assert found.facets["year"] == [("1985", 1), ("1986", 1)]


def test_a_hit_the_user_may_not_see_is_dropped_even_if_the_index_returns_it(
    meili, make_document, reader, other_user, settings
):
    settings.MULTI_USER_ENABLED = True
    make_document(pk=101, owner=reader, index=False, tags=("manual",))
    make_document(pk=102, owner=other_user, index=False, tags=("manual",))  # the index is wrong about 102
    play(meili, "meilisearch_search_owner_filtered")
    found = selectors.search(
        viewer=Viewer(reader), query="LinnSequencer ", filters=SearchFilters(tags=("manual",))
    )
    assert [result.document.pk for result in found.results] == [101]


def test_reconcile_pages_through_the_index_and_repairs_missing_stale_and_orphaned(
    meili, make_document, monkeypatch
):
    monkeypatch.setattr(backend, "DOCUMENTS_PAGE", 2)
    current = make_document(pk=101, index=False)
    stale = make_document(pk=102, index=False)
    missing = make_document(pk=103, index=False)
    exchanges = play(meili, "meilisearch_reconcile")
    # The recording holds 101 at a fingerprint we give it now: current.
    exchanges[0]["response"]["json"]["results"][0]["fingerprint"] = current.updated_at.isoformat()

    report = services.reconcile(repair=True)

    assert (report.missing, report.stale, report.orphaned) == ([missing.pk], [stale.pk], [999])
    sent_as_recorded(meili, exchanges)
    assert sorted(document["file_id"] for document in meili.received[2].json()) == [102, 103]


def test_an_unreachable_meilisearch_is_an_error_for_the_task_to_retry(settings, make_document):
    settings.MEILISEARCH_URL = "http://127.0.0.1:9"
    document = make_document(index=False)
    with pytest.raises(Exception, match=r"(?i)connect|refused|communication"):
        services.index_document(document_id=document.pk)


def test_the_query_syntax_is_passed_on_in_meilisearchs_own_terms():
    from search.query import parse_query

    assert (
        backend.meili_query(parse_query('linn "juge blond" -whisky invo')) == 'linn "juge blond" -whisky invo'
    )
    assert backend.meili_query(parse_query("finished words ")) == "finished words "
    assert backend.meili_query(parse_query("")) == ""
    assert backend.meili_filter(Visibility.everything(), SearchFilters(document_type='say "hi"')) == [
        'document_type = "say \\"hi\\""'
    ]
