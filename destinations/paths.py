"""Remote paths: a destination's folder and folder template, filled in for one document.

A template such as ``{year}/{document_type}/{filename}`` names where a document goes,
below the destination's folder. Without ``{filename}`` it names a folder and the file
keeps its own name inside it; an empty template puts the file straight into the folder.

The template and the folder are written by people who configure destinations and are
checked when a destination is saved (``folder_template_validate``, ``folder_validate``):
only the placeholders below, no ``..``, no control characters. The values come from
documents, which is to say from whoever sent them, so every value becomes one harmless
path segment (``segment``): a correspondent called ``../../etc`` stays a folder name
inside the destination's folder.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator
from pathlib import PurePosixPath

from django.utils import timezone

from docuelevate.errors import InvalidInput
from documents.models import Document
from documents.organise.storage_paths import document_download_name

PLACEHOLDERS = (
    "year",
    "month",
    "day",
    "document_type",
    "correspondent",
    "title",
    "filename",
    "owner",
)
# What an empty value becomes, so no path has an empty folder (``2024//x.pdf``).
EMPTY_VALUE = "unknown"
# Bytes of one path segment: file systems and most servers allow 255; room is left for
# a " (2)" a rename may add and for the temporary suffix of protocols that rename.
MAX_SEGMENT_BYTES = 200
MAX_TEMPLATE_LENGTH = 500
# Path separators and what Windows, SMB and cloud drives refuse in a name.
_UNSAFE = re.compile(r'[/\\<>:"|?*]')
_FORMATTER = string.Formatter()


def folder_template_validate(template: str) -> set[str]:
    """Refuse (InvalidInput) a template with an unknown placeholder or an unsafe folder;
    return the placeholders it uses."""
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput(f"The folder template is longer than {MAX_TEMPLATE_LENGTH} characters.")
    literal_text = []
    fields: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        raise InvalidInput(
            "The folder template has an unmatched { or }; write placeholders as {year}, "
            "and a brace itself as {{ or }}."
        ) from None
    for literal, field, spec, conversion in parsed:
        literal_text.append(literal)
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = (
                "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            raise InvalidInput(
                f"The folder template uses {shown}, which is not a placeholder; use "
                + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
                + "."
            )
        fields.add(field)
    _check_folder_text("".join(literal_text), what="The folder template")
    return fields


def folder_validate(folder: str) -> str:
    """The destination's base folder, normalised (``a/b``, no leading or trailing ``/``)."""
    _check_folder_text(folder, what="The folder")
    return "/".join(part for part in folder.split("/") if part)


def _check_folder_text(text: str, *, what: str) -> None:
    if any(unicodedata.category(character).startswith("C") for character in text):
        raise InvalidInput(f"{what} contains control characters.")
    if "\\" in text:
        raise InvalidInput(f"{what} contains a backslash; separate folders with /.")
    if any(part.strip() in {".", ".."} for part in text.split("/")):
        raise InvalidInput(f"{what} contains a . or .. folder; name folders plainly.")


def segment(value: str, *, keep_suffix: bool = False) -> str:
    """``value`` as one safe path segment: no separators, control characters or reserved
    characters, no leading or trailing dots and spaces, at most MAX_SEGMENT_BYTES bytes
    (``keep_suffix`` keeps a file's extension when shortening), never empty."""
    text = unicodedata.normalize("NFC", value)
    text = "".join(character for character in text if not unicodedata.category(character).startswith("C"))
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text or set(text) <= {"_", "."}:
        return EMPTY_VALUE
    return _shortened(text, keep_suffix=keep_suffix)


def _shortened(text: str, *, keep_suffix: bool) -> str:
    if len(text.encode()) <= MAX_SEGMENT_BYTES:
        return text
    suffix = PurePosixPath(text).suffix if keep_suffix else ""
    if len(suffix.encode()) > 16:
        suffix = ""
    stem = text[: len(text) - len(suffix)] if suffix else text
    budget = MAX_SEGMENT_BYTES - len(suffix.encode())
    # Cut by bytes without splitting a character in two.
    stem = stem.encode()[:budget].decode(errors="ignore").rstrip(" .")
    return (stem or EMPTY_VALUE) + suffix


def template_values(document: Document) -> dict[str, str]:
    """The placeholders' values for ``document``, each already one safe segment.

    Dates are the document's own date when the metadata found one, else the day it was
    taken in (in TIME_ZONE).
    """
    day = document.document_date or timezone.localdate(document.created_at)
    values = {
        "year": f"{day.year:04d}",
        "month": f"{day.month:02d}",
        "day": f"{day.day:02d}",
        "document_type": document.document_type_name,
        "correspondent": document.correspondent_name,
        "title": document.document_title,
        "filename": delivered_filename(document),
        "owner": document.owner.get_username(),
    }
    return {name: segment(value, keep_suffix=name == "filename") for name, value in values.items()}


def delivered_filename(document: Document) -> str:
    """The name a delivered file gets: the readable one downloads carry
    (``2024-03-12_Invoice.pdf``), whatever FILENAME_FORMAT names it in the storage."""
    name = document_download_name(document) if document.processed_file else ""
    return segment(name or f"{document.uuid.hex}.pdf", keep_suffix=True)


def remote_path(*, folder: str, template: str, document: Document) -> str:
    """Where ``document`` goes: ``folder`` joined with the filled-in ``template``.

    Raises InvalidInput for a template that ``folder_template_validate`` refuses (a row
    saved before the rules, or edited around the services).
    """
    fields = folder_template_validate(template)
    values = template_values(document)
    rendered = template.format_map(values)
    parts = [_shortened(part.strip(), keep_suffix=True) for part in rendered.split("/") if part.strip()]
    # Values cannot make a dot folder (``segment`` strips dots); checked again all the same.
    parts = [EMPTY_VALUE if part in {".", ".."} else part for part in parts]
    if "filename" not in fields:
        parts.append(values["filename"])
    return "/".join([*(part for part in folder_validate(folder).split("/") if part), *parts])


def renamed_candidates(path: str, *, limit: int) -> Iterator[str]:
    """``path``, then ``name (2).pdf``, ``name (3).pdf`` … up to ``limit`` names in all."""
    yield path
    pure = PurePosixPath(path)
    for number in range(2, limit + 1):
        name = f"{pure.stem} ({number}){pure.suffix}"
        yield str(pure.with_name(name)) if pure.parent != PurePosixPath(".") else name
