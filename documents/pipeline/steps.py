"""The five steps every document goes through, in order.

convert -> ocr -> extract_metadata -> embed_metadata -> finalize. Each reads the
document's newest PDF (``Document.working_file``), stores what it made under
``tmp/<uuid>/`` and points ``working_file`` at it, so any step can run again later.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import ClassVar

import pikepdf
from django.utils import timezone

from documents import storage
from documents.filetypes import FileKind, kind_of
from documents.metadata import configured_extractor
from documents.metadata.base import ExtractedMetadata
from documents.models import Document
from documents.organise.mapping import metadata_apply
from documents.organise.matching import matching_apply
from documents.organise.storage_paths import document_filed_stem
from documents.pipeline.active_content import strip_active_content
from documents.pipeline.base import (
    StepContext,
    StepFailed,
    StepInputMissing,
    StepResult,
    StepTemporarilyFailed,
)
from documents.pipeline.converters import converter_for
from documents.pipeline.ocr import EngineRefusedDocument, OcrOutcome, configured_engines
from documents.pipeline.pdf import check_pdf, is_garbled, page_needs_ocr, page_texts
from documents.pipeline.thumbnails import thumbnail_make
from documents.selectors import document_own_processed_files


def _working_pdf(document: Document) -> str:
    if not document.working_file or not storage.exists(document.working_file):
        raise StepInputMissing("The intermediate PDF of this document is gone; processing starts over.")
    return document.working_file


def _save(document: Document, *fields: str) -> None:
    document.save(update_fields=[*fields, "updated_at"])


class ConvertStep:
    """Any supported file becomes a PDF; a PDF is checked and passes unchanged."""

    name: ClassVar[str] = "convert"

    def run(self, context: StepContext) -> StepResult:
        document = context.document
        kind = kind_of(document.mime_type)
        if kind is FileKind.EMPTY or document.file_size == 0:
            raise StepFailed("The file is empty.")
        if kind is None:
            raise StepFailed(f"Files of type {document.mime_type} are not supported.")
        if kind is FileKind.PDF:
            with storage.local_copy(document.original_file) as original:
                document.page_count = check_pdf(original)
            document.working_file = document.original_file
            _save(document, "page_count", "working_file")
            return StepResult(f"Already a PDF ({document.page_count} pages)", skipped=True)

        converter = converter_for(kind)
        output = context.scratch / "converted.pdf"
        with storage.local_copy(document.original_file) as original:
            note = converter.to_pdf(
                source=original, destination=output, mime_type=document.mime_type, scratch=context.scratch
            )
        document.page_count = check_pdf(output)
        document.working_file = storage.store_file(
            output, storage.artifact_name(document.uuid, "converted.pdf")
        )
        _save(document, "page_count", "working_file")
        details = "; ".join(part for part in (f"{document.page_count} pages", note) if part)
        return StepResult(f"Converted {document.mime_type} to PDF with {converter.name} ({details})")


class OcrStep:
    """Makes every page searchable: image-only pages are OCRed, pages with text are kept."""

    name: ClassVar[str] = "ocr"

    def run(self, context: StepContext) -> StepResult:
        document = context.document
        with storage.local_copy(_working_pdf(document)) as source:
            texts = page_texts(source)
            if context.force_ocr:
                pages, replace_text = list(range(1, len(texts) + 1)), True
            else:
                pages = [number for number, text in enumerate(texts, start=1) if page_needs_ocr(text)]
                replace_text = any(is_garbled(texts[number - 1]) for number in pages)
            if not pages:
                document.ocr_text = _joined(texts)
                _save(document, "ocr_text")
                return StepResult("Every page already has text; no OCR needed", skipped=True)
            output = context.scratch / "ocr.pdf"
            outcome = self._run_engines(source, output, pages, replace_text, context.scratch)

        document.ocr_text = outcome.text if outcome.text is not None else _joined(page_texts(output))
        document.working_file = storage.store_file(output, storage.artifact_name(document.uuid, "ocr.pdf"))
        _save(document, "ocr_text", "working_file")
        return StepResult(f"{outcome.message} on page(s) {_page_list(pages)} of {len(texts)}")

    @staticmethod
    def _run_engines(
        source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome:
        engines = configured_engines()
        for index, engine in enumerate(engines):
            try:
                return engine.ocr(
                    source=source,
                    destination=destination,
                    pages=pages,
                    replace_text=replace_text,
                    scratch=scratch,
                )
            except (StepTemporarilyFailed, EngineRefusedDocument):
                # A cloud engine that is down, or will not take this document, hands over
                # to the next configured one.
                if index == len(engines) - 1:
                    raise
        raise StepFailed("No OCR engine is configured (OCR_PROVIDERS).")


class ExtractMetadataStep:
    """Finds title, type, date, correspondent, amounts and more in the text."""

    name: ClassVar[str] = "extract_metadata"

    def run(self, context: StepContext) -> StepResult:
        document = context.document
        extractor = configured_extractor()
        found = extractor.extract(text=document.ocr_text, original_filename=document.original_filename)
        # What a person corrected stays as they left it (documents.organise.mapping).
        kept = set(document.user_fields or ())
        if "document_title" not in kept:
            title = found.title or Path(document.original_filename).stem or "Document"
            document.document_title = title[:255]
        if "document_date" not in kept:
            document.document_date = found.document_date
        if "language" not in kept:
            document.language = found.language or ""
        metadata_apply(document, found)
        # The owner's learned matching, where it is sure, overrides what the rules found.
        suggestions = matching_apply(document)
        document.sender = (found.sender or "")[:255]
        document.recipient = (found.recipient or "")[:255]
        document.reference_number = (found.reference_number or "")[:128]
        document.amounts = [amount.as_json() for amount in found.amounts]
        document.confidence = found.confidence
        previous = document.metadata if isinstance(document.metadata, dict) else {}
        document.metadata = {
            **found.as_metadata_json(),
            "title": document.document_title,
            "extractor": extractor.name,
            **({"suggestions": suggestions} if suggestions else {}),
            # A person who confirmed the document in the review inbox did so for good.
            **({"reviewed": previous["reviewed"]} if "reviewed" in previous else {}),
        }
        document.version += 1  # an edit made on the fields before extraction is out of date
        _save(
            document,
            "version",
            "document_title", "document_type", "document_date", "correspondent", "sender", "recipient",
            "language", "reference_number", "amounts", "confidence", "metadata",
        )  # fmt: skip
        return StepResult(_describe(found, extractor.name))


class EmbedMetadataStep:
    """Writes the metadata into the PDF itself (document info and XMP), for any PDF reader,
    and strips its active content.

    Every document passes here once its PDF is final, also a PDF that needed neither
    conversion nor OCR (whose working file is still the original: it is read, never
    written), so no processed PDF keeps a script, a launch action or an embedded file.
    """

    name: ClassVar[str] = "embed_metadata"

    def run(self, context: StepContext) -> StepResult:
        document = context.document
        tags = sorted(document.tags.values_list("name", flat=True))
        output = context.scratch / "embedded.pdf"
        with storage.local_copy(_working_pdf(document)) as source, pikepdf.open(source) as pdf:
            # update_docinfo keeps /Title, /Author, /Subject and /Keywords in step with XMP.
            with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as xmp:
                xmp["dc:title"] = document.document_title
                if document.correspondent_name:
                    xmp["dc:creator"] = [document.correspondent_name]
                if document.document_type_name:
                    xmp["dc:description"] = document.document_type_name
                if tags:
                    xmp["dc:subject"] = set(tags)
                    xmp["pdf:Keywords"] = ", ".join(tags)
                xmp["xmp:CreatorTool"] = "DocuElevate"
            removed = strip_active_content(pdf).describe()
            pdf.save(output)
        document.working_file = storage.store_file(
            output, storage.artifact_name(document.uuid, "embedded.pdf")
        )
        _save(document, "working_file")
        message = "Title, author, subject and keywords written into the PDF"
        return StepResult(f"{message}; removed {removed}" if removed else message)


class FinalizeStep:
    """Files the PDF in the document's own folder ``processed/<uuid>/``, named by its storage
    path's template, else FILENAME_FORMAT, else ``<YYYY-MM-DD_Title>.pdf``, with a JSON
    sidecar and a thumbnail of its first page.

    The folder is the document's own (``storage.processed_name``), so the name needs no check
    against other documents and two workers filing same-titled documents at once cannot meet.
    A new name is a move, made so that a kill at any moment leaves one file the database
    names: the new file and sidecar are written whole first, then the database points at
    them, then everything else in the folder goes (``storage.processed_tidy``). A killed run
    is run again by the next worker (or a retry), and that run's tidy removes what the kill
    left. A thumbnail that cannot be made is only noted: the document is filed all the same.
    """

    name: ClassVar[str] = "finalize"

    def run(self, context: StepContext) -> StepResult:
        document = context.document
        working = _working_pdf(document)
        target = storage.processed_name(document.uuid, document_filed_stem(document))
        previous = document.processed_file
        if working != target:
            with storage.local_copy(working) as source:
                local = context.scratch / "final.pdf"
                shutil.copyfile(source, local)
            storage.store_file(local, target)
        storage.store_bytes(
            json.dumps(_sidecar(document), indent=2, ensure_ascii=False).encode(),
            storage.sidecar_name(target),
        )
        document.processed_file = target
        document.working_file = target
        _save(document, "processed_file", "working_file")
        # Only now that the database names the new file may the old one go.
        storage.processed_tidy(
            document.uuid,
            keep={target, storage.sidecar_name(target), storage.thumbnail_name(document.uuid)},
        )
        own_folder = storage.processed_folder(document.uuid) + "/"
        if previous and previous != target and not previous.startswith(own_folder):
            # A flat name from before folders: removed once no other document names it.
            for name in document_own_processed_files(document=document, processed_file=previous):
                storage.delete(name)
        storage.delete_folder(storage.artifact_name(document.uuid, "").rstrip("/"))
        no_thumbnail = thumbnail_make(document=document, scratch=context.scratch)
        if no_thumbnail is not None:
            return StepResult(f"Filed as {target}; no thumbnail ({no_thumbnail})")
        return StepResult(f"Filed as {target}")


def _sidecar(document: Document) -> dict[str, object]:
    return {
        "document_id": document.pk,
        "uuid": str(document.uuid),
        "original_filename": document.original_filename,
        "filehash": document.filehash,
        "mime_type": document.mime_type,
        "page_count": document.page_count,
        "title": document.document_title,
        "document_type": document.document_type_name,
        "document_date": document.document_date.isoformat()
        if isinstance(document.document_date, date)
        else None,
        "correspondent": document.correspondent_name,
        "tags": sorted(document.tags.values_list("name", flat=True)),
        "metadata": document.metadata,
        "processed_at": timezone.now().isoformat(),
    }


def _joined(texts: list[str]) -> str:
    return "\n\n".join(text.strip() for text in texts).strip()


def _page_list(numbers: list[int]) -> str:
    return ", ".join(str(number) for number in numbers) if numbers else "none"


def _describe(found: ExtractedMetadata, extractor: str) -> str:
    parts = [f"type {found.document_type}" if found.document_type else None]
    parts.append(f"date {found.document_date.isoformat()}" if found.document_date else None)
    parts.append(f"from {found.correspondent}" if found.correspondent else None)
    return f"Metadata by {extractor}: " + (", ".join(part for part in parts if part) or "no fields found")


PIPELINE = (ConvertStep(), OcrStep(), ExtractMetadataStep(), EmbedMetadataStep(), FinalizeStep())
STEP_NAMES = tuple(step.name for step in PIPELINE)
