"""Document rows for tests that need a row, not a file or a run of the pipeline."""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.tests.factories import UserFactory
from documents.models import Correspondent, Document, DocumentStatus, DocumentType
from documents.organise.mapping import entry_for_name


class DocumentFactory(DjangoModelFactory):
    """A completed PDF of 1 KB; pass ``owner`` and whatever else the test is about.

    Its file names point nowhere: a test that reads the stored file ingests one instead.
    """

    class Meta:
        model = Document

    owner = factory.SubFactory(UserFactory)
    original_filename = factory.Sequence(lambda n: f"document-{n}.pdf")
    # Unique per row, so no two made here are duplicates of each other by accident.
    filehash = factory.Faker("sha256")
    file_size = 1024
    mime_type = "application/pdf"
    original_file = factory.LazyAttribute(lambda document: f"originals/{document.filehash}")
    status = DocumentStatus.COMPLETED

    @classmethod
    def _build(cls, model_class: type[Document], *args: object, **kwargs: Any) -> Document:
        return super()._build(model_class, *args, **with_entries(kwargs, owner_id=kwargs["owner"].pk))

    @classmethod
    def _create(cls, model_class: type[Document], *args: object, **kwargs: Any) -> Document:
        return super()._create(model_class, *args, **with_entries(kwargs, owner_id=kwargs["owner"].pk))


def with_entries(fields: dict[str, Any], *, owner_id: int) -> dict[str, Any]:
    """``fields`` with a type or correspondent named as text, as extraction finds it, turned
    into the entry of the owner's list by that name (made if need be; none for "")."""
    for field, entry_model in (("document_type", DocumentType), ("correspondent", Correspondent)):
        name = fields.get(field)
        if isinstance(name, str):
            fields[field] = (
                entry_for_name(entry_model, owner_id=owner_id, name=name, create=True) if name else None
            )
    return fields
