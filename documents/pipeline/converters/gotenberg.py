"""Office files to PDF through a Gotenberg server (``GOTENBERG_URL``).

Gotenberg runs LibreOffice in its own container, out of this process's reach: it must sit
on a network without egress (docs/security.md), and ``productioncheck`` asks it whether it
fetches. The file it gets has had its external references taken out first all the same.
"""

from __future__ import annotations

from pathlib import Path

import requests

from documents.pipeline.base import StepFailed, StepTemporarilyFailed
from documents.pipeline.converters.office_input import EXTENSION_BY_MIME, prepare_office_input


class GotenbergConverter:
    name = "gotenberg"

    def __init__(self, *, base_url: str, timeout: float) -> None:
        self.endpoint = base_url.rstrip("/") + "/forms/libreoffice/convert"
        self.timeout = timeout

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        prepared = prepare_office_input(source=source, mime_type=mime_type, scratch=scratch)
        upload_name = f"document{EXTENSION_BY_MIME.get(mime_type, '')}"
        try:
            with prepared.path.open("rb") as handle:
                response = requests.post(
                    self.endpoint,
                    files={"files": (upload_name, handle, mime_type)},
                    timeout=self.timeout,
                    stream=True,
                )
        except requests.RequestException as exc:
            raise StepTemporarilyFailed(f"Gotenberg is not reachable ({exc.__class__.__name__}).") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise StepTemporarilyFailed(f"Gotenberg answered {response.status_code}; will retry.")
        if response.status_code != 200:
            raise StepFailed(f"Gotenberg could not convert the file (HTTP {response.status_code}).")
        with destination.open("wb") as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
        return prepared.note
