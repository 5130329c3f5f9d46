"""Which documents an operator's credential reaches: seeing every user's documents is an
operator right, and it comes with the credential, not with the person.

With MULTI_USER_ENABLED an operator's everyday token and the token the mobile app made are
that person's own, like any user's: on every route they reach only the operator's own
documents, as ``/api/whoami`` says (``is_admin: false``). A staff session and a token made
with operator scope reach everyone's.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pikepdf
import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_create
from documents.models import Document, DocumentStatus, StepStatus
from documents.tests.conftest import store_thumbnail
from documents.tests.test_api_access import OBJECT_ROUTES, ROUTE_IDS
from search.services import index_document

pytestmark = pytest.mark.django_db

# The operator's credentials without operator rights, and those with them.
OWN_ONLY = ["everyday token", "mobile token"]
EVERYONE = ["session", "operator-scope token"]


@pytest.fixture(autouse=True)
def _multi_user(settings) -> None:
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True


@pytest.fixture(autouse=True)
def _no_broker(sent: list[dict]) -> list[dict]:
    """Nothing reaches a broker in these tests."""
    return sent


def one_page_pdf() -> bytes:
    buffer = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def make_document(ingest) -> Callable[..., Document]:
    """A finished, indexed PDF of ``user`` called ``name``: every route has something to act on."""

    def make(user: User, name: str) -> Document:
        # Different bytes per document, or the second would be a duplicate of the first.
        document = ingest(one_page_pdf() + name.encode(), f"{name}.pdf", user=user)
        document.steps.filter(name="convert").update(status=StepStatus.SKIPPED)
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.COMPLETED, ocr_text=f"{name} quarterly"
        )
        index_document(document_id=document.pk)
        store_thumbnail(document)
        return Document.objects.get(pk=document.pk)

    return make


@pytest.fixture
def owners_document(make_document, owner) -> Document:
    return make_document(owner, "owners-report")


@pytest.fixture
def operators_document(make_document, operator) -> Document:
    return make_document(operator, "operators-report")


@pytest.fixture
def operator_client(operator) -> Callable[[str], APIClient]:
    """An API client of the operator holding one kind of credential."""

    def client_with(credential: str) -> APIClient:
        client = APIClient()
        if credential == "session":
            client.force_login(operator)
        elif credential == "everyday token":
            _, raw_token = token_create(user=operator, name="laptop")
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        elif credential == "operator-scope token":
            _, raw_token = token_create(user=operator, name="monitoring", operator_scope=True)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        elif credential == "mobile token":
            # As the app does it: signed in with a session, it asks for a token, then drops the session.
            signed_in = APIClient()
            signed_in.force_login(operator)
            answer = signed_in.post("/api/mobile/generate-token", {"device_name": "Pixel"}, format="json")
            assert answer.status_code == 201
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['token']}")
        else:
            raise AssertionError(credential)
        return client

    return client_with


@pytest.mark.parametrize("credential", OWN_ONLY)
def test_an_operators_token_without_operator_scope_lists_only_their_own_documents(
    operator_client, owners_document, operators_document, credential
):
    client = operator_client(credential)

    listed = client.get("/api/files").json()
    found = client.get("/api/search", {"q": "quarterly"}).json()

    assert [file["id"] for file in listed["files"]] == [operators_document.pk]
    assert listed["pagination"]["total"] == 1
    assert [hit["file_id"] for hit in found["results"]] == [operators_document.pk]
    assert found["total"] == 1
    assert client.get("/api/whoami").json()["is_admin"] is False


@pytest.mark.parametrize("credential", OWN_ONLY)
@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_an_operators_token_without_operator_scope_cannot_reach_another_users_document(
    operator_client, owners_document, sent, credential, method, path, success
):
    response = getattr(operator_client(credential), method)(path.format(id=owners_document.pk))

    assert response.status_code == 404
    assert response.json() == {"detail": "No such document."}
    assert Document.objects.filter(pk=owners_document.pk).exists()
    assert sent == []


@pytest.mark.parametrize("credential", OWN_ONLY)
@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_an_operators_token_without_operator_scope_reaches_their_own_document(
    operator_client, operators_document, credential, method, path, success
):
    response = getattr(operator_client(credential), method)(path.format(id=operators_document.pk))

    assert response.status_code == success


@pytest.mark.parametrize("credential", OWN_ONLY)
def test_an_operators_token_without_operator_scope_gets_no_status_and_no_queue_stats(
    operator_client, owners_document, credential
):
    client = operator_client(credential)

    # The status route is a page: a token does not sign anyone in there.
    status = client.get("/files/status", {"ids": str(owners_document.pk)})
    stats = client.get("/api/queue/stats")

    assert status.status_code == 302
    assert status["Location"].startswith("/accounts/login/")
    assert stats.status_code == 403


@pytest.mark.parametrize("credential", EVERYONE)
def test_an_operators_session_and_operator_scope_token_see_every_users_documents(
    operator_client, owners_document, operators_document, credential
):
    client = operator_client(credential)

    listed = client.get("/api/files").json()
    found = client.get("/api/search", {"q": "quarterly"}).json()

    assert {file["id"] for file in listed["files"]} == {owners_document.pk, operators_document.pk}
    assert {hit["file_id"] for hit in found["results"]} == {owners_document.pk, operators_document.pk}
    assert client.get(f"/api/files/{owners_document.pk}").status_code == 200
    assert client.get("/api/queue/stats").json()["documents_by_status"]["completed"] == 2
    assert client.get("/api/whoami").json()["is_admin"] is True


@pytest.mark.parametrize("credential", EVERYONE)
@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_an_operators_session_and_operator_scope_token_reach_another_users_document(
    operator_client, owners_document, credential, method, path, success
):
    response = getattr(operator_client(credential), method)(path.format(id=owners_document.pk))

    assert response.status_code == success


def test_an_operator_who_left_the_staff_sees_only_their_own_even_with_an_operator_scope_token(
    operator, operator_client, owners_document, operators_document
):
    client = operator_client("operator-scope token")
    operator.is_staff = False
    operator.save()

    listed = client.get("/api/files").json()

    assert [file["id"] for file in listed["files"]] == [operators_document.pk]
    assert client.get(f"/api/files/{owners_document.pk}").status_code == 404
