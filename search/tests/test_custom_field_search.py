"""GET /api/search and the search page filter by custom fields and tag trees, and count the
values of SELECT and BOOLEAN custom fields among the matches (database search)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document, Tag
from search.services import index_document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings) -> None:
    settings.MULTI_USER_ENABLED = True


def searched(user, **params: Any) -> Any:
    api = APIClient()
    api.force_authenticate(user)
    response = api.get("/api/search", params)
    return response


def found(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted(hit["original_filename"] for hit in response.json()["results"])


@pytest.fixture
def invoices(make_document, owner) -> list[Document]:
    return [
        make_document(original_filename=f"invoice-{number}.pdf", ocr_text=f"invoice number {number}")
        for number in range(4)
    ]


@pytest.fixture
def status(owner) -> CustomField:
    return CustomField.objects.create(
        owner=owner, name="Status", data_type=CustomFieldType.SELECT, options=["open", "paid"]
    )


def test_search_filters_by_a_custom_field_range_with_an_exact_total(owner, invoices):
    total = CustomField.objects.create(owner=owner, name="Total", data_type=CustomFieldType.MONETARY)
    for document, amount in zip(invoices, ("5", "50", "500", "5000"), strict=True):
        CustomFieldValue.objects.create(document=document, field=total, value_decimal=Decimal(amount))

    response = searched(owner, q="invoice", custom_field=total.pk, cf_min="10", cf_max="1000")

    assert found(response) == ["invoice-1.pdf", "invoice-2.pdf"]
    assert response.json()["total"] == 2


def test_search_counts_each_option_of_a_select_field_and_each_answer_of_a_boolean_one(
    owner, invoices, status
):
    paid = CustomField.objects.create(owner=owner, name="Checked", data_type=CustomFieldType.BOOLEAN)
    for document, option in zip(invoices, ("open", "open", "paid", None), strict=True):
        if option:
            CustomFieldValue.objects.create(document=document, field=status, value_text=option)
    CustomFieldValue.objects.create(document=invoices[0], field=paid, value_bool=True)
    CustomFieldValue.objects.create(document=invoices[1], field=paid, value_bool=False)

    body = searched(owner, q="invoice").json()
    filtered = searched(owner, q="invoice", custom_field=status.pk, cf_value="open").json()

    facets = {facet["name"]: facet["values"] for facet in body["custom_field_facets"]}
    assert facets == {
        "Checked": [{"value": "false", "count": 1}, {"value": "true", "count": 1}],
        "Status": [{"value": "open", "count": 2}, {"value": "paid", "count": 1}],
    }
    assert filtered["total"] == 2
    assert {facet["name"]: facet["values"] for facet in filtered["custom_field_facets"]}["Status"] == [
        {"value": "open", "count": 2}
    ]


def test_another_users_custom_field_values_are_never_counted_nor_filterable(
    owner, other_user, make_document, invoices, status
):
    theirs = make_document(owner=other_user, original_filename="their-invoice.pdf", ocr_text="invoice")
    # A global field both may use: the other user's value of it must not show in my counts.
    shared = CustomField.objects.create(name="Priority", data_type=CustomFieldType.SELECT, options=["high"])
    CustomFieldValue.objects.create(document=theirs, field=shared, value_text="high")
    their_field = CustomField.objects.create(
        owner=other_user, name="Secret", data_type=CustomFieldType.SELECT
    )
    CustomFieldValue.objects.create(document=theirs, field=their_field, value_text="x")

    mine = searched(owner, q="invoice").json()
    refused = searched(owner, q="invoice", custom_field=their_field.pk, cf_value="x")
    their_view = searched(other_user, q="invoice").json()

    assert {facet["name"]: facet["values"] for facet in mine["custom_field_facets"]} == {
        "Priority": [],
        "Status": [],
    }
    assert refused.status_code == 400
    assert refused.json() == {"detail": f"No custom field {their_field.pk}."}
    assert {facet["name"]: facet["values"] for facet in their_view["custom_field_facets"]} == {
        "Priority": [{"value": "high", "count": 1}],
        "Secret": [{"value": "x", "count": 1}],
    }


def test_search_filters_by_a_tag_tree_with_its_descendants_and_without_its_siblings(owner, invoices):
    finance = Tag.objects.create(owner=owner, name="Finance")
    taxes = Tag.objects.create(owner=owner, name="Taxes", parent=finance)
    health = Tag.objects.create(owner=owner, name="Health")
    invoices[0].tags.add(finance)
    invoices[1].tags.add(taxes)
    invoices[2].tags.add(health)
    for document in invoices[:3]:
        Document.objects.filter(pk=document.pk).update(document_title=document.original_filename)
        index_document(document_id=document.pk)

    assert found(searched(owner, q="invoice", tag_tree=finance.pk)) == ["invoice-0.pdf", "invoice-1.pdf"]
    assert found(searched(owner, q="invoice", tag_tree=taxes.pk)) == ["invoice-1.pdf"]
    assert searched(owner, q="invoice", tag_tree=finance.pk).json()["total"] == 2


def test_the_search_page_offers_custom_field_facets_that_narrow_the_results(client, owner, invoices, status):
    client.force_login(owner)
    CustomFieldValue.objects.create(document=invoices[0], field=status, value_text="paid")

    page = client.get("/search", {"q": "invoice"}).content.decode()
    narrowed = client.get("/search", {"q": "invoice", "custom_field": status.pk, "cf_value": "paid"})

    assert "<h2>Status</h2>" in page
    assert f"custom_field={status.pk}&amp;cf_value=paid" in page
    assert narrowed.context["found"].total == 1
