"""Office files to PDF through a Gotenberg server (``GOTENBERG_URL``).

Gotenberg runs LibreOffice in its own container, out of this process's reach: it must sit
on a network without egress (docs/security.md), and ``productioncheck`` asks it whether it
fetches. The file it gets has had its external references taken out first all the same.
The HTTP client is ``documents/integrations/gotenberg.py``; this converter decides what
its failures mean for the document.
"""

from __future__ import annotations

from pathlib import Path

from documents.integrations.gotenberg import GotenbergClient, GotenbergError, GotenbergFailure
from documents.pipeline.base import StepFailed, StepTemporarilyFailed
from documents.pipeline.converters.office_input import prepare_office_input


class GotenbergConverter:
    name = "gotenberg"

    def __init__(self, client: GotenbergClient) -> None:
        self.client = client

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        prepared = prepare_office_input(source=source, mime_type=mime_type, scratch=scratch)
        try:
            self.client.convert(
                source=prepared.path,
                # The prepared file's extension already names the import filter for this type.
                upload_name=f"document{prepared.path.suffix}",
                mime_type=mime_type,
                destination=destination,
            )
        except GotenbergError as exc:
            if exc.kind is GotenbergFailure.REFUSED:
                raise StepFailed(exc.message) from None
            if exc.kind is GotenbergFailure.BUSY:
                raise StepTemporarilyFailed(f"Gotenberg answered {exc.status}; will retry.") from None
            raise StepTemporarilyFailed(exc.message) from None
        return prepared.note
