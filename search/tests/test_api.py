"""GET /api/search and the saved searches API, for every persona."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from search.models import SavedSearch

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def documents(make_document, other_user, settings):
    settings.MULTI_USER_ENABLED = True
    mine = make_document(
        original_filename="linn.pdf", document_title="The LinnSequencer", document_type="Manual",
        ocr_text="The LinnSequencer is a 32 track MIDI sequence recorder.", tags=("music",),
    )  # fmt: skip
    theirs = make_document(owner=other_user, original_filename="theirs.pdf", ocr_text="LinnSequencer notes")
    return mine, theirs


def test_search_answers_in_the_contract_shape(owner, documents):
    mine, _ = documents
    response = client_for(owner).get("/api/search", {"q": "LinnSequencer"})
    assert response.status_code == 200
    body = response.json()
    assert {"results", "total", "page", "pages", "query", "facets"} <= set(body)
    assert (body["total"], body["page"], body["pages"], body["query"]) == (1, 1, 1, "LinnSequencer")
    [hit] = body["results"]
    assert hit["file_id"] == mine.pk
    assert hit["original_filename"] == "linn.pdf"
    assert hit["document_title"] == "The LinnSequencer"
    assert hit["document_type"] == "Manual"
    assert hit["tags"] == ["music"]
    assert "<mark>LinnSequencer</mark>" in hit["_formatted"]["document_title"]
    assert "<mark>" in hit["_formatted"]["ocr_text"]
    assert body["facets"]["tags"] == [{"value": "music", "count": 1}]


def test_another_user_never_sees_the_owners_hits_nor_their_count(other_user, documents):
    body = client_for(other_user).get("/api/search", {"q": "LinnSequencer"}).json()
    assert [hit["original_filename"] for hit in body["results"]] == ["theirs.pdf"]
    assert body["total"] == 1


def test_an_operator_finds_everyones(operator, documents):
    assert client_for(operator).get("/api/search", {"q": "LinnSequencer"}).json()["total"] == 2


def test_anonymous_callers_get_a_json_401(documents):
    response = client_for(None).get("/api/search", {"q": "LinnSequencer"})
    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"q": "x" * 10_000}, "longer than 1000 characters"),
        ({"per_page": "101"}, "per_page"),
        ({"page": "0"}, "page"),
        ({"date_from": "yesterday"}, "date_from"),
    ],
)
def test_bad_parameters_are_a_clear_400(owner, documents, params, fragment):
    response = client_for(owner).get("/api/search", params)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize("query", ['"unbalanced', "!!!", "-", "' OR 1=1 --", "((("])
def test_malformed_queries_are_answered_not_crashed(owner, documents, query):
    assert client_for(owner).get("/api/search", {"q": query}).status_code == 200


def test_filters_from_the_query_string_apply(owner, documents):
    client = client_for(owner)
    assert client.get("/api/search", {"document_type": "Manual"}).json()["total"] == 1
    assert client.get("/api/search", {"document_type": "Letter"}).json()["total"] == 0
    assert client.get("/api/search", {"tags": "music,unknown"}).json()["total"] == 0


def test_the_search_runs_a_constant_number_of_queries_whatever_the_page_size(
    owner, make_document, django_assert_max_num_queries, settings
):
    for number in range(30):
        make_document(original_filename=f"doc{number}.pdf", ocr_text="common words", tags=("a", "b"))
    client = client_for(owner)
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/search", {"q": "common", "per_page": "5"}).json()["results"]) == 5
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/search", {"q": "common", "per_page": "30"}).json()["results"]) == 30


# --- Saved searches ------------------------------------------------------------------------------


def test_a_user_saves_lists_updates_and_deletes_a_search(owner):
    client = client_for(owner)
    created = client.post(
        "/api/saved-searches",
        {
            "name": "Linn manuals",
            "query": "LinnSequencer",
            "filters": {"tags": ["music"], "date_from": "1985-01-01"},
        },
        format="json",
    )
    assert created.status_code == 201
    saved = created.json()
    assert saved["filters"] == {"tags": ["music"], "date_from": "1985-01-01"}

    assert [item["name"] for item in client.get("/api/saved-searches").json()] == ["Linn manuals"]
    updated = client.put(
        f"/api/saved-searches/{saved['id']}",
        {"name": "Manuals", "query": "manual", "filters": {}},
        format="json",
    )
    assert updated.status_code == 200
    assert updated.json()["query"] == "manual"
    assert client.delete(f"/api/saved-searches/{saved['id']}").status_code == 204
    assert client.get("/api/saved-searches").json() == []


def test_saved_search_names_are_unique_per_user(owner, other_user):
    client_for(owner).post("/api/saved-searches", {"name": "Bills", "query": "invoice"}, format="json")
    again = client_for(owner).post("/api/saved-searches", {"name": "Bills", "query": "bill"}, format="json")
    assert again.status_code == 409
    elsewhere = client_for(other_user).post(
        "/api/saved-searches", {"name": "Bills", "query": "x"}, format="json"
    )
    assert elsewhere.status_code == 201


def test_another_users_saved_search_is_not_found_and_never_listed(owner, other_user):
    saved = SavedSearch.objects.create(owner=owner, name="Private", query="secret")
    client = client_for(other_user)
    assert client.get("/api/saved-searches").json() == []
    assert (
        client.put(f"/api/saved-searches/{saved.pk}", {"name": "x", "query": ""}, format="json").status_code
        == 404
    )
    assert client.delete(f"/api/saved-searches/{saved.pk}").status_code == 404
    assert SavedSearch.objects.filter(pk=saved.pk, name="Private").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "query": "x"},
        {"name": "n", "query": "x" * 1001},
        {"name": "n", "filters": {"colour": "red"}},
    ],
)
def test_a_bad_saved_search_is_refused_with_400(owner, body):
    response = client_for(owner).post("/api/saved-searches", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_anonymous_callers_cannot_use_saved_searches():
    assert client_for(None).get("/api/saved-searches").status_code == 401
