"""OCR with Azure AI Document Intelligence (the ``read`` model).

The service returns text, not a PDF: the document becomes searchable in DocuElevate, and
the PDF itself keeps the pages as they were. The HTTP client is
``documents/integrations/azure.py``; this engine decides what its failures mean here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from documents.integrations.azure import AzureError, AzureFailure, AzureReadClient
from documents.pipeline.base import StepTemporarilyFailed
from documents.pipeline.ocr import EngineRefusedDocument, OcrOutcome


class AzureEngine:
    name = "azure"

    def __init__(self, client: AzureReadClient) -> None:
        self.client = client

    def ocr(
        self, *, source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome:
        try:
            result = self.client.read_pdf(source)
        except AzureError as exc:
            message = f"Azure Document Intelligence: {exc.message}"
            if exc.kind is AzureFailure.DOCUMENT_REFUSED:
                # Asking Azure again gives the same answer; another engine may still read it.
                raise EngineRefusedDocument(message) from None
            # Down, throttled, slow or misconfigured: worth another try later.
            raise StepTemporarilyFailed(message) from None
        shutil.copyfile(source, destination)
        return OcrOutcome(
            message="Text read by Azure Document Intelligence (the PDF keeps no text layer)",
            searchable=False,
            text=result.text,
        )
