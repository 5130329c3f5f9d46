"""Filtering and sorting the files list by custom fields and tag trees (GET /api/files and
the /files page), for the owner and across users."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings) -> None:
    settings.MULTI_USER_ENABLED = True


def listed(user, **params: Any) -> Any:
    api = APIClient()
    api.force_authenticate(user)
    return api.get("/api/files", params)


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [item["original_filename"] for item in response.json()["files"]]


@pytest.fixture
def three(ingest) -> list[Document]:
    return [ingest(f"document {name}".encode(), f"{name}.txt") for name in ("a", "b", "c")]


def field(owner, kind: str, **extra: Any) -> CustomField:
    return CustomField.objects.create(owner=owner, name=f"{kind} field", data_type=kind, **extra)


def give(document: Document, custom_field: CustomField, **columns: Any) -> None:
    CustomFieldValue.objects.create(document=document, field=custom_field, **columns)


def test_a_text_field_filters_by_its_exact_value(owner, three):
    reference = field(owner, CustomFieldType.TEXT)
    give(three[0], reference, value_text="K-1")
    give(three[1], reference, value_text="K-2")

    assert names(listed(owner, custom_field=reference.pk, cf_value="K-2")) == ["b.txt"]


def test_an_integer_field_filters_by_value_and_by_range(owner, three):
    pages = field(owner, CustomFieldType.INTEGER)
    for document, number in zip(three, (3, 10, 30), strict=True):
        give(document, pages, value_int=number)

    assert names(listed(owner, custom_field=pages.pk, cf_value="10")) == ["b.txt"]
    in_range = listed(
        owner,
        custom_field=pages.pk,
        cf_min="5",
        cf_max="30",
        sort_by=f"custom_field:{pages.pk}",
        sort_order="asc",
    )
    assert names(in_range) == ["b.txt", "c.txt"]


def test_a_monetary_field_filters_by_an_amount_range_compared_as_numbers(owner, three):
    total = field(owner, CustomFieldType.MONETARY, default_currency="EUR")
    for document, amount in zip(three, ("9.50", "100.00", "1000.00"), strict=True):
        give(document, total, value_decimal=Decimal(amount), value_currency="EUR")

    # As text "9.50" > "100.00"; as numbers it is the smallest.
    assert names(listed(owner, custom_field=total.pk, cf_min="10", cf_max="999.99")) == ["b.txt"]
    assert names(listed(owner, custom_field=total.pk, cf_max="100")) == ["b.txt", "a.txt"]


def test_a_date_field_filters_by_a_range_of_days(owner, three):
    due = field(owner, CustomFieldType.DATE)
    for document, day in zip(three, (datetime.date(2024, 1, 31), datetime.date(2024, 2, 15),
                                      datetime.date(2024, 3, 1)), strict=True):  # fmt: skip
        give(document, due, value_date=day)

    assert names(listed(owner, custom_field=due.pk, cf_min="2024-02-01", cf_max="2024-02-29")) == ["b.txt"]


def test_a_boolean_field_filters_by_true_or_false_and_exists_finds_documents_without_a_value(owner, three):
    paid = field(owner, CustomFieldType.BOOLEAN)
    give(three[0], paid, value_bool=True)
    give(three[1], paid, value_bool=False)

    assert names(listed(owner, custom_field=paid.pk, cf_value="true")) == ["a.txt"]
    assert names(listed(owner, custom_field=paid.pk, cf_value="false")) == ["b.txt"]
    assert names(listed(owner, custom_field=paid.pk, cf_exists="true")) == ["b.txt", "a.txt"]
    assert names(listed(owner, custom_field=paid.pk, cf_exists="false")) == ["c.txt"]


def test_a_select_field_filters_by_its_option(owner, three):
    state = field(owner, CustomFieldType.SELECT, options=["open", "paid"])
    give(three[0], state, value_text="open")
    give(three[2], state, value_text="paid")

    assert names(listed(owner, custom_field=state.pk, cf_value="paid")) == ["c.txt"]


def test_sorting_by_a_custom_field_orders_by_its_value_and_puts_documents_without_one_last(owner, three):
    total = field(owner, CustomFieldType.DECIMAL)
    give(three[0], total, value_decimal=Decimal("20"))
    give(three[2], total, value_decimal=Decimal("3"))

    ascending = listed(owner, sort_by=f"custom_field:{total.pk}", sort_order="asc")
    descending = listed(owner, sort_by=f"custom_field:{total.pk}", sort_order="desc")

    assert names(ascending) == ["c.txt", "a.txt", "b.txt"]
    assert names(descending) == ["a.txt", "c.txt", "b.txt"]


def test_a_tag_tree_filter_finds_the_tag_and_its_descendants_but_not_its_siblings(owner, three, ingest):
    finance = Tag.objects.create(owner=owner, name="Finance")
    taxes = Tag.objects.create(owner=owner, name="Taxes", parent=finance)
    tax_2024 = Tag.objects.create(owner=owner, name="2024", parent=taxes)
    health = Tag.objects.create(owner=owner, name="Health")
    three[0].tags.add(finance)
    three[1].tags.add(tax_2024, finance)  # listed once, though it carries two tags of the tree
    three[2].tags.add(health)

    assert names(listed(owner, tag_tree=finance.pk)) == ["b.txt", "a.txt"]
    assert names(listed(owner, tag_tree=taxes.pk)) == ["b.txt"]
    assert names(listed(owner, tag_tree=health.pk)) == ["c.txt"]


def test_filters_take_the_same_number_of_queries_for_three_documents_as_for_thirty(owner, ingest):
    total = field(owner, CustomFieldType.MONETARY)
    parent = Tag.objects.create(owner=owner, name="Parent")
    child = Tag.objects.create(owner=owner, name="Child", parent=parent)

    def queries() -> int:
        params = {"custom_field": total.pk, "cf_min": "1", "tag_tree": parent.pk,
                  "sort_by": f"custom_field:{total.pk}"}  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            assert listed(owner, **params).status_code == 200
        return len(captured)

    def add(count: int) -> None:
        for number in range(count):
            document = ingest(f"{count} {number}".encode(), f"{count}-{number}.txt")
            give(document, total, value_decimal=Decimal(number + 1))
            document.tags.add(child)

    add(3)
    few = queries()
    add(27)
    assert queries() == few


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"custom_field": "abc"}, "custom_field"),
        ({"tag_tree": "0"}, "tag_tree"),
        ({"sort_by": "custom_field:x"}, "sort_by"),
        ({"cf_exists": "maybe", "custom_field": "1"}, "cf_exists"),
    ],
)
def test_malformed_filter_parameters_are_refused_with_400_naming_them(owner, params, named):
    response = listed(owner, **params)

    assert response.status_code == 400
    assert named in str(response.json())


def test_values_not_of_the_fields_type_and_ranges_on_text_are_refused(owner, three):
    pages = field(owner, CustomFieldType.INTEGER)
    text = field(owner, CustomFieldType.TEXT)
    amount = field(owner, CustomFieldType.DECIMAL)

    for params in (
        {"custom_field": pages.pk, "cf_value": "ten"},
        {"custom_field": text.pk, "cf_min": "a"},
        {"custom_field": amount.pk, "cf_min": "1e30"},
        {"custom_field": amount.pk, "cf_max": "NaN"},
        {"custom_field": pages.pk, "cf_max": "99999999999999999999"},
        {"cf_value": "10"},  # a value without its field
        {"custom_field": 999_999},
        {"tag_tree": 999_999},
        {"sort_by": "custom_field:999999"},
    ):
        response = listed(owner, **params)
        assert response.status_code == 400, params
        assert response.json()["detail"], params


def test_another_users_field_and_tag_are_refused_as_if_absent_and_never_leak_their_documents(
    owner, other_user, ingest
):
    theirs = field(other_user, CustomFieldType.TEXT)
    their_tag = Tag.objects.create(owner=other_user, name="Private")
    document = ingest(b"theirs", "theirs.txt", user=other_user)
    give(document, theirs, value_text="secret")
    document.tags.add(their_tag)

    refused = [
        listed(owner, custom_field=theirs.pk, cf_value="secret"),
        listed(owner, tag_tree=their_tag.pk),
        listed(owner, sort_by=f"custom_field:{theirs.pk}"),
    ]

    assert [response.status_code for response in refused] == [400, 400, 400]
    assert refused[0].json() == {"detail": f"No custom field {theirs.pk}."}
    assert names(listed(other_user, custom_field=theirs.pk, cf_value="secret")) == ["theirs.txt"]


def test_an_operator_filters_by_a_users_field_and_a_global_field_is_everyones(
    owner, operator, other_user, ingest
):
    shared = CustomField.objects.create(owner=None, name="Project", data_type=CustomFieldType.TEXT)
    mine = ingest(b"mine", "mine.txt")
    theirs = ingest(b"theirs", "theirs.txt", user=other_user)
    give(mine, shared, value_text="Apollo")
    give(theirs, shared, value_text="Apollo")

    # Each user sees their own documents with the value; an operator sees both.
    assert names(listed(owner, custom_field=shared.pk, cf_value="Apollo")) == ["mine.txt"]
    assert names(listed(other_user, custom_field=shared.pk, cf_value="Apollo")) == ["theirs.txt"]
    assert sorted(names(listed(operator, custom_field=shared.pk, cf_value="Apollo"))) == [
        "mine.txt",
        "theirs.txt",
    ]


def test_the_files_page_filters_by_a_custom_field_and_a_tag_tree_and_says_what_is_wrong(client, owner, three):
    client.force_login(owner)
    total = field(owner, CustomFieldType.MONETARY)
    give(three[1], total, value_decimal=Decimal("42"))
    parent = Tag.objects.create(owner=owner, name="Bills")
    three[1].tags.add(Tag.objects.create(owner=owner, name="Power", parent=parent))

    page = client.get("/files", {"custom_field": total.pk, "cf_min": "40", "tag_tree": parent.pk})
    wrong = client.get("/files", {"custom_field": total.pk, "cf_min": "lots"})

    assert page.status_code == 200
    assert [document.original_filename for document in page.context["page"].items] == ["b.txt"]
    assert "monetary field (Monetary)" in page.content.decode()
    assert wrong.status_code == 400
    assert "compares numbers" in wrong.content.decode()
