"""What extraction found, mapped onto the owner's managed lists.

The extractor names things in words ("bank_statement", "MÜLLER GmbH", "2024"); a document
refers to list entries. A name is looked up by its match key among the owner's own entries
and the global ones (the owner's first), and a new entry is made only for the lists
METADATA_CREATE_ENTRIES names. Fields a person set (``Document.user_fields``) are never
touched: reprocessing keeps every correction.
"""

from __future__ import annotations

from typing import TypeVar, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, Value, When

from docuelevate.errors import InvalidInput
from documents.metadata.base import ExtractedMetadata
from documents.models import (
    ChangeOrigin,
    Correspondent,
    CustomField,
    CustomFieldType,
    CustomFieldValue,
    Document,
    DocumentChange,
    DocumentType,
    Tag,
    TaxonomyEntry,
)
from documents.organise.custom_fields import custom_value_columns
from documents.organise.keys import clean_name, match_key

Entry = TypeVar("Entry", bound=TaxonomyEntry)

# The list each kind of entry is, as METADATA_CREATE_ENTRIES names it.
LIST_NAMES: dict[type[TaxonomyEntry], str] = {
    Correspondent: "correspondents",
    Tag: "tags",
    DocumentType: "document_types",
}
# What extraction may fill a custom field with (CustomField.extract_from), and the types of
# field that can hold it.
EXTRACTED_TOTAL = "total"
TOTAL_TYPES = (CustomFieldType.MONETARY, CustomFieldType.DECIMAL)
# Changes people make; a field they set is theirs, whatever extraction finds later.
PERSON_ORIGINS = (ChangeOrigin.PAGE, ChangeOrigin.API, ChangeOrigin.BULK)


def entry_for_name(
    model: type[Entry], *, owner_id: int, name: str, create: bool | None = None
) -> Entry | None:
    """The owner's (else the global) entry called ``name`` by its match key; a new one of the
    owner's when none matches and creating is allowed (by default: METADATA_CREATE_ENTRIES)."""
    shown = clean_name(name)
    key = match_key(shown)
    if not key:
        return None
    found: Entry | None = (
        model.objects.filter(Q(owner_id=owner_id) | Q(owner__isnull=True), match_key=key)
        .annotate(
            own=Case(When(owner_id=owner_id, then=Value(0)), default=Value(1), output_field=IntegerField())
        )
        .order_by("own", "pk")
        .first()
    )
    if found is not None:
        return found
    if create is None:
        create = LIST_NAMES.get(model) in settings.METADATA_CREATE_ENTRIES
    if not create:
        return None
    try:
        with transaction.atomic():
            return cast(Entry, model.objects.create(owner_id=owner_id, name=shown))
    except IntegrityError:  # another worker made it a moment ago
        return cast(Entry, model.objects.get(owner_id=owner_id, match_key=key))


def metadata_apply(document: Document, found: ExtractedMetadata) -> list[str]:
    """Set the extracted type, correspondent and tags on ``document`` (not saved for the two
    fields; tags are added, never removed), and the custom fields extraction fills (saved);
    returns the fields it set."""
    kept = set(document.user_fields or ())
    changed = []
    if "document_type" not in kept:
        document.document_type = (
            entry_for_name(
                DocumentType, owner_id=document.owner_id, name=found.document_type.replace("_", " ")
            )
            if found.document_type and found.document_type != "other"
            else None
        )
        changed.append("document_type")
    if "correspondent" not in kept:
        document.correspondent = (
            entry_for_name(Correspondent, owner_id=document.owner_id, name=found.correspondent)
            if found.correspondent
            else None
        )
        changed.append("correspondent")
    if "tags" not in kept:
        tags = [entry_for_name(Tag, owner_id=document.owner_id, name=tag) for tag in found.tags]
        document.tags.add(*[tag for tag in tags if tag is not None])
    if "custom_fields" not in kept:
        changed += _extracted_custom_fields(document, found)
    return changed


def _extracted_custom_fields(document: Document, found: ExtractedMetadata) -> list[str]:
    """Fill the owner's (and the global) custom fields that take the extracted total, except
    those a person set on this document (its history says so); returns them as
    ``custom_field:<name>``, as the history names them."""
    if found.total is None:
        return []
    fields = list(
        CustomField.objects.filter(
            Q(owner_id=document.owner_id) | Q(owner__isnull=True),
            extract_from=EXTRACTED_TOTAL,
            data_type__in=TOTAL_TYPES,
        ).order_by("pk")
    )
    if not fields:
        return []
    by_person = set(
        DocumentChange.objects.filter(
            document=document,
            origin__in=PERSON_ORIGINS,
            field__in=[f"custom_field:{field.name}" for field in fields],
        ).values_list("field", flat=True)
    )
    filled = []
    for field in fields:
        name = f"custom_field:{field.name}"
        if name in by_person:
            continue
        raw = {"amount": found.total.value, "currency": found.total.currency or ""}
        try:
            columns = custom_value_columns(field, raw, owner_id=document.owner_id)
        except InvalidInput:
            continue  # an amount the field cannot hold (too large): left empty, not a failed step
        CustomFieldValue.objects.update_or_create(document=document, field=field, defaults=columns)
        filled.append(name)
    return filled
