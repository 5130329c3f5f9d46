"""OCR with ocrmypdf and tesseract, page by page: pages with text keep it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from documents.pipeline.base import StepFailed
from documents.pipeline.ocr import OcrOutcome

# ocrmypdf's exit codes that mean "this input will never work", with what to tell the user.
_PERMANENT_EXIT_CODES = {
    2: "The PDF could not be read by the OCR engine",
    4: "The OCR engine produced an invalid PDF",
    6: "The PDF already has text",
    8: "The PDF is encrypted; remove the password and upload it again",
}


class TesseractEngine:
    name = "tesseract"

    def __init__(self, *, languages: str, jobs: int, timeout: float) -> None:
        self.languages = languages
        self.jobs = jobs
        self.timeout = timeout

    def command(self, *, source: Path, destination: Path, pages: list[int], replace_text: bool) -> list[str]:
        return [
            sys.executable, "-m", "ocrmypdf",
            # --skip-text keeps a page's original image and adds text; --force-ocr rasterises
            # the page, which only a page with a broken text layer needs.
            "--force-ocr" if replace_text else "--skip-text",
            "--pages", ",".join(str(page) for page in pages),
            "--language", self.languages,
            "--rotate-pages", "--deskew",
            # Plain PDF without recompression: the archive keeps the original images, and
            # PDF/A conversion and optimisation would cost a third more time per document.
            "--output-type", "pdf", "--optimize", "0",
            "--jobs", str(self.jobs),
            "--quiet",
            str(source), str(destination),
        ]  # fmt: skip

    def ocr(
        self, *, source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome:
        # Tesseract's own OpenMP threads fight over the cores; parallelism comes from pages.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TMPDIR": str(scratch)}
        try:
            result = subprocess.run(
                self.command(source=source, destination=destination, pages=pages, replace_text=replace_text),
                capture_output=True,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(f"OCR did not finish within {int(self.timeout)} seconds.") from None
        if result.returncode == 0:
            return OcrOutcome(message="OCR with tesseract")
        detail = _last_line(result.stderr)
        reason = _PERMANENT_EXIT_CODES.get(result.returncode, "OCR failed")
        raise StepFailed(f"{reason} (ocrmypdf exit {result.returncode}: {detail}).")


def _last_line(output: bytes) -> str:
    lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
