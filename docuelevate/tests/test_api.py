from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated

from docuelevate.api import exception_handler
from docuelevate.errors import Conflict, PayloadTooLarge, UnsupportedMediaType


@pytest.mark.parametrize(
    ("error", "status"),
    [(Conflict("The document is under legal hold."), 409), (PayloadTooLarge("Too big."), 413),
     (UnsupportedMediaType("Not supported."), 415)],
)  # fmt: skip
def test_domain_errors_become_json_with_their_status(error, status):
    response = exception_handler(error, {})
    assert response is not None
    assert response.status_code == status
    assert response.data == {"detail": error.message}


def test_validation_errors_keep_one_readable_detail_and_the_field_errors():
    class Shape(serializers.Serializer):
        url = serializers.URLField()

    shape = Shape(data={"url": "not a url"})
    with pytest.raises(serializers.ValidationError) as caught:
        shape.is_valid(raise_exception=True)
    response = exception_handler(caught.value, {})
    assert response is not None
    assert response.status_code == 400
    assert response.data["detail"] == "url: Enter a valid URL."
    assert "url" in response.data["errors"]


def test_drf_errors_keep_their_status():
    response = exception_handler(NotAuthenticated(), {})
    assert response is not None
    assert response.data == {"detail": "Authentication credentials were not provided."}


@pytest.mark.django_db
def test_the_openapi_schema_and_its_ui_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content
    assert b"unpkg.com" not in docs.content
