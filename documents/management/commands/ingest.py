"""``manage.py ingest PATH…``: put files or folders into DocuElevate from the shell."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from docuelevate.errors import ApplicationError
from documents.models import Document, DocumentStatus
from documents.pipeline.runner import pipeline_run_sync
from documents.services import document_ingest
from documents.storage import read_chunks

FINAL_STATUSES = {DocumentStatus.COMPLETED, DocumentStatus.FAILED, DocumentStatus.DUPLICATE}


class Command(BaseCommand):
    help = "Ingest files (or every file in folders) as documents."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--owner", help="username of the owner (default: the first operator)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--wait", action="store_true", help="wait until the worker has finished each document"
        )
        mode.add_argument("--sync", action="store_true", help="run the pipeline in this process, no worker")
        parser.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits in all")
        parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = self._owner(options["owner"])
        files = list(self._files(options["paths"]))
        results = [self._ingest(path, owner, sync=options["sync"]) for path in files]
        if options["wait"]:
            self._wait(results, deadline=time.monotonic() + options["timeout"])
        for result in results:
            self._report(result, as_json=options["json"])
        if any(result["status"] == DocumentStatus.FAILED or result["error"] for result in results):
            raise SystemExit(1)

    def _owner(self, username: str | None) -> User:
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user named {username!r}.")
            return user
        operator = User.objects.filter(is_superuser=True).order_by("pk").first()
        if operator is None:
            raise CommandError("No operator account exists; pass --owner or run bootstrap_admin first.")
        return operator

    def _files(self, paths: list[Path]) -> list[Path]:
        found: list[Path] = []
        for path in paths:
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(f"{path} is neither a file nor a folder.")
        return found

    def _ingest(self, path: Path, owner: User, *, sync: bool) -> dict[str, Any]:
        result: dict[str, Any] = {"path": str(path), "document_id": None, "status": None, "error": None}
        try:
            with path.open("rb") as handle:
                ingested = document_ingest(
                    owner=owner,
                    chunks=read_chunks(handle),
                    filename=path.name,
                    source="ingest",
                    enqueue=not sync,
                )
        except ApplicationError as exc:
            result["error"] = exc.message
            return result
        document = ingested.document
        if sync and not ingested.is_duplicate:
            document = pipeline_run_sync(document_id=document.pk)
        result.update(document_id=document.pk, status=document.status, error=document.error or None)
        return result

    def _wait(self, results: list[dict[str, Any]], *, deadline: float) -> None:
        waiting = {
            r["document_id"]: r for r in results if r["document_id"] and r["status"] not in FINAL_STATUSES
        }
        while waiting and time.monotonic() < deadline:
            time.sleep(0.5)
            for document in Document.objects.filter(pk__in=waiting):
                if document.status in FINAL_STATUSES:
                    waiting.pop(document.pk).update(status=document.status, error=document.error or None)
        for result in waiting.values():
            result["error"] = "Still processing when --wait gave up."

    def _report(self, result: dict[str, Any], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            status = result["status"] or "refused"
            line = f"{result['path']}: document {result['document_id']} {status} {result['error'] or ''}"
            self.stdout.write(line.rstrip())
