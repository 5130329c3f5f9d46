"""Document rows for tests that need a row, not a file or a run of the pipeline."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from accounts.tests.factories import UserFactory
from documents.models import Document, DocumentStatus


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
