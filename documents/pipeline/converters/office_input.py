"""The file an office converter is given: checked, mended and stripped of what it would load."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from documents.pipeline.converters.containers import container_is_damaged, refuse_zip_bomb, repair_container
from documents.pipeline.converters.references import neutralise_references

# The extension tells LibreOffice (and Gotenberg, which runs it) which import filter to use.
EXTENSION_BY_MIME = {
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "text/plain": ".txt",
    "text/markdown": ".txt",
    "text/csv": ".csv",
    "text/html": ".html",
}


@dataclass(frozen=True)
class OfficeInput:
    """The prepared file, and how many loadable references were taken out of it."""

    path: Path
    references_removed: int

    @property
    def note(self) -> str:
        """What the owner should read in the log about the preparation, or nothing."""
        if not self.references_removed:
            return ""
        return f"{self.references_removed} external reference(s) left out"


def prepare_office_input(*, source: Path, mime_type: str, scratch: Path) -> OfficeInput:
    """Refuse zip bombs, rebuild a damaged container, take out external references.

    The result lies in a new folder in ``scratch``, under a name whose extension picks the
    import filter; ``source`` itself is never changed.
    """
    extension = EXTENSION_BY_MIME.get(mime_type, "")
    scratch = Path(tempfile.mkdtemp(prefix="input-", dir=scratch))
    current = source
    if zipfile.is_zipfile(source):
        refuse_zip_bomb(source)
        if container_is_damaged(source):
            current = scratch / f"repaired{extension}"
            repair_container(source, current)
            refuse_zip_bomb(current)
    neutralised = scratch / f"neutralised{extension}"
    removed = neutralise_references(source=current, destination=neutralised, mime_type=mime_type)
    if removed:
        current = neutralised
    named_input = scratch / f"input{extension}"
    named_input.symlink_to(current)
    return OfficeInput(path=named_input, references_removed=removed)
