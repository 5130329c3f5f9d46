"""Extraction fills the custom fields that take the document's total, and leaves alone what a
person set."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from documents.metadata.rules import RulesExtractor
from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document
from documents.organise.mapping import metadata_apply

pytestmark = pytest.mark.django_db

INVOICE = """ACME Office Supplies Ltd
12 High Street, London

INVOICE
Invoice number: INV-2024-118
Date: 12 March 2024

Paper A4, 10 reams                     £45.00
Toner cartridge                        £60.00
Subtotal                              £105.00
VAT 20%                                £21.00
Total due                             £126.00

Please pay within 14 days.
"""


@pytest.fixture
def invoice(ingest) -> Document:
    return ingest(INVOICE.encode(), "invoice.txt")


def extracted(document: Document) -> None:
    found = RulesExtractor().extract(text=INVOICE, original_filename=document.original_filename)
    metadata_apply(document, found)


def value_of(document: Document, field: CustomField) -> CustomFieldValue | None:
    return CustomFieldValue.objects.filter(document=document, field=field).first()


def test_the_invoice_total_fills_a_monetary_field_that_takes_the_total(owner, invoice):
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type=CustomFieldType.MONETARY, extract_from="total"
    )
    untouched = CustomField.objects.create(owner=owner, name="Budget", data_type=CustomFieldType.MONETARY)

    extracted(invoice)

    stored = value_of(invoice, total)
    assert stored is not None
    assert (stored.value_decimal, stored.value_currency) == (Decimal("126.0000"), "GBP")
    assert value_of(invoice, untouched) is None


def test_a_global_decimal_field_is_filled_but_another_users_field_is_not(owner, other_user, invoice):
    shared = CustomField.objects.create(
        name="Amount", data_type=CustomFieldType.DECIMAL, extract_from="total"
    )
    theirs = CustomField.objects.create(
        owner=other_user, name="Total", data_type=CustomFieldType.MONETARY, extract_from="total"
    )

    extracted(invoice)

    stored = value_of(invoice, shared)
    assert stored is not None
    assert stored.value_decimal == Decimal("126")
    assert value_of(invoice, theirs) is None


def test_a_value_a_person_set_is_kept_when_the_document_is_extracted_again(owner, invoice):
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type=CustomFieldType.MONETARY, extract_from="total"
    )
    other = CustomField.objects.create(
        owner=owner, name="Gross", data_type=CustomFieldType.MONETARY, extract_from="total"
    )
    api = APIClient()
    api.force_authenticate(owner)
    response = api.patch(
        f"/api/files/{invoice.pk}",
        {"custom_fields": {str(total.pk): {"amount": "105.00", "currency": "GBP"}}},
        format="json",
    )
    assert response.status_code == 200, response.json()

    extracted(Document.objects.get(pk=invoice.pk))

    corrected = value_of(invoice, total)
    assert corrected is not None
    assert corrected.value_decimal == Decimal("105")
    # The field the person did not touch still follows extraction.
    filled = value_of(invoice, other)
    assert filled is not None
    assert filled.value_decimal == Decimal("126")


def test_no_custom_field_is_filled_when_custom_fields_are_kept_as_a_whole(owner, invoice):
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type=CustomFieldType.MONETARY, extract_from="total"
    )
    Document.objects.filter(pk=invoice.pk).update(user_fields=["custom_fields"])

    extracted(Document.objects.get(pk=invoice.pk))

    assert value_of(invoice, total) is None
