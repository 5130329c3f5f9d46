"""``manage.py reprocess``: run documents through the pipeline again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from docuelevate.errors import ApplicationError
from documents.models import Document, DocumentStatus
from documents.pipeline.runner import pipeline_run_sync
from documents.pipeline.steps import STEP_NAMES
from documents.services import document_reprocess, document_retry_step


class Command(BaseCommand):
    help = "Reprocess one document (--id), every failed one (--failed), or from one step (--step)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", type=int, dest="document_id")
        which.add_argument("--failed", action="store_true", help="every document whose processing failed")
        parser.add_argument(
            "--step", choices=STEP_NAMES, help="re-run from this step instead of from the start"
        )
        parser.add_argument("--force-ocr", action="store_true", help="OCR every page, even pages with text")
        parser.add_argument("--sync", action="store_true", help="run in this process instead of the worker")

    def handle(self, *args: Any, **options: Any) -> None:
        documents = Document.objects.exclude(status=DocumentStatus.DUPLICATE)
        if options["document_id"] is not None:
            documents = documents.filter(pk=options["document_id"])
            if not documents.exists():
                raise CommandError(f"No document {options['document_id']} (or it is a duplicate).")
        else:
            documents = documents.filter(status=DocumentStatus.FAILED)
        for document in documents.order_by("pk"):
            try:
                if options["step"]:
                    document_retry_step(
                        document=document,
                        step_name=options["step"],
                        force_ocr=options["force_ocr"],
                        enqueue=not options["sync"],
                    )
                else:
                    document_reprocess(
                        document=document, force_ocr=options["force_ocr"], enqueue=not options["sync"]
                    )
            except ApplicationError as exc:
                self.stderr.write(f"document {document.pk}: {exc.message}")
                continue
            if options["sync"]:
                document = pipeline_run_sync(document_id=document.pk, force_ocr=options["force_ocr"])
            else:
                document.refresh_from_db()
            self.stdout.write(f"document {document.pk}: {document.status} {document.error}".rstrip())
