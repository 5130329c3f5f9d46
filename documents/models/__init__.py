"""The documents app's models, one module per area; imported from here by every caller."""

from documents.models.bulk import BulkAction, BulkOperation, BulkStatus
from documents.models.documents import (
    Document,
    DocumentQuerySet,
    DocumentStatus,
    FailureKind,
    LogStatus,
    LogStep,
    ProcessingLog,
    ProcessingStep,
    ResetKind,
    StepStatus,
)
from documents.models.history import ChangeOrigin, DocumentChange, Note
from documents.models.matching import OwnerMatcher
from documents.models.taxonomy import (
    Correspondent,
    CustomField,
    CustomFieldType,
    CustomFieldValue,
    DocumentType,
    StoragePath,
    Tag,
    TaxonomyEntry,
    TaxonomyQuerySet,
)

__all__ = [
    "BulkAction",
    "BulkOperation",
    "BulkStatus",
    "ChangeOrigin",
    "Correspondent",
    "CustomField",
    "CustomFieldType",
    "CustomFieldValue",
    "Document",
    "DocumentChange",
    "DocumentQuerySet",
    "DocumentStatus",
    "DocumentType",
    "FailureKind",
    "LogStatus",
    "LogStep",
    "Note",
    "OwnerMatcher",
    "ProcessingLog",
    "ProcessingStep",
    "ResetKind",
    "StepStatus",
    "StoragePath",
    "Tag",
    "TaxonomyEntry",
    "TaxonomyQuerySet",
]
