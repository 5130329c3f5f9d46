"""The /search page: results with highlights, facets that filter, pages, saved searches."""

from __future__ import annotations

import datetime
import re

import pytest

from search.models import SavedSearch

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def library(make_document):
    make_document(
        original_filename="linn.pdf", document_title="The LinnSequencer", document_type="Manual",
        ocr_text="The LinnSequencer records 32 tracks.", tags=("music",),
        document_date=datetime.date(1985, 6, 1),
    )  # fmt: skip
    make_document(
        original_filename="bill.pdf", document_title="Electricity <bill>", document_type="Invoice",
        ocr_text="Electricity used in March.", tags=("invoice",),
        document_date=datetime.date(2024, 3, 31),
    )  # fmt: skip


def test_the_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/search", {"q": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_results_show_highlighted_snippets_and_escape_the_documents_own_markup(signed_in, library):
    page = signed_in.get("/search", {"q": "electricity"}).content.decode()
    assert "1 document for “electricity”" in page
    assert "<mark>Electricity</mark> &lt;bill&gt;" in page
    assert "<bill>" not in page
    assert "linn.pdf" not in page


def test_facets_count_and_link_to_a_filtered_search(signed_in, library):
    page = signed_in.get("/search").content.decode()
    assert "2 documents" in page
    assert '<a href="?document_type=Invoice">Invoice</a> <span class="muted">1</span>' in page
    filtered = signed_in.get("/search", {"year": "1985"}).content.decode()
    assert "1 document" in filtered
    assert "linn.pdf" in filtered
    assert "bill.pdf" not in filtered


def test_an_empty_result_says_what_to_do(signed_in, library):
    assert (
        "Nothing found. Try fewer or other words"
        in signed_in.get("/search", {"q": "zeppelin "}).content.decode()
    )


def test_a_too_long_query_is_explained_not_crashed(signed_in, library):
    response = signed_in.get("/search", {"q": "word " * 300})
    assert response.status_code == 400
    assert "longer than 1000 characters" in response.content.decode()


def test_a_search_is_saved_and_listed_as_a_link(signed_in, owner, library):
    response = signed_in.post("/search/save", {"name": "Music", "q": "LinnSequencer", "tags": "music"})
    assert response.status_code == 302
    saved = SavedSearch.objects.get(owner=owner)
    assert (saved.name, saved.query, saved.filters) == ("Music", "LinnSequencer", {"tags": ["music"]})
    page = signed_in.get("/search").content.decode()
    assert '<a href="/search?q=LinnSequencer&amp;tags=music">Music</a>' in page


def test_saving_under_a_taken_name_explains_the_conflict(signed_in, owner):
    SavedSearch.objects.create(owner=owner, name="Music", query="x")
    page = signed_in.post("/search/save", {"name": "Music", "q": "y"}, follow=True).content.decode()
    assert "already have a saved search named" in page


def test_each_result_shows_its_documents_thumbnail_lazily(signed_in, make_document):
    first = make_document(
        original_filename="linn.pdf", document_title="Sequencer", ocr_text="tracks and songs"
    )
    second = make_document(original_filename="bill.pdf", document_title="Bill", ocr_text="tracks of power")

    page = signed_in.get("/search", {"q": "tracks"}).content.decode()

    sources = re.findall(r'<img src="([^"?]+)\?v=\d+"[^>]*loading="lazy"', page)
    assert sorted(sources) == sorted([f"/files/{first.pk}/thumbnail", f"/files/{second.pk}/thumbnail"])


@pytest.mark.parametrize("count", [2, 20])
def test_the_page_costs_the_same_few_queries_however_many_results_show_a_thumbnail(
    signed_in, make_document, count, django_assert_max_num_queries
):
    for number in range(count):
        make_document(original_filename=f"doc{number}.pdf", ocr_text="common words")

    with django_assert_max_num_queries(14):
        page = signed_in.get("/search", {"q": "common", "per_page": "25"}).content.decode()

    assert page.count('loading="lazy"') == count
