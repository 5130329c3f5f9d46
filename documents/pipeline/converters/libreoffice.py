"""Office, OpenDocument, RTF, text, HTML and Markdown to PDF with headless LibreOffice."""

from __future__ import annotations

from pathlib import Path

from documents.pipeline.base import StepFailed
from documents.pipeline.converters.office_input import prepare_office_input
from documents.pipeline.isolation import run_isolated

# LibreOffice's address space, measured with real conversions under prlimit (7.4, two malloc
# arenas, a fresh profile each): a one-page ODT converted from 240 MiB, yet aborted at 352-384
# MiB and converted reliably only from 400 MiB; a 700-page DOCX and an ODT holding a
# 25-megapixel photo converted within 512 MiB. Without the two arenas it needs 512 MiB to
# start. The cap is more than twice that, as much as OCR gets: an ordinary document never
# meets it, a hostile one stops there.
LIBREOFFICE_MEMORY_LIMIT = 1280 * 1024 * 1024


class LibreOfficeConverter:
    name = "libreoffice"

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        prepared = prepare_office_input(source=source, mime_type=mime_type, scratch=scratch)
        out_dir = scratch / "libreoffice-out"
        # Each conversion gets its own profile: parallel conversions never share a lock.
        profile = scratch / "libreoffice-profile"
        command = [
            "soffice", "--headless", "--norestore", "--nolockcheck", "--nodefault",
            f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to", "pdf", "--outdir", str(out_dir), str(prepared.path),
        ]  # fmt: skip
        run_isolated(
            command,
            timeout=self.timeout,
            what="LibreOffice",
            home=scratch,
            memory_limit=LIBREOFFICE_MEMORY_LIMIT,
        )
        produced = out_dir / f"{prepared.path.stem}.pdf"
        if not produced.exists() or produced.stat().st_size == 0:
            # LibreOffice also ends this way (exit 0, no PDF) when loading the file passes
            # its memory cap, so the reason names the cap too.
            raise StepFailed(
                "LibreOffice could not convert the file to PDF (damaged or unsupported content, "
                f"or content that needs more than the {LIBREOFFICE_MEMORY_LIMIT // (1024 * 1024)} MiB "
                "of memory a conversion may use)."
            )
        produced.replace(destination)
        return prepared.note
