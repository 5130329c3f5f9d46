"""Errors outside DRF: JSON under /api/, a page elsewhere, never exception text; body limits."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def crashing_site(settings) -> Client:
    settings.ROOT_URLCONF = "docuelevate.tests.urls"
    return Client(raise_request_exception=False)


def test_an_unknown_api_route_is_a_json_404(client):
    response = client.get("/api/no-such-route")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_page_is_a_404_page_in_the_sites_look(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"DocuElevate" in response.content


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/test-crash", "application/json"), ("/test-crash", "text/html")]
)
def test_a_crash_answers_500_without_the_exception_text(crashing_site, path, content_type):
    response = crashing_site.get(path)
    assert response.status_code == 500
    assert response["Content-Type"].startswith(content_type)
    assert b"hunter2" not in response.content
    assert b"/srv/private" not in response.content
    if content_type == "application/json":
        assert "detail" in response.json()


def test_a_json_body_over_the_limit_is_refused_with_413_before_it_is_read(client, owner, settings):
    settings.MAX_REQUEST_BODY_SIZE = 2048
    client.force_login(owner)
    body = json.dumps({"url": "https://example.com/a.pdf", "filename": "x" * 4000})
    response = client.post("/api/process-url", body, content_type="application/json")
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


def test_a_form_body_over_the_limit_is_refused_with_413_on_pages_too(client, settings):
    settings.MAX_REQUEST_BODY_SIZE = 2048
    body = urlencode({"login": "x" * 4000, "password": "y"})
    response = client.post("/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
