"""The files list's total (GET /api/files ``pagination.total``) is the number of documents
its pages hold, whichever filters are combined, whoever asks, with documents in the trash,
documents carrying several tags of one tree, and another user's documents around."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document, Tag
from documents.selectors import (
    DOCUMENT_COLUMN_FILTERS,
    ORDER_FIELDS,
    RELATED_ROW_FILTERS,
    DocumentFilters,
)

pytestmark = pytest.mark.django_db


def test_every_files_list_filter_is_known_as_a_document_column_a_related_row_or_the_order():
    # The total's quick count skips documents' columns; a new filter left out of these lists
    # would be ignored by it and the total would count documents the pages do not show.
    kinds = [DOCUMENT_COLUMN_FILTERS, RELATED_ROW_FILTERS, ORDER_FIELDS]
    named = [name for kind in kinds for name in kind]
    assert sorted(named) == sorted(field.name for field in dataclasses.fields(DocumentFilters))
    assert len(named) == len(set(named))


@pytest.fixture
def archive(owner, other_user, ingest) -> dict[str, Any]:
    """Owner's documents: tagged in a tree (money > finance > invoice; money > bank), one
    with two tags of the tree, one tagged and trashed, with a monetary field on some; and
    another user's document with the same tags and value."""
    money = Tag.objects.create(owner=owner, name="money")
    finance = Tag.objects.create(owner=owner, name="finance", parent=money)
    invoice = Tag.objects.create(owner=owner, name="invoice", parent=finance)
    bank = Tag.objects.create(owner=owner, name="bank", parent=money)
    private = Tag.objects.create(owner=owner, name="private")
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type=CustomFieldType.MONETARY, default_currency="EUR"
    )
    layout = {
        "a.txt": ([invoice], "120.00"),
        "b.txt": ([invoice, finance, private], "480.00"),  # two tags of the tree
        "c.txt": ([bank], None),
        "d.txt": ([private], "90.00"),
        "e.txt": ([], None),
        "trashed.txt": ([invoice, bank], "200.00"),
    }
    for name, (tags, amount) in layout.items():
        document = ingest(f"text of {name}".encode(), name)
        document.tags.set(tags)
        if amount:
            CustomFieldValue.objects.create(
                document=document, field=total, value_decimal=Decimal(amount), value_currency="EUR"
            )
        if name == "trashed.txt":
            Document.objects.filter(pk=document.pk).update(trashed_at=timezone.now())
    strangers = ingest(b"text of x", "x.txt", user=other_user)
    strangers.tags.set([invoice, bank])
    CustomFieldValue.objects.create(
        document=strangers, field=total, value_decimal=Decimal("150.00"), value_currency="EUR"
    )
    return {"money": money, "finance": finance, "bank": bank, "total": total}


def every_page(user, **params: Any) -> tuple[int, list[str]]:
    """The total the first page states, and the documents of all pages (two per page)."""
    api = APIClient()
    api.force_authenticate(user)
    first = api.get("/api/files", {**params, "per_page": 2, "page": 1})
    assert first.status_code == 200, first.json()
    pagination = first.json()["pagination"]
    names = []
    for page in range(1, pagination["pages"] + 1):
        body = api.get("/api/files", {**params, "per_page": 2, "page": page}).json()
        assert body["pagination"]["total"] == pagination["total"]
        names += [item["original_filename"] for item in body["files"]]
    return pagination["total"], sorted(names)


def cases(archive: dict[str, Any]) -> list[tuple[dict[str, Any], list[str], bool]]:
    """(filters, the owner's documents they find, whether they find the other user's x.txt:
    tagged invoice and bank, total 150.00)."""
    money, finance, bank, total = archive["money"], archive["finance"], archive["bank"], archive["total"]
    return [
        ({}, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"], True),
        ({"tag_tree": money.pk}, ["a.txt", "b.txt", "c.txt"], True),
        ({"tag_tree": finance.pk}, ["a.txt", "b.txt"], True),
        ({"tag_tree": bank.pk}, ["c.txt"], True),
        ({"tags": "invoice"}, ["a.txt", "b.txt"], True),
        ({"tags": "invoice,private"}, ["b.txt"], False),
        ({"tags": "no such tag"}, [], False),
        ({"custom_field": total.pk, "cf_min": "100", "cf_max": "500"}, ["a.txt", "b.txt"], True),
        ({"custom_field": total.pk, "cf_exists": "false"}, ["c.txt", "e.txt"], False),
        ({"custom_field": total.pk}, ["a.txt", "b.txt", "d.txt"], True),
        ({"tag_tree": money.pk, "custom_field": total.pk, "cf_max": "200"}, ["a.txt"], True),
        ({"tag_tree": money.pk, "tags": "private"}, ["b.txt"], False),
        ({"tag_tree": money.pk, "search": "c.txt"}, ["c.txt"], False),
        (
            {"tag_tree": money.pk, "sort_by": "original_filename", "sort_order": "asc"},
            ["a.txt", "b.txt", "c.txt"],
            True,
        ),
    ]


@pytest.mark.parametrize("multi_user", [False, True], ids=["one shared archive", "multi-user"])
def test_the_total_counts_each_listed_document_once_and_nothing_in_the_trash(
    settings, owner, archive, multi_user
):
    settings.MULTI_USER_ENABLED = multi_user
    for params, owners, finds_strangers in cases(archive):
        # In one shared archive the other user's document is everyone's.
        expected = sorted([*owners, "x.txt"]) if finds_strangers and not multi_user else owners
        total, listed = every_page(owner, **params)
        assert listed == expected, params
        assert total == len(expected), params


def test_an_operator_sees_every_owners_documents_in_the_total(settings, operator, archive):
    settings.MULTI_USER_ENABLED = True
    total, listed = every_page(operator, tag_tree=archive["money"].pk)
    assert listed == ["a.txt", "b.txt", "c.txt", "x.txt"]
    assert total == 4
