"""Numbers a client sends never reach the database unbounded: page numbers, ids and lists of
ids beyond what the database's 64-bit integers hold are a 400 ``{"detail"}`` in the API,
and match nothing (or a 400 page that says so) on the pages. Never a 500.

Run these on PostgreSQL too (DATABASE_URL): it overflows differently from SQLite.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.services import token_create
from documents.models import Document, DocumentStatus
from documents.tests.factories import DocumentFactory
from search.models import SavedSearch

pytestmark = pytest.mark.django_db

# Beyond a signed 64-bit integer (2**63 is the first), far beyond, and one that fits but
# whose offset ((page - 1) * per_page) does not.
HUGE = ["9223372036854775808", "99999999999999999999999", "999999999999999999"]
# str.isdigit() says yes to these, int() refuses them.
NOT_ASCII_DIGITS = ["²", "١٢"]


@pytest.fixture(autouse=True)
def _multi_user(settings) -> None:
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True


def make_document(owner: User, name: str = "mine.pdf") -> Document:
    return DocumentFactory.create(owner=owner, original_filename=name, status=DocumentStatus.PROCESSING)


@pytest.fixture
def api(owner: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def signed_in(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client


def assert_json_400(response) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


# --- The API: 400 --------------------------------------------------------------------------


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("route", ["/api/search", "/api/files"])
@pytest.mark.parametrize("parameter", ["page", "per_page"])
def test_a_huge_page_or_page_size_is_a_400_in_the_api(api, route, parameter, number):
    assert_json_400(api.get(route, {parameter: number}))


@pytest.mark.parametrize("route", ["/api/search", "/api/files"])
def test_the_last_page_allowed_is_answered_and_empty(api, owner, route):
    from docuelevate.bounds import MAX_PAGE

    make_document(owner)
    response = api.get(route, {"page": MAX_PAGE, "per_page": 100})

    assert response.status_code == 200
    assert response.json().get("results", response.json().get("files")) == []
    assert_json_400(api.get(route, {"page": MAX_PAGE + 1}))


@pytest.mark.parametrize("number", HUGE + NOT_ASCII_DIGITS)
@pytest.mark.parametrize(
    ("method", "route"),
    [("get", "/api/files/{}"), ("get", "/api/files/{}/download"), ("post", "/api/files/{}/reprocess"),
     ("delete", "/api/files/{}"), ("get", "/api/logs/file/{}"), ("delete", "/api/api-tokens/{}"),
     ("delete", "/api/saved-searches/{}"), ("put", "/api/saved-searches/{}")],
)  # fmt: skip
def test_a_huge_id_in_an_api_path_is_not_found(api, method, route, number):
    response = getattr(api, method)(route.format(number), {"name": "x"}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_existing_ids_still_work_beside_the_bounds(api, owner):
    token, _ = token_create(user=owner, name="laptop")
    saved = SavedSearch.objects.create(owner=owner, name="bills", query="invoice")

    assert api.delete(f"/api/api-tokens/{token.pk}").status_code == 204
    assert api.delete(f"/api/saved-searches/{saved.pk}").status_code == 204
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


# --- The pages: nothing found, or a 400 page ------------------------------------------------


@pytest.mark.parametrize("number", HUGE + NOT_ASCII_DIGITS)
def test_the_status_poll_ignores_ids_that_cannot_exist(signed_in, owner, number):
    mine = make_document(owner)

    response = signed_in.get("/files/status", {"ids": f"{number},{mine.pk}"})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["documents"]] == [mine.pk]


@pytest.mark.parametrize("number", HUGE + NOT_ASCII_DIGITS)
@pytest.mark.parametrize("route", ["/files/bulk", "/files/zip"])
def test_bulk_actions_ignore_ids_that_cannot_exist(signed_in, owner, route, number):
    mine = make_document(owner)

    response = signed_in.post(route, {"action": "trash", "ids": [number]})

    assert response.status_code == 302
    assert Document.objects.filter(pk=mine.pk).exists()


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize(
    ("method", "route"),
    [("get", "/files/{}"), ("post", "/files/{}/retry"), ("post", "/files/{}/delete"),
     ("post", "/api-tokens/{}/revoke")],
)  # fmt: skip
def test_a_huge_id_in_a_page_path_is_not_found(signed_in, method, route, number):
    assert getattr(signed_in, method)(route.format(number)).status_code == 404


@pytest.mark.parametrize("number", HUGE)
def test_an_operator_retrying_a_huge_id_on_the_status_page_gets_not_found(client, operator, number):
    client.force_login(operator)
    assert client.post(f"/status/documents/{number}/retry").status_code == 404


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize(
    ("route", "parameter"), [("/files", "page"), ("/search", "page"), ("/search", "year")]
)
def test_a_huge_number_on_a_list_page_is_a_400_page_that_says_so(signed_in, route, parameter, number):
    response = signed_in.get(route, {parameter: number})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
