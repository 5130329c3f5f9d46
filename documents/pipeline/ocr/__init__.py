"""OCR engines, one module each, behind one interface; ``OCR_PROVIDERS`` picks them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings

from documents.pipeline.base import StepFailed, StepInputTooLarge


@dataclass(frozen=True)
class OcrOutcome:
    """What an engine did. ``searchable`` is False when it found text but wrote no text layer."""

    message: str
    searchable: bool = True
    text: str | None = None  # set by engines whose text does not come from the output PDF


class EngineRefusedDocument(StepFailed):
    """This engine will not read this document (too large for it, a content it refuses).

    Permanent for this engine, so not retried with it; the next configured engine, if
    any, tries the document instead.
    """


class EngineRefusedTooLarge(EngineRefusedDocument, StepInputTooLarge):
    """A page this engine would render at more than MAX_IMAGE_PIXELS pixels.

    Recorded as ``too_large``; an engine that renders on its own side (Azure) may still
    read the document, so the next configured one is tried.
    """


class OcrEngine(Protocol):
    """Writes ``destination``: ``source`` with the listed pages (1-based) made searchable.

    The other pages pass unchanged. ``replace_text`` means the listed pages may carry a
    text layer that is wrong and must be replaced, not kept. Raises StepFailed (or
    StepTemporarilyFailed, or EngineRefusedDocument) with a readable reason.
    """

    name: str

    def ocr(
        self, *, source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome: ...


def configured_engines() -> list[OcrEngine]:
    """The engines in OCR_PROVIDERS order; later ones stand in when an earlier one is down."""
    engines: list[OcrEngine] = []
    for provider in settings.OCR_PROVIDERS:
        if provider == "tesseract":
            from documents.pipeline.ocr.tesseract import TesseractEngine

            engines.append(
                TesseractEngine(
                    languages=settings.TESSERACT_LANGUAGE,
                    jobs=settings.OCR_JOBS,
                    timeout=max(settings.STEP_TIMEOUT - 30, 10),
                )
            )
        elif provider == "azure":
            from documents.integrations.azure import AzureReadClient
            from documents.pipeline.ocr.azure import AzureEngine

            engines.append(AzureEngine(AzureReadClient.from_settings()))
    return engines
