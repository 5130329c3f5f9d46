"""OCR with Azure AI Document Intelligence (the ``read`` model).

The service returns text, not a PDF: the document becomes searchable in DocuElevate, and
the PDF itself keeps the pages as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from documents.pipeline.azure_ocr import AzureOcrError, AzureReadClient
from documents.pipeline.base import StepTemporarilyFailed
from documents.pipeline.ocr import OcrOutcome


class AzureEngine:
    name = "azure"

    def ocr(
        self, *, source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome:
        client = AzureReadClient(
            endpoint=settings.AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT or "",
            api_key=settings.AZURE_DOCUMENT_INTELLIGENCE_KEY or "",
            timeout=max(settings.STEP_TIMEOUT - 30, 10),
        )
        try:
            result = client.read_pdf(source)
        except AzureOcrError as exc:
            raise StepTemporarilyFailed(f"Azure Document Intelligence: {exc}") from None
        shutil.copyfile(source, destination)
        return OcrOutcome(
            message="Text read by Azure Document Intelligence (the PDF keeps no text layer)",
            searchable=False,
            text=result.text,
        )
