"""OCR with ocrmypdf and tesseract, page by page: pages with text keep it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pikepdf
from django.conf import settings

from documents.pipeline.base import StepFailed
from documents.pipeline.inspection import PageMeasure, pages_large_raster, pdf_measure
from documents.pipeline.isolation import engine_environment, memory_capped
from documents.pipeline.ocr import EngineRefusedTooLarge, OcrOutcome
from documents.pipeline.ocr.pages import look_at_pages, looks_turned, straighten_pages
from documents.pipeline.pdf import page_texts

# The address space of each process of an OCR run (ocrmypdf, Ghostscript, every tesseract),
# so that a page the inspection could not measure fails the run instead of the worker.
OCR_MEMORY_LIMIT = 1280 * 1024 * 1024
# Tesseract reads a page downsampled to this many megapixels (about 400 dpi on A4 or
# Letter, more than it needs); the PDF keeps the page as it was. Tesseract took 900 MiB
# reading an 81-megapixel page at full size, and about 16 bytes a pixel in general.
OCR_IMAGE_MEGAPIXELS = 16
# ocrmypdf's own Python holds a page it rendered whole while downsampling it (about 6
# bytes a pixel: 744 MiB for its tree on a page of 100 megapixels, 1,413 MiB for two at once).
# When the two largest pages to OCR render to more than this together, they are OCRed one
# at a time (a scan of 81 megapixels beside one of A4 still goes two at a time).
TWO_PAGES_PIXELS = 100_000_000

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

    def command(
        self,
        *,
        source: Path,
        destination: Path,
        pages: list[int],
        replace_text: bool,
        rotate: bool,
        jobs: int | None = None,
    ) -> list[str]:
        return [
            sys.executable, "-m", "ocrmypdf",
            # --skip-text keeps a page's original image and adds text; --force-ocr rasterises
            # the page, which only a page with a broken text layer needs.
            "--force-ocr" if replace_text else "--skip-text",
            "--pages", ",".join(str(page) for page in pages),
            "--language", self.languages,
            *(["--rotate-pages"] if rotate else []),
            # Plain PDF without recompression: the archive keeps the original images, and
            # PDF/A conversion and optimisation would cost a third more time per document.
            "--output-type", "pdf", "--optimize", "0",
            "--jobs", str(jobs or self.jobs),
            # ocrmypdf's own decompression-bomb limit on the pages it rendered, in step with ours.
            "--max-image-mpixels", str(settings.MAX_IMAGE_PIXELS / 1_000_000),
            "--max-ocr-image-mpixels", str(OCR_IMAGE_MEGAPIXELS),
            "--quiet",
            str(source), str(destination),
        ]  # fmt: skip

    def ocr(
        self, *, source: Path, destination: Path, pages: list[int], replace_text: bool, scratch: Path
    ) -> OcrOutcome:
        """OCR the pages, straightening only skewed ones and turning only those that need it.

        Skewed pages are straightened losslessly before OCR. Pages whose text then reads
        as if turned get a second pass with ocrmypdf's rotation, and replace their
        first-pass versions; everything else pays for neither.
        """
        measures = _measure(source, pages)
        if reason := pages_large_raster(list(measures.values())):
            raise EngineRefusedTooLarge(reason)
        looks = look_at_pages(source, pages, scratch, measures=measures)
        rasters = sorted(
            (measure.raster_pixels(measure.ocr_dpi) for measure in measures.values()), reverse=True
        )
        jobs = 1 if sum(rasters[:2]) > TWO_PAGES_PIXELS or len(measures) < len(pages) else self.jobs
        skewed = {look.number: look.skew for look in looks if look.needs_deskew}
        if skewed:
            straightened = scratch / "straightened.pdf"
            straighten_pages(source, straightened, skewed)
            source = straightened
        self._run(
            source, destination, pages, replace_text=replace_text, rotate=False, scratch=scratch, jobs=jobs
        )
        texts = page_texts(destination)
        turned = [number for number in pages if looks_turned(texts[number - 1])]
        if turned:
            second = scratch / "rotated.pdf"
            self._run(
                source, second, turned, replace_text=replace_text, rotate=True, scratch=scratch, jobs=jobs
            )
            _replace_pages(destination, second, turned)
        notes = ["OCR with tesseract"]
        if skewed:
            notes.append("straightened page(s) " + ", ".join(f"{n} ({a:+.1f}°)" for n, a in skewed.items()))
        if turned:
            notes.append(f"checked rotation of page(s) {_numbers(turned)}")
        return OcrOutcome(message="; ".join(notes))

    def _run(
        self,
        source: Path,
        destination: Path,
        pages: list[int],
        *,
        replace_text: bool,
        rotate: bool,
        scratch: Path,
        jobs: int | None = None,
    ) -> None:
        # Tesseract's own OpenMP threads fight over the cores; parallelism comes from pages.
        env = engine_environment(scratch, OMP_THREAD_LIMIT="1")
        command = self.command(
            source=source,
            destination=destination,
            pages=pages,
            replace_text=replace_text,
            rotate=rotate,
            jobs=jobs,
        )
        try:
            result = subprocess.run(
                memory_capped(command, OCR_MEMORY_LIMIT),
                capture_output=True,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(f"OCR did not finish within {int(self.timeout)} seconds.") from None
        if result.returncode != 0:
            detail = _last_line(result.stderr)
            reason = _PERMANENT_EXIT_CODES.get(result.returncode, "OCR failed")
            raise StepFailed(f"{reason} (ocrmypdf exit {result.returncode}: {detail}).")


def _measure(source: Path, pages: list[int]) -> dict[int, PageMeasure]:
    """The pages to OCR, measured before anything renders them (documents.pipeline.inspection)."""
    try:
        with pikepdf.open(source) as pdf:
            return {measure.number: measure for measure in pdf_measure(pdf, pages)}
    except (pikepdf.PdfError, ValueError, TypeError, RecursionError):
        # What the inspection cannot read is left to OCR_MEMORY_LIMIT.
        return {}


def _replace_pages(target_path: Path, source_path: Path, numbers: list[int]) -> None:
    with (
        pikepdf.open(target_path, allow_overwriting_input=True) as target,
        pikepdf.open(source_path) as source,
    ):
        for number in numbers:
            target.pages[number - 1] = source.pages[number - 1]
        target.save(target_path)


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(number) for number in numbers)


def _last_line(output: bytes) -> str:
    lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
