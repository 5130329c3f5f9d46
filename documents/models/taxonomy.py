"""The managed lists a person files documents by: tags, document types, correspondents,
storage paths and custom fields.

Each entry belongs to one owner, or to nobody: a global entry, which operators keep and
every user may use (``TaxonomyQuerySet.available_to``). Names are unique per owner by
their ``match_key`` (case, accents and spacing folded: documents.organise.keys), so
"Müller GmbH" and "MUELLER gmbh " are one correspondent and extraction finds them alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from documents.organise.keys import match_key
from documents.visibility import visibility_for

if TYPE_CHECKING:
    from accounts.access import Viewer


class TaxonomyQuerySet(models.QuerySet[Any]):
    def available_to(self, viewer: Viewer) -> Self:
        """Entries ``viewer`` may use: the global ones and those of the owners they may see."""
        visibility = visibility_for(viewer)
        if visibility.all_owners:
            return self.all()
        return self.filter(Q(owner__isnull=True) | Q(owner_id__in=sorted(visibility.owner_ids)))


class TaxonomyEntry(models.Model):
    """What every managed list's entry has: a name, its match key and its owner."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=128)
    # The name folded for matching and uniqueness (documents.organise.keys.match_key).
    match_key = models.CharField(max_length=128, editable=False, default="")
    created_at = models.DateTimeField(default=timezone.now)

    objects: ClassVar[TaxonomyQuerySet] = TaxonomyQuerySet.as_manager()  # type: ignore[assignment]  # a manager built from the queryset

    class Meta:
        abstract = True
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The key is the name's shadow, never set on its own: whoever saves (a service, the
        # admin) keeps the two in step.
        self.match_key = match_key(self.name)
        if update_fields := kwargs.get("update_fields"):
            kwargs["update_fields"] = {*update_fields, "match_key"}
        super().save(*args, **kwargs)

    @property
    def is_global(self) -> bool:
        return self.owner_id is None


def _unique_names(prefix: str) -> list[models.BaseConstraint]:
    """One name per owner, and one among the global entries (NULL owners are never equal)."""
    return [
        models.UniqueConstraint(fields=["owner", "match_key"], name=f"{prefix}_name_per_owner"),
        models.UniqueConstraint(
            fields=["match_key"], condition=Q(owner__isnull=True), name=f"{prefix}_global_name"
        ),
    ]


class Tag(TaxonomyEntry):
    """A label on documents, with a colour, an optional parent (nested tags) and an inbox flag:
    an inbox tag is given to every new document until someone has looked at it."""

    colour = models.CharField(max_length=7, default="#6b7280")  # "#rrggbb"
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    is_inbox = models.BooleanField(default=False)

    class Meta(TaxonomyEntry.Meta):
        constraints = _unique_names("tag")


class DocumentType(TaxonomyEntry):
    """What a document is: invoice, payslip, contract, …"""

    class Meta(TaxonomyEntry.Meta):
        constraints = _unique_names("document_type")


class Correspondent(TaxonomyEntry):
    """The organisation or person a document is from or to."""

    class Meta(TaxonomyEntry.Meta):
        constraints = _unique_names("correspondent")


class StoragePath(TaxonomyEntry):
    """A named filename template for the processed file (documents.organise.storage_paths),
    assignable per document instead of FILENAME_FORMAT."""

    template = models.CharField(max_length=500)

    class Meta(TaxonomyEntry.Meta):
        constraints = _unique_names("storage_path")


class CustomFieldType(models.TextChoices):
    TEXT = "text"
    LONG_TEXT = "long_text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    MONETARY = "monetary"
    DATE = "date"
    BOOLEAN = "boolean"
    URL = "url", "URL"
    SELECT = "select"
    DOCUMENT_LINK = "document_link"


class CustomField(TaxonomyEntry):
    """A typed field an owner adds to documents (an invoice's total, a contract's end date)."""

    data_type = models.CharField(max_length=16, choices=CustomFieldType.choices)
    # SELECT: the options offered, in order.
    options = models.JSONField(default=list, blank=True)
    # MONETARY: the currency of a value entered without one (ISO 4217).
    default_currency = models.CharField(max_length=3, blank=True)
    # What extraction may fill in: "total" (the document's total), or blank for nothing.
    extract_from = models.CharField(max_length=32, blank=True)

    class Meta(TaxonomyEntry.Meta):
        constraints = _unique_names("custom_field")


class CustomFieldValue(models.Model):
    """One document's value of one custom field, in the column of its type, so filters and
    sorts compare numbers as numbers and dates as dates (each has an index with the field)."""

    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="custom_values")
    field = models.ForeignKey(CustomField, on_delete=models.CASCADE, related_name="values")
    # TEXT, URL and SELECT; LONG_TEXT in value_long_text, which no index holds.
    value_text = models.CharField(max_length=2048, null=True, blank=True)  # noqa: DJ001  NULL: no value of this type
    value_long_text = models.TextField(null=True, blank=True)  # noqa: DJ001  as value_text
    value_int = models.BigIntegerField(null=True, blank=True)
    # DECIMAL and MONETARY (with value_currency).
    value_decimal = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    value_currency = models.CharField(max_length=3, blank=True)
    value_date = models.DateField(null=True, blank=True)
    value_bool = models.BooleanField(null=True, blank=True)
    value_document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="linked_from"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "field"], name="one_value_per_field")]
        # The document ends each key, so a filter's subquery of document ids is read from
        # the index alone (an index-only scan).
        indexes = [
            models.Index(fields=["field", "value_text", "document"], name="custom_value_text"),
            models.Index(fields=["field", "value_int", "document"], name="custom_value_int"),
            models.Index(fields=["field", "value_decimal", "document"], name="custom_value_decimal"),
            models.Index(fields=["field", "value_date", "document"], name="custom_value_date"),
        ]

    def __str__(self) -> str:
        return f"{self.field} of document {self.document_id}"
