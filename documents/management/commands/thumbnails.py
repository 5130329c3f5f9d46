"""``manage.py thumbnails``: make the first-page pictures that documents filed before
thumbnails existed (or whose rendering failed) do not have."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents import storage
from documents.models import Document, DocumentStatus
from documents.pipeline.thumbnails import thumbnail_make


class Command(BaseCommand):
    help = (
        "Make the thumbnail of each processed document that has none (--missing), of every one "
        "again (--all), or of one (--id). Runs in this process, one document at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--missing", action="store_true", help="processed documents without a thumbnail")
        which.add_argument(
            "--all", action="store_true", help="every processed document, replacing its thumbnail"
        )
        which.add_argument("--id", type=int, dest="document_id", help="one document")

    def handle(self, *args: Any, **options: Any) -> None:
        documents = (
            Document.objects.exclude(processed_file="")
            .exclude(status=DocumentStatus.DUPLICATE)
            .only("pk", "uuid", "processed_file")
            .order_by("pk")
        )
        if options["document_id"] is not None:
            documents = documents.filter(pk=options["document_id"])
            if not documents.exists():
                raise CommandError(f"No processed document {options['document_id']}.")
        made = failed = skipped = 0
        for document in documents.iterator(chunk_size=500):
            if options["missing"] and storage.exists(storage.thumbnail_name(document.uuid)):
                skipped += 1
                continue
            if not storage.exists(document.processed_file):
                self.stderr.write(f"document {document.pk}: its processed PDF is missing")
                failed += 1
                continue
            with storage.scratch_dir() as scratch:
                reason = thumbnail_make(document=document, scratch=scratch)
            if reason is None:
                made += 1
                self.stdout.write(f"document {document.pk}: thumbnail made")
            else:
                failed += 1
                self.stderr.write(f"document {document.pk}: no thumbnail ({reason})")
        self.stdout.write(f"{made} made, {failed} failed, {skipped} already had one")
