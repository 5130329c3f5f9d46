"""Search test data: documents made for each test, indexed for real."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from documents.models import Document, Tag
from documents.tests.factories import DocumentFactory
from search.services import index_document


@pytest.fixture
def make_document(owner: User) -> Callable[..., Document]:
    """A completed, indexed document; keyword arguments set its fields, ``tags`` its tags."""

    def make(*, tags: tuple[str, ...] = (), index: bool = True, **fields: Any) -> Document:
        values: dict[str, Any] = {
            "owner": owner,
            "original_filename": "document.pdf",
            "file_size": 1000,
            "document_date": datetime.date(2024, 3, 1),
            **fields,
        }
        document: Document = DocumentFactory.create(**values)
        document.tags.set([Tag.objects.get_or_create(name=name)[0] for name in tags])
        if index:
            index_document(document_id=document.pk)
        return document

    return make
