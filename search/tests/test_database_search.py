"""The built-in database search on the text of the sample documents: SQLite locally, PostgreSQL in CI.

The search reads what the pipeline stored; that OCR yields this text from the rendered
scans is proved by documents/tests/test_pipeline_corpus.py."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.access import Viewer
from docuelevate.errors import InvalidInput
from documents.models import Tag
from documents.tests.samples import FRENCH_TEXT, SCAN_TEXT
from search.backends.base import SearchFilters
from search.selectors import search
from search.services import index_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive(make_document, other_user, settings):
    """Three documents of the owner with real text, and one of another user, who must not
    see each other's (MULTI_USER_ENABLED)."""
    settings.MULTI_USER_ENABLED = True
    return {
        "scan": make_document(
            original_filename="chronoscribe.pdf",
            document_title="The ChronoScribe",
            document_type="Manual",
            correspondent="Chrono Instruments",
            ocr_text=SCAN_TEXT,
            language="en",
            tags=("music", "manual"),
            document_date=datetime.date(1985, 6, 1),
        ),
        "francais": make_document(
            original_filename="francais.pdf",
            document_title="Pangramme",
            document_type="Letter",
            correspondent="Académie",
            ocr_text=FRENCH_TEXT,
            language="fr",
            tags=("language",),
            document_date=datetime.date(2024, 1, 15),
        ),
        "invoice": make_document(
            original_filename="Stadtwerke_Rechnung_2024-03.pdf",
            document_title="Invoice March",
            document_type="Invoice",
            correspondent="Stadtwerke",
            ocr_text="Invoice for electricity. Total amount due: 120.50 EUR. Thank you for your payment.",
            language="en",
            tags=("invoice", "manual"),
            document_date=datetime.date(2024, 3, 31),
        ),
        "foreign": make_document(
            owner=other_user,
            original_filename="secret.pdf",
            document_title="Private ChronoScribe notes",
            ocr_text="whisky ChronoScribe invoice private",
            tags=("private",),
        ),
    }


def found(user, query: str, **options) -> list[str]:
    return [
        result.document.original_filename
        for result in search(viewer=Viewer(user), query=query, **options).results
    ]


def test_a_word_from_the_ocr_text_finds_its_document(owner, archive):
    assert found(owner, "ChronoScribe ")[0] == "chronoscribe.pdf"
    assert "francais.pdf" in found(owner, "whisky ")


def test_all_words_must_occur(owner, archive):
    assert found(owner, "midi polyphonic ") == ["chronoscribe.pdf"]
    assert found(owner, "midi whisky ") == []


def test_an_exact_phrase_matches_only_in_that_order(owner, archive):
    assert found(owner, '"juge blond"') == ["francais.pdf"]
    assert found(owner, '"blond juge"') == []


def test_a_minus_excludes_documents_with_that_word(owner, archive):
    assert set(found(owner, "manual")) == {"chronoscribe.pdf", "Stadtwerke_Rechnung_2024-03.pdf"}
    assert found(owner, "manual -electricity") == ["chronoscribe.pdf"]
    assert set(found(owner, "-electricity")) == {"chronoscribe.pdf", "francais.pdf"}
    # Several exclusions, a phrase among them: each one removes its matches.
    assert found(owner, 'manual -electricity -"tape recorder"') == []
    assert found(owner, 'manual -electricity -"recorder tape"') == ["chronoscribe.pdf"]


def test_the_last_word_matches_as_a_prefix_while_typing(owner, archive):
    assert found(owner, "ChronoSc") == ["chronoscribe.pdf"]
    assert found(owner, "ChronoSc ") == []  # a finished word must match whole


def test_english_words_match_their_other_forms(owner, archive):
    assert found(owner, "invoices ") == ["Stadtwerke_Rechnung_2024-03.pdf"]
    assert found(owner, "payments ") == ["Stadtwerke_Rechnung_2024-03.pdf"]


def test_german_words_match_their_other_forms_where_the_engine_stems_german(owner, make_document):
    make_document(
        original_filename="brief.pdf", ocr_text="Die Rechnungen für den Monat Januar.", language="de"
    )
    if connection.vendor == "postgresql":
        assert found(owner, "Rechnung ") == ["brief.pdf"]
    # SQLite's FTS5 stems English only; the word as written always matches.
    assert found(owner, "Rechnungen ") == ["brief.pdf"]


def test_file_name_parts_title_and_correspondent_are_searchable(owner, archive):
    assert found(owner, "Stadtwerke ") == ["Stadtwerke_Rechnung_2024-03.pdf"]
    assert found(owner, "Pangramme ") == ["francais.pdf"]
    assert found(owner, "Académie ") == ["francais.pdf"]


def test_a_title_match_ranks_above_a_match_deep_in_the_text(owner, make_document):
    make_document(original_filename="body.pdf", ocr_text="page after page " * 50 + "quarterly report")
    make_document(original_filename="title.pdf", document_title="Quarterly report", ocr_text="numbers")
    assert found(owner, "quarterly ") == ["title.pdf", "body.pdf"]


def test_matches_are_highlighted_and_everything_else_is_escaped(owner, make_document):
    make_document(document_title="<script>alert(1)</script> Budget", ocr_text="The budget & the <b>plan</b>.")
    result = search(viewer=Viewer(owner), query="budget ").results[0]
    assert result.formatted["document_title"] == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Budget</mark>"
    text = result.formatted["ocr_text"]
    assert "<mark>budget</mark>" in text
    # PostgreSQL's headline drops markup-looking words, SQLite's snippet keeps them escaped;
    # either way the only tags are ours.
    assert "<" not in text.replace("<mark>", "").replace("</mark>", "")


def test_facets_count_everything_that_matched(owner, archive):
    results = search(viewer=Viewer(owner), query="manual")
    assert results.total == 2
    assert dict(results.facets["document_type"]) == {"Manual": 1, "Invoice": 1}
    assert dict(results.facets["tags"]) == {"manual": 2, "music": 1, "invoice": 1}
    assert dict(results.facets["year"]) == {"1985": 1, "2024": 1}
    assert dict(results.facets["correspondent"]) == {"Chrono Instruments": 1, "Stadtwerke": 1}


def test_filters_narrow_the_results_and_the_facets_follow(owner, archive):
    by_tag = search(viewer=Viewer(owner), query="", filters=SearchFilters(tags=("manual", "invoice")))
    assert [r.document.original_filename for r in by_tag.results] == ["Stadtwerke_Rechnung_2024-03.pdf"]
    assert dict(by_tag.facets["tags"]) == {"manual": 1, "invoice": 1}
    recent = SearchFilters(date_from=datetime.date(2024, 1, 1), date_to=datetime.date(2024, 1, 31))
    assert found(owner, "", filters=recent) == ["francais.pdf"]
    assert found(owner, "", filters=SearchFilters(document_type="Letter", language="fr")) == ["francais.pdf"]


def test_an_empty_query_lists_everything_visible_newest_first(owner, archive, settings):
    results = search(viewer=Viewer(owner), query="")
    assert results.total == 3
    assert results.results[0].document.original_filename == "Stadtwerke_Rechnung_2024-03.pdf"
    settings.MULTI_USER_ENABLED = False  # one shared archive
    assert search(viewer=Viewer(owner), query="").results[0].document.original_filename == "secret.pdf"


def test_another_users_documents_never_show_totals_and_facets_included(other_user, owner, operator, archive):
    theirs = search(viewer=Viewer(other_user), query="ChronoScribe ")
    assert [r.document.original_filename for r in theirs.results] == ["secret.pdf"]
    assert theirs.total == 1
    assert theirs.facets["tags"] == [("private", 1)]
    assert search(viewer=Viewer(owner), query="private ").total == 0
    assert search(viewer=Viewer(operator, operator=True), query="ChronoScribe ").total == 2


def test_an_anonymous_visitor_finds_nothing(archive):
    from django.contrib.auth.models import AnonymousUser

    assert search(viewer=Viewer(AnonymousUser()), query="ChronoScribe").total == 0


def test_pages_split_the_results_and_count_them(owner, archive):
    first = search(viewer=Viewer(owner), query="", page=1, per_page=2)
    second = search(viewer=Viewer(owner), query="", page=2, per_page=2)
    assert (first.total, first.pages, len(first.results), len(second.results)) == (3, 2, 2, 1)
    beyond = search(viewer=Viewer(owner), query="", page=9, per_page=2)
    assert beyond.results == []
    assert beyond.total == 3


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced quote',
        "!!! ??? ...",
        "-",
        '""',
        "a" * 999,
        "AND OR NOT",
        "*:()&|!",
        "' OR 1=1 --",
        "\x00",
    ],
)
def test_odd_queries_give_results_not_errors(owner, archive, query):
    results = search(viewer=Viewer(owner), query=query)
    assert results.total >= 0


def test_a_query_too_long_to_be_a_search_is_refused_clearly(owner, archive):
    with pytest.raises(InvalidInput, match="longer than 1000 characters"):
        search(viewer=Viewer(owner), query="word " * 2000)


def test_only_searchable_documents_are_found(owner, make_document):
    from documents.models import DocumentStatus

    make_document(original_filename="failed.pdf", ocr_text="zeppelin", status=DocumentStatus.FAILED)
    make_document(original_filename="done.pdf", ocr_text="zeppelin")
    assert found(owner, "zeppelin ") == ["done.pdf"]


def test_documents_that_match_equally_are_listed_newest_first(owner, make_document):
    make_document(original_filename="older.pdf", ocr_text="meter reading for the flat")
    make_document(original_filename="newer.pdf", ocr_text="meter reading for the flat")
    assert found(owner, "meter ") == ["newer.pdf", "older.pdf"]


def test_when_many_match_the_prominent_and_newest_are_ranked_and_the_rest_follow_newest_first(
    owner, make_document, monkeypatch
):
    """Relevance is computed for a window of candidates (search.backends.database): with a
    window of 3, the title match and the 3 newest are ranked, the others follow by date,
    and the pages still add up to every match exactly once."""
    make_document(original_filename="old-title.pdf", document_title="Zeppelin log", ocr_text="zeppelin")
    make_document(original_filename="old-many.pdf", ocr_text="zeppelin " * 30)
    for number in range(1, 6):
        make_document(original_filename=f"n{number}.pdf", ocr_text="a zeppelin passed over the town")
    expected_exactly = search(viewer=Viewer(owner), query="zeppelin ", per_page=10)
    assert "old-many.pdf" in [r.document.original_filename for r in expected_exactly.results[:2]]

    monkeypatch.setattr("search.backends.database.RANK_WINDOW", 3)
    pages = [search(viewer=Viewer(owner), query="zeppelin ", page=page, per_page=2) for page in (1, 2, 3, 4)]
    assert {page.total for page in pages} == {7}
    listed = [result.document.original_filename for page in pages for result in page.results]
    assert listed == ["old-title.pdf", "n5.pdf", "n4.pdf", "n3.pdf", "n2.pdf", "n1.pdf", "old-many.pdf"]


def test_beyond_the_ranking_window_totals_facets_and_exclusions_stay_exact_at_the_same_cost(
    owner, make_document, monkeypatch
):
    """Past RANK_WINDOW only the candidates are ranked (search.backends.database), but the
    total, the facets and an exclusion still cover every match, the candidates come from the
    pass that counts, and a search costs the same statements whether few or many match: what
    keeps search flat as the archive grows (bench/search.py)."""
    monkeypatch.setattr("search.backends.database.RANK_WINDOW", 3)
    make_document(original_filename="title.pdf", document_title="Heizung", ocr_text="heizung", tags=("home",))
    make_document(original_filename="old-oil.pdf", ocr_text="heizung oil", document_type="Invoice")
    with CaptureQueriesContext(connection) as few:
        assert search(viewer=Viewer(owner), query="heizung -oil").total == 1
    for number in range(6):
        make_document(
            original_filename=f"h{number}.pdf",
            ocr_text="heizung wartung" + (" oil" if number % 2 else ""),
            document_type="Invoice",
            tags=("home", "bills") if number < 4 else (),
        )

    with CaptureQueriesContext(connection) as many:
        everything = search(viewer=Viewer(owner), query="heizung ", per_page=3)
    assert len(many) == len(few)
    assert everything.total == 8
    assert dict(everything.facets["document_type"]) == {"Invoice": 7}
    assert dict(everything.facets["tags"]) == {"home": 5, "bills": 4}
    # The title match is a candidate however old it is, and it ranks first.
    assert everything.results[0].document.original_filename == "title.pdf"

    pages = [search(viewer=Viewer(owner), query="heizung -oil", page=page, per_page=2) for page in (1, 2, 3)]
    assert {page.total for page in pages} == {4}
    listed = [result.document.original_filename for page in pages for result in page.results]
    assert sorted(listed) == ["h0.pdf", "h2.pdf", "h4.pdf", "title.pdf"]
    assert listed[0] == "title.pdf"


def test_a_reindexed_document_moves_its_year_and_tags_in_the_facets(owner, make_document):
    """The entry keeps its own year and tag ids for the facets (search.models.SearchEntry):
    indexing again after an edit must replace them, not add to them."""
    edited = make_document(ocr_text="zeppelin", tags=("home",), document_date=datetime.date(2020, 5, 1))
    make_document(ocr_text="zeppelin", tags=("bills", "home"), document_date=datetime.date(2021, 5, 1))
    edited.document_date = datetime.date(2023, 1, 2)
    edited.save()
    edited.tags.set([Tag.objects.get(name="bills")])
    index_document(document_id=edited.pk)

    results = search(viewer=Viewer(owner), query="zeppelin ")
    assert results.total == 2
    assert dict(results.facets["year"]) == {"2021": 1, "2023": 1}
    assert dict(results.facets["tags"]) == {"bills": 2, "home": 1}
    assert dict(search(viewer=Viewer(owner), query="").facets["year"]) == {"2021": 1, "2023": 1}
