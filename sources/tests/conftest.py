"""Fixtures for source tests: a private document storage and a watched folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents.tests.conftest import document_storage  # noqa: F401 - a fixture
from sources.models import Source, SourceKind
from sources.services import source_create


@pytest.fixture
def watched(tmp_path: Path, document_storage: Path, operator) -> Path:  # noqa: F811
    """A folder to drop files in, outside WORKDIR."""
    folder = tmp_path / "scans"
    folder.mkdir()
    return folder


@pytest.fixture
def make_watch_source(watched: Path):
    def make(**settings) -> Source:
        return source_create(
            kind=SourceKind.WATCH,
            owner=None,
            name=f"Scans {Source.objects.count() + 1}",
            settings={"path": str(watched), "settle_seconds": 0, **settings},
        )

    return make
