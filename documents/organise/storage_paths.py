"""Filename templates of processed files: FILENAME_FORMAT, or a document's storage path.

A template such as ``{created_year}/{correspondent}/{title}`` names the processed file
(folders and name, ``.pdf`` added) inside the document's own folder of the storage. It is
checked when saved (only the placeholders below, no ``..``, no control characters), and
every value from a document becomes one harmless path segment (destinations.paths.segment):
a title of ``../../etc`` stays a name.

Which template names a document's file: its storage path's, else FILENAME_FORMAT, else
none, and the file keeps the name it always had (``2024-03-12_Invoice``), which is also
the name downloads and deliveries carry whatever the template (``document_pretty_stem``).
"""

from __future__ import annotations

import string
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.utils import timezone

from docuelevate.errors import InvalidInput

if TYPE_CHECKING:
    # Only for annotations: settings.py validates FILENAME_FORMAT with this module, before
    # any model can be imported.
    from documents.models import Document

PLACEHOLDERS = (
    "created_year", "created_month", "created_day", "added_year", "added_month", "added_day",
    "document_type", "correspondent", "title", "owner", "original_name",
)  # fmt: skip
MAX_TEMPLATE_LENGTH = 500
_FORMATTER = string.Formatter()


def filename_template_validate(template: str) -> str:
    """The template, stripped of slashes at its ends; InvalidInput for anything else."""
    template = template.strip().strip("/")
    if not template:
        raise InvalidInput("A filename template needs at least one placeholder or name.")
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput(f"A filename template is at most {MAX_TEMPLATE_LENGTH} characters.")
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        raise InvalidInput("The filename template has an unmatched { or }.") from None
    literal = []
    for text, field, spec, conversion in parsed:
        literal.append(text)
        if field is not None and (field not in PLACEHOLDERS or spec or conversion):
            raise InvalidInput(
                f"The filename template uses {{{field}}}, which is not a placeholder; use "
                + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
                + "."
            )
    joined = "".join(literal)
    if any(not character.isprintable() for character in joined) or "\\" in joined:
        raise InvalidInput("The filename template contains control characters or a backslash.")
    if any(part.strip() in {".", ".."} for part in joined.split("/")):
        raise InvalidInput("The filename template contains a . or .. folder.")
    return template


def filename_render(template: str, document: Document) -> str:
    """The template filled in for ``document``, each value one safe segment (no suffix)."""
    from destinations.paths import segment

    created = document.document_date or timezone.localdate(document.created_at)
    added = timezone.localdate(document.created_at)
    values = {
        "created_year": f"{created.year:04d}", "created_month": f"{created.month:02d}",
        "created_day": f"{created.day:02d}", "added_year": f"{added.year:04d}",
        "added_month": f"{added.month:02d}", "added_day": f"{added.day:02d}",
        "document_type": document.document_type_name, "correspondent": document.correspondent_name,
        "title": document.document_title, "owner": document.owner.get_username(),
        "original_name": document.original_filename.rsplit(".", 1)[0],
    }  # fmt: skip
    safe = {name: segment(value) for name, value in values.items()}
    return "/".join(part for part in template.format(**safe).split("/") if part.strip())


def document_filing_template(document: Document) -> str:
    """The template naming ``document``'s processed file: its storage path's, else
    FILENAME_FORMAT; empty for the default name."""
    from django.conf import settings

    if document.storage_path_id is not None and document.storage_path is not None:
        return str(document.storage_path.template or "")
    return str(settings.FILENAME_FORMAT or "")


def document_pretty_stem(document: Document) -> str:
    """The readable name without suffix (``2024-03-12_Invoice``): the default stored name,
    and the name of downloads and deliveries."""
    from documents.filetypes import storage_stem

    filename = document.metadata.get("filename") if isinstance(document.metadata, dict) else None
    if not filename:
        prefix = f"{document.document_date.isoformat()}_" if document.document_date else ""
        filename = prefix + document.document_title
    return storage_stem(str(filename))


def document_download_name(document: Document) -> str:
    """The name a download or delivery of the processed PDF carries: the file's own name
    when no template names it (as filed, including the flat names from before folders),
    else the readable ``2024-03-12_Invoice.pdf`` rather than the template's last part."""
    if document.processed_file and not document_filing_template(document):
        return PurePosixPath(document.processed_file).name
    return document_pretty_stem(document) + ".pdf"


def document_filed_stem(document: Document) -> str:
    """Where ``document``'s processed file goes inside its own folder, without ``.pdf``:
    its template filled in, or the pretty name."""
    template = document_filing_template(document)
    if not template:
        return document_pretty_stem(document)
    try:
        template = filename_template_validate(template)
    except InvalidInput:
        # A row saved around the services, or a rule tightened since: the default name,
        # never a path the checks would have refused.
        return document_pretty_stem(document)
    return filename_render(template, document) or document_pretty_stem(document)
