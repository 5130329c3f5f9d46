"""A quick look at scanned pages, to pay for deskew and rotation only where they are needed.

ocrmypdf's ``--deskew`` and ``--rotate-pages`` work on every page at full resolution and
together add about 60 % to the OCR time, although most scans are straight and upright.
Here a page is rendered at a low resolution and its skew measured from the horizontal
projection of its ink; a skewed page is straightened losslessly by turning its content.
Rotation is judged afterwards from the OCR text itself, since a sideways or upside-down
page yields hardly any of the common words of real text.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from documents.pipeline.inspection import PageMeasure, pdf_measure
from documents.pipeline.isolation import engine_environment, memory_capped

LOOK_DPI = 50
LOOK_MAX_MEGAPIXELS = 40
# pdftoppm renders a look in tens of megabytes; a page that needs more is not looked at.
LOOK_MEMORY_LIMIT = 512 * 1024 * 1024
MAX_SKEW_DEGREES = 8.0
# Below this the eye does not notice and tesseract does not care.
SKEW_WORTH_FIXING_DEGREES = 0.4
# A page with less ink than this is blank (or a photo without text): nothing to fix.
MIN_INK_FRACTION = 0.004
# Short words that make up a good part of any running text in the languages most
# installations read; OCR of an upside-down or sideways page contains almost none.
_COMMON_WORDS = frozenset(
    " ".join(
        (
            "the and of to in is for on with that this are be as at by from or it an not your you",
            "der die das und zu den ist von mit des sich auf für nicht ein eine dem im sie es",
            "le la les et de des du un une est pour que dans en sur au qui par pas",
            "el los las y por con una para del se il di che per non gli",
            "het een van op te dat niet met voor",
        )
    ).split()
)
_PUNCTUATION = ".,;:!?()[]\"'\u00ab\u00bb\u201e\u201c\u201d\u2018\u2019-\u2013\u2014"


@dataclass(frozen=True)
class PageLook:
    number: int
    ink: float  # fraction of dark pixels
    skew: float  # degrees the text lines deviate from horizontal

    @property
    def has_ink(self) -> bool:
        return self.ink >= MIN_INK_FRACTION

    @property
    def needs_deskew(self) -> bool:
        return self.has_ink and abs(self.skew) >= SKEW_WORTH_FIXING_DEGREES


def look_at_pages(
    pdf: Path, pages: list[int], scratch: Path, *, measures: dict[int, PageMeasure] | None = None
) -> list[PageLook]:
    """Render each listed page small and measure its ink and skew.

    Pages whose images hold more than LOOK_MAX_MEGAPIXELS are not looked at: decoding
    them costs seconds, and no scanner makes such pages of text. ``measures`` are the
    pages' measures when the caller has them (documents.pipeline.inspection).
    """
    if measures is None:
        with pikepdf.open(pdf) as document:
            measures = {measure.number: measure for measure in pdf_measure(document, pages)}
    looks = []
    for number in pages:
        measure = measures.get(number)
        if measure is None or measure.image_pixels > LOOK_MAX_MEGAPIXELS * 1_000_000:
            looks.append(PageLook(number=number, ink=1.0, skew=0.0))
            continue
        prefix = scratch / f"look-{number}"
        command = [
            "pdftoppm", "-r", str(LOOK_DPI), "-gray", "-aa", "no", "-aaVector", "no",
            "-f", str(number), "-l", str(number), "-singlefile", "-png", str(pdf), str(prefix),
        ]  # fmt: skip
        try:
            subprocess.run(
                memory_capped(command, LOOK_MEMORY_LIMIT),
                check=True,
                capture_output=True,
                timeout=120,
                env=engine_environment(scratch),
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            # Only a look: OCR reads the page as it is.
            looks.append(PageLook(number=number, ink=1.0, skew=0.0))
            continue
        with Image.open(prefix.with_suffix(".png")) as image:
            ink = np.asarray(image.convert("L")) < 128
        prefix.with_suffix(".png").unlink()
        looks.append(PageLook(number=number, ink=float(ink.mean()), skew=estimate_skew(ink)))
    return looks


def estimate_skew(ink: np.ndarray) -> float:
    """The angle that lines the ink up best with the rows, coarse then fine.

    Text lines give the row sums of a straight page sharp peaks and gaps; the sum of
    squared differences between neighbouring rows is largest when the lines are level.
    """
    if ink.mean() < MIN_INK_FRACTION:
        return 0.0
    image = Image.fromarray((ink * 255).astype(np.uint8))

    def sharpness(angle: float) -> float:
        rotated = np.asarray(image.rotate(angle, resample=Image.Resampling.NEAREST), dtype=np.float64)
        rows = rotated.sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    coarse = max(np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 0.01, 1.0), key=sharpness)
    fine = max(np.arange(coarse - 1.0, coarse + 1.01, 0.1), key=sharpness)
    return round(float(fine), 1)


def looks_turned(text: str) -> bool:
    """Whether OCR output is a page of text read sideways or upside down.

    Such output has words but hardly any of the common short words every running text
    has. Pages with almost no text (pictures, blank pages) are not suspected: turning them
    would find nothing either. A false "yes" (a table of figures, an unlisted language)
    only costs a second look with rotation.
    """
    tokens = [token.strip(_PUNCTUATION).lower() for token in text.split()]
    tokens = [token for token in tokens if token]
    if len(tokens) < 8:
        return False
    common = sum(1 for token in tokens if token in _COMMON_WORDS)
    return common / len(tokens) < 0.04


def straighten_pages(source: Path, destination: Path, angles: dict[int, float]) -> None:
    """Turn the content of each listed page by its skew angle, losslessly.

    Instead of re-rendering the scan (what ``--deskew`` does, at full resolution), the
    page's drawing instructions are wrapped in a rotation about the page centre: the image
    stays byte for byte as scanned, the page shows it level, and OCR reads it level.
    """
    with pikepdf.open(source) as pdf:
        for number, angle in angles.items():
            page = pdf.pages[number - 1]
            left, bottom, right, top = (float(value) for value in page.mediabox)
            centre_x, centre_y = (left + right) / 2, (bottom + top) / 2
            cosine, sine = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            shift_x = centre_x - cosine * centre_x + sine * centre_y
            shift_y = centre_y - sine * centre_x - cosine * centre_y
            matrix = f"q {cosine:.6f} {sine:.6f} {-sine:.6f} {cosine:.6f} {shift_x:.4f} {shift_y:.4f} cm\n"
            page.contents_add(pikepdf.Stream(pdf, matrix.encode()), prepend=True)
            page.contents_add(pikepdf.Stream(pdf, b"\nQ\n"), prepend=False)
        pdf.save(destination)
