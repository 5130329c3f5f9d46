"""Who may reach which document through the API: every object route, every persona.

With MULTI_USER_ENABLED another user's document does not exist for a user (404, never 403,
so ids cannot be probed); operators reach everything; anonymous callers get JSON 401/403.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from documents.models import Document, StepStatus
from documents.tests.conftest import store_thumbnail

pytestmark = pytest.mark.django_db

# (method, path template, success status for someone allowed)
OBJECT_ROUTES = [
    ("get", "/api/files/{id}", 200),
    ("get", "/api/files/{id}/download", 200),
    ("get", "/api/files/{id}/download?version=original", 200),
    ("get", "/api/files/{id}/preview", 200),
    ("get", "/api/files/{id}/thumbnail", 200),
    ("get", "/api/logs/file/{id}", 200),
    ("patch", "/api/files/{id}", 200),
    ("get", "/api/files/{id}/notes", 200),
    ("get", "/api/files/{id}/history", 200),
    ("post", "/api/files/{id}/reprocess", 202),
    ("post", "/api/files/{id}/retry-subtask?subtask_name=ocr", 202),
    ("delete", "/api/files/{id}", 204),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _status in OBJECT_ROUTES]


@pytest.fixture(autouse=True)
def _multi_user(settings) -> None:
    settings.MULTI_USER_ENABLED = True


@pytest.fixture(autouse=True)
def _no_broker(sent: list[dict]) -> list[dict]:
    """Nothing reaches a broker in these tests."""
    return sent


@pytest.fixture
def owners_document(ingest, samples: Path) -> Document:
    """An ingested PDF whose convert step is done, with a thumbnail, so every route has
    something to act on."""
    document = ingest(samples / "blank.pdf")
    document.steps.filter(name="convert").update(status=StepStatus.SKIPPED)
    store_thumbnail(document)
    return document


def call(user, method: str, path: str, document: Document):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return getattr(client, method)(path.format(id=document.pk))


@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_the_owner_reaches_their_document_on_every_route(owner, owners_document, method, path, success):
    response = call(owner, method, path, owners_document)

    assert response.status_code == success


@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_an_operator_reaches_any_users_document_on_every_route(
    operator, owners_document, method, path, success
):
    response = call(operator, method, path, owners_document)

    assert response.status_code == success


@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_another_user_is_told_the_document_does_not_exist_and_nothing_happens(
    other_user, owners_document, sent, method, path, success
):
    response = call(other_user, method, path, owners_document)

    assert response.status_code == 404
    assert response.json() == {"detail": "No such document."}
    assert Document.objects.filter(pk=owners_document.pk).exists()
    assert sent == []


@pytest.mark.parametrize(("method", "path", "success"), OBJECT_ROUTES, ids=ROUTE_IDS)
def test_an_anonymous_caller_is_refused_with_json_and_nothing_happens(
    anonymous, owners_document, sent, method, path, success
):
    response = call(None, method, path, owners_document)

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
    assert Document.objects.filter(pk=owners_document.pk).exists()
    assert sent == []


def test_another_users_answer_is_the_same_as_for_an_id_that_does_not_exist(other_user, owners_document):
    theirs = call(other_user, "get", "/api/files/{id}", owners_document)
    nobody = APIClient()
    nobody.force_authenticate(other_user)
    missing = nobody.get(f"/api/files/{owners_document.pk + 1000}")

    assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json())
