"""Narrowing documents by custom field values and by tag trees: what the files list
(documents.selectors.document_list) and the search (search.selectors.search) share.

A request names a field or a tag by id, with its values as text (``CustomFieldAsk``); it is
checked once against the field's type and the entries the viewer may use, and becomes a
condition on ``CustomFieldValue`` rows (``CustomFieldCondition``) that a list or a search
applies as a ``document id IN (…)`` subquery. The subquery reads the (field, value) index
of the field's column, so a filter costs the same whatever the size of the archive.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from accounts.access import Viewer
from docuelevate.errors import InvalidInput
from documents.models import CustomField, CustomFieldType, CustomFieldValue, Document, Tag
from documents.organise.custom_fields import MAX_DECIMAL

QuerySetOf = TypeVar("QuerySetOf", bound=Model)

# The column that holds each type's value (CustomFieldValue).
VALUE_COLUMNS: dict[str, str] = {
    CustomFieldType.TEXT: "value_text",
    CustomFieldType.URL: "value_text",
    CustomFieldType.SELECT: "value_text",
    CustomFieldType.LONG_TEXT: "value_long_text",
    CustomFieldType.INTEGER: "value_int",
    CustomFieldType.DECIMAL: "value_decimal",
    CustomFieldType.MONETARY: "value_decimal",
    CustomFieldType.DATE: "value_date",
    CustomFieldType.BOOLEAN: "value_bool",
    CustomFieldType.DOCUMENT_LINK: "value_document_id",
}
# The types a range (cf_min, cf_max) compares: numbers, money and dates.
RANGED_TYPES = frozenset(
    {CustomFieldType.INTEGER, CustomFieldType.DECIMAL, CustomFieldType.MONETARY, CustomFieldType.DATE}
)
# The types the search counts per value (a facet): those with a few values to choose from.
FACETED_TYPES = (CustomFieldType.SELECT, CustomFieldType.BOOLEAN)
# The prefix of a files-list ``sort_by`` that sorts by a custom field: "custom_field:<id>".
SORT_PREFIX = "custom_field:"


@dataclass(frozen=True)
class CustomFieldAsk:
    """A custom field filter as a request asks for it: the field's id and values as text;
    blank means "not asked"."""

    field_id: int
    value: str = ""
    minimum: str = ""
    maximum: str = ""
    exists: bool | None = None

    @classmethod
    def from_query(cls, query: Any) -> CustomFieldAsk | None:
        """From checked parameters (``custom_field``, ``cf_value``, ``cf_min``, ``cf_max``,
        ``cf_exists``); None without a field. A value without a field is refused."""
        field_id = query.get("custom_field")
        values = {name: str(query.get(name) or "").strip() for name in ("cf_value", "cf_min", "cf_max")}
        exists = query.get("cf_exists")
        if field_id is None:
            if any(values.values()) or exists is not None:
                raise InvalidInput("cf_value, cf_min, cf_max and cf_exists need custom_field (a field's id).")
            return None
        return cls(
            field_id=int(field_id),
            value=values["cf_value"],
            minimum=values["cf_min"],
            maximum=values["cf_max"],
            exists=exists,
        )


@dataclass(frozen=True)
class CustomFieldCondition:
    """A checked custom field filter: the values are of the field's type."""

    field_id: int
    column: str
    value: Any = None
    minimum: Any = None
    maximum: Any = None
    # True: only documents with a value; False: only those without one; None: as the values say.
    exists: bool | None = None

    def apply(self, rows: QuerySet[QuerySetOf], *, document_key: str) -> QuerySet[QuerySetOf]:
        """``rows`` (documents, or search entries) whose document, in ``document_key``,
        meets the condition."""
        if self.exists is False:
            having = CustomFieldValue.objects.filter(field_id=self.field_id).values("document_id")
            return rows.exclude(**{f"{document_key}__in": having})
        return rows.filter(**{f"{document_key}__in": self.matching_document_ids()})

    def matching_document_ids(self) -> QuerySet[Any]:
        """The ``document_id`` of every value that meets the condition (one per document:
        one_value_per_field); not for ``exists=False``, which asks for the documents with
        no value at all."""
        assert self.exists is not False, "documents without a value are not read from values"
        values = CustomFieldValue.objects.filter(field_id=self.field_id)
        if self.value is not None:
            values = values.filter(**{self.column: self.value})
        if self.minimum is not None:
            values = values.filter(**{f"{self.column}__gte": self.minimum})
        if self.maximum is not None:
            values = values.filter(**{f"{self.column}__lte": self.maximum})
        if self.value is None and self.minimum is None and self.maximum is None:
            # Only asked to exist (or nothing but the field): a value is there.
            values = values.filter(**{f"{self.column}__isnull": False})
        return values.values("document_id")


def custom_field_usable(*, viewer: Viewer, field_id: int) -> CustomField:
    """The custom field ``field_id`` if ``viewer`` may use it (their own, a global one, or
    one of an owner they may see); InvalidInput otherwise, the same for a field that does
    not exist and one of another user, so a stranger learns nothing of it."""
    found: CustomField | None = CustomField.objects.available_to(viewer).filter(pk=field_id).first()
    if found is None:
        raise InvalidInput(f"No custom field {field_id}.")
    return found


def custom_field_condition(*, viewer: Viewer, asked: CustomFieldAsk) -> CustomFieldCondition:
    """``asked`` checked against its field's type; InvalidInput naming what is wrong."""
    field = custom_field_usable(viewer=viewer, field_id=asked.field_id)
    kind = field.data_type
    if (asked.minimum or asked.maximum) and kind not in RANGED_TYPES:
        raise InvalidInput(f"The field {field.name!r} is not a number, an amount or a date: it has no range.")
    if asked.exists is False and (asked.value or asked.minimum or asked.maximum):
        raise InvalidInput("cf_exists=false finds documents without a value: it takes no value or range.")
    return CustomFieldCondition(
        field_id=field.pk,
        column=VALUE_COLUMNS[kind],
        value=_typed(field, asked.value) if asked.value else None,
        minimum=_typed(field, asked.minimum) if asked.minimum else None,
        maximum=_typed(field, asked.maximum) if asked.maximum else None,
        exists=asked.exists,
    )


def _typed(field: CustomField, text: str) -> Any:
    """``text`` as a value of ``field``'s column; InvalidInput when it is not one."""
    kind = field.data_type
    what = f"The field {field.name!r}"
    if kind in {CustomFieldType.INTEGER, CustomFieldType.DOCUMENT_LINK}:
        try:
            number = int(text)
        except ValueError:
            raise InvalidInput(f"{what} compares whole numbers.") from None
        if abs(number) > 2**63 - 1:
            raise InvalidInput(f"{what} compares smaller numbers.")
        return number
    if kind in {CustomFieldType.DECIMAL, CustomFieldType.MONETARY}:
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(f"{what} compares numbers, such as 12.50.") from None
        if not amount.is_finite():
            raise InvalidInput(f"{what} compares numbers, such as 12.50.")
        if abs(amount) > MAX_DECIMAL:  # beyond the column: no value is that large
            raise InvalidInput(f"{what} compares smaller numbers.")
        return amount.quantize(Decimal("0.0001"))
    if kind == CustomFieldType.DATE:
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{what} compares dates as YYYY-MM-DD.") from None
    if kind == CustomFieldType.BOOLEAN:
        if text.lower() not in {"true", "false"}:
            raise InvalidInput(f"{what} takes true or false.")
        return text.lower() == "true"
    return text


def custom_field_sort_column(*, viewer: Viewer, sort_by: str) -> str | None:
    """The value column of the field a ``sort_by`` of "custom_field:<id>" names, None for a
    document column; InvalidInput for a field the viewer may not use."""
    if not sort_by.startswith(SORT_PREFIX):
        return None
    try:
        field_id = int(sort_by.removeprefix(SORT_PREFIX))
    except ValueError:
        raise InvalidInput("sort_by custom_field:<id> takes a custom field's id.") from None
    return VALUE_COLUMNS[custom_field_usable(viewer=viewer, field_id=field_id).data_type]


def tag_tree_ids(*, viewer: Viewer, tag_id: int) -> list[int]:
    """The tag ``tag_id`` and every tag nested under it, among the tags ``viewer`` may use;
    InvalidInput for a tag they may not use.

    The viewer's tags are one short list: read once (ids and parents only) and walked here,
    which any database does alike and no tree depth makes slower.
    """
    parents = dict(Tag.objects.available_to(viewer).values_list("pk", "parent_id"))
    if tag_id not in parents:
        raise InvalidInput(f"No tag {tag_id}.")
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    tree, waiting = [], [tag_id]
    seen: set[int] = set()
    while waiting:
        current = waiting.pop()
        if current in seen:  # a loop of parents, which no edit should make, ends here
            continue
        seen.add(current)
        tree.append(current)
        waiting.extend(children.get(current, ()))
    return sorted(tree)


def with_any_tag(
    rows: QuerySet[QuerySetOf], tag_ids: list[int], *, document_key: str
) -> QuerySet[QuerySetOf]:
    """``rows`` whose document, in ``document_key``, carries at least one of ``tag_ids``;
    a subquery rather than a join, so a document with two of them appears once."""
    return rows.filter(**{f"{document_key}__in": tagged_document_ids(tag_ids)})


def tagged_document_ids(tag_ids: list[int]) -> QuerySet[Any]:
    """The ``document_id`` of every tagging with one of ``tag_ids`` (a document with two of
    them twice), read from the (tag, document) index alone."""
    return Document.tags.through.objects.filter(tag_id__in=tag_ids).values("document_id")


@dataclass(frozen=True)
class FilterChoices:
    """What a filter form offers: the viewer's tags (with their parents, for the tree) and
    custom fields, each list in name order."""

    tags: list[Tag]
    custom_fields: list[CustomField]


def filter_choices(*, viewer: Viewer) -> FilterChoices:
    """The tags and custom fields ``viewer`` may filter by (two queries)."""
    return FilterChoices(
        tags=list(Tag.objects.available_to(viewer).order_by("name", "pk")),
        custom_fields=list(CustomField.objects.available_to(viewer).order_by("name", "pk")),
    )
