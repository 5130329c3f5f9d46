"""Search test data: documents carrying the real text of the corpus, indexed for real."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from documents.models import Document, DocumentStatus, Tag
from search.services import index_document

CORPUS = Path(
    os.environ.get("DOCUELEVATE_CORPUS", Path(__file__).resolve().parents[2].parent / "shared" / "corpus")
)


@pytest.fixture(scope="session")
def corpus_text(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Text of corpus documents: linn.txt as given, francais.pdf through real OCR once."""
    if not (CORPUS / "linn.txt").exists():
        pytest.skip(f"the corpus is not at {CORPUS}")
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (make test installs it)")
    sidecar = tmp_path_factory.mktemp("ocr") / "francais.txt"
    command = [sys.executable, "-m", "ocrmypdf", "-l", "eng+deu", "--sidecar", str(sidecar)]
    command += ["--output-type", "none", "--quiet", str(CORPUS / "francais.pdf"), "-"]
    subprocess.run(command, check=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}, timeout=300)
    return {"linn": (CORPUS / "linn.txt").read_text(), "francais": sidecar.read_text()}


@pytest.fixture
def make_document(owner: User) -> Callable[..., Document]:
    """A completed, indexed document; keyword arguments set its fields, ``tags`` its tags."""

    def make(*, tags: tuple[str, ...] = (), index: bool = True, **fields: Any) -> Document:
        values: dict[str, Any] = {
            "owner": owner,
            "original_filename": "document.pdf",
            "filehash": os.urandom(32).hex(),
            "file_size": 1000,
            "mime_type": "application/pdf",
            "original_file": "originals/x",
            "status": DocumentStatus.COMPLETED,
            "document_date": datetime.date(2024, 3, 1),
            **fields,
        }
        document = Document.objects.create(**values)
        document.tags.set([Tag.objects.get_or_create(name=name)[0] for name in tags])
        if index:
            index_document(document_id=document.pk)
        return document

    return make
