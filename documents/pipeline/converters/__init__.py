"""Engines that turn a non-PDF file into a PDF, one module each, behind one interface."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from django.conf import settings

from documents.filetypes import FileKind


class Converter(Protocol):
    """Writes ``destination`` (a PDF) from ``source``; raises StepFailed with the reason.

    Returns a note for the processing log about what the conversion changed (for example
    references it left out), or an empty string.
    """

    name: str

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str: ...


def converter_for(kind: FileKind) -> Converter:
    """The engine for a kind of file: images locally, office files locally or via Gotenberg.

    A mail is rendered to one HTML page here and that page converted by the office engine,
    so it runs under the same isolation as any office file.
    """
    if kind is FileKind.MAIL:
        from documents.pipeline.converters.mail import MailConverter

        return MailConverter(office=converter_for(FileKind.OFFICE))
    if kind is FileKind.IMAGE:
        from documents.pipeline.converters.images import ImageConverter

        return ImageConverter()
    if kind is FileKind.OFFICE and settings.GOTENBERG_URL:
        from documents.integrations.gotenberg import GotenbergClient
        from documents.pipeline.converters.gotenberg import GotenbergConverter

        return GotenbergConverter(GotenbergClient.from_settings())
    if kind is FileKind.OFFICE:
        from documents.pipeline.converters.libreoffice import LibreOfficeConverter

        return LibreOfficeConverter(timeout=settings.CONVERT_TIMEOUT)
    raise ValueError(f"no converter for {kind}")
