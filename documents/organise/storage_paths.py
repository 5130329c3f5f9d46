"""Filename templates of processed files: FILENAME_FORMAT, or a document's storage path.

A template such as ``{created_year}/{correspondent}/{title}`` names the processed file
(folders and name, ``.pdf`` added) inside the document's own folder of the storage. It is
checked when saved (only the placeholders below, no ``..``, no control characters), and
every value from a document becomes one harmless path segment (destinations.paths.segment):
a title of ``../../etc`` stays a name.
"""

from __future__ import annotations

import string

from django.utils import timezone

from docuelevate.errors import InvalidInput
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
