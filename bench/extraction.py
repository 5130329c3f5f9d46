"""Benchmark: how many fields the rules extractor gets right on a labelled set of documents.

    .venv/bin/python bench/extraction.py [--verbose] [--only de0] [--text-only] [--ocr-cache DIR]

The set is ``bench/extraction_set/``: one file per document, written the way the organisation
lays it out (letterhead, address block, date line, subject, body, totals, footer), with its
labels above a ``---`` line. Documents labelled ``scanned: yes`` are rendered to a PDF here
(fpdf2), rasterised at 200 dpi (pdftoppm), turned by a fraction of a degree and speckled
(Pillow), and OCRed by the pipeline's own tesseract engine with ``eng+deu+fra``; the extractor
sees the OCR text, errors and all. The others are given to the extractor as they are.

A field is right when (``none`` as a label means the document has no such field, and then
only "nothing found" is right):

- type: the canonical type (documents.metadata.base.DOCUMENT_TYPES) equals the label;
- date: the document date equals the label (the letter's own date, not due or period dates);
- correspondent: equal after normalising both: case, accents, punctuation and "&"/"and",
  and legal-form words (GmbH, AG, Co, KG, e.V., SA, SARL, SAS, Ltd, Inc, plc, ...) ignored;
- total: the ``total`` field's value and currency equal the label. Before ``total`` existed
  the extractor's first amount (which it sorted totals-first) stands in for it;
- reference: equal ignoring case and white space;
- language: the ISO 639-1 code equals the label.

Prints accuracy per field and overall; ``--verbose`` lists every miss with expected vs found.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
SET_DIR = PROJECT_DIR / "bench" / "extraction_set"
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("WORKDIR", tempfile.mkdtemp(prefix="bench-extraction-"))

FIELDS = ("type", "date", "correspondent", "total", "reference", "language")
OCR_LANGUAGES = "eng+deu+fra"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_LEGAL_FORMS = {
    "gmbh", "mbh", "ggmbh", "ag", "se", "kg", "kgaa", "ohg", "gbr", "ug", "eg", "ev", "ek", "co", "sa",
    "sarl", "sas", "sasu", "eurl", "ltd", "limited", "inc", "llc", "llp", "plc", "corp", "corporation",
    "company",
}  # fmt: skip


@dataclass(frozen=True)
class Labelled:
    name: str
    labels: dict[str, str]
    text: str

    @property
    def scanned(self) -> bool:
        return self.labels.get("scanned") == "yes"


def load_set(only: str | None) -> list[Labelled]:
    documents = []
    for path in sorted(SET_DIR.glob("*.txt")):
        if only and only not in path.name:
            continue
        head, _, text = path.read_text(encoding="utf-8").partition("\n---\n")
        labels = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        documents.append(Labelled(path.stem, labels, text))
    return documents


def render_scan(document: Labelled, scratch: Path) -> Path:
    """A PDF of one greyscale page image, as a scanner would deliver the printed document."""
    from fpdf import FPDF
    from PIL import Image, ImageFilter

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=8.5)
    for line in document.text.splitlines():
        pdf.cell(0, 4.2, line, new_x="LMARGIN", new_y="NEXT")
    printed = scratch / f"{document.name}.pdf"
    pdf.output(str(printed))
    subprocess.run(
        ["pdftoppm", "-r", "200", "-gray", "-png", "-singlefile", str(printed), str(scratch / document.name)],
        check=True,
    )
    rng = random.Random(document.name)  # noqa: S311 - noise, not secrets: the same "scan" every run
    page = Image.open(scratch / f"{document.name}.png").convert("L")
    page = page.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    pixels = page.load()
    assert pixels is not None
    width, height = page.size
    for _ in range(width * height // 400):  # dust and toner specks
        pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 90, 170))
    page = page.filter(ImageFilter.GaussianBlur(0.6))
    scan = scratch / f"{document.name}-scan.pdf"
    page.save(scan, "PDF", resolution=200.0)
    return scan


def ocr_text(document: Labelled, cache: Path | None) -> str:
    key = hashlib.sha256(f"{OCR_LANGUAGES}\n{document.text}".encode()).hexdigest()[:20]
    cached = cache / f"{document.name}-{key}.txt" if cache else None
    if cached and cached.exists():
        return cached.read_text(encoding="utf-8")
    from documents.pipeline.ocr.tesseract import TesseractEngine
    from documents.pipeline.pdf import page_texts

    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as directory:
        scratch = Path(directory)
        engine = TesseractEngine(languages=OCR_LANGUAGES, jobs=1, timeout=300)
        destination = scratch / "ocr.pdf"
        outcome = engine.ocr(
            source=render_scan(document, scratch), destination=destination, pages=[1], replace_text=False,
            scratch=scratch,
        )  # fmt: skip
        text = outcome.text if outcome.text is not None else "\n".join(page_texts(destination))
    if cached:
        cached.write_text(text, encoding="utf-8")
    return text


def normalised_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name.casefold().replace("&", " and "))
    plain = "".join(char for char in plain if not unicodedata.combining(char))
    plain = re.sub(r"\b(e)\.\s?([vkg])\.", r"\1\2", plain)  # "e. V." and "e.K." are one word
    words = re.findall(r"[a-z0-9]+", plain)
    return " ".join(word for word in words if word not in _LEGAL_FORMS)


def found_fields(result: Any) -> dict[str, str]:
    """The extractor's answer for each field, as text comparable with the labels."""
    total = getattr(result, "total", None)
    if not hasattr(result, "total"):  # before the field existed: the first (totals-first) amount
        total = result.amounts[0] if result.amounts else None
    document_date: date | None = result.document_date
    return {
        "type": result.document_type or "none",
        "date": document_date.isoformat() if document_date else "none",
        "correspondent": result.correspondent or "none",
        "total": f"{total.value} {total.currency}" if total else "none",
        "reference": result.reference_number or "none",
        "language": result.language or "none",
    }


def is_right(field: str, expected: str, found: str) -> bool:
    if expected == "none" or found == "none":
        return expected == found
    if field == "correspondent":
        return normalised_name(expected) == normalised_name(found)
    if field == "total":
        (expected_value, expected_currency), (found_value, found_currency) = expected.split(), found.split()
        return Decimal(expected_value) == Decimal(found_value) and expected_currency == found_currency
    if field == "reference":
        return re.sub(r"\s+", "", expected).casefold() == re.sub(r"\s+", "", found).casefold()
    return expected == found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list every miss, expected vs found")
    parser.add_argument("--only", help="only documents whose file name contains this")
    parser.add_argument("--text-only", action="store_true", help="skip the scanned documents")
    parser.add_argument("--ocr-cache", type=Path, help="keep OCR text here between runs")
    args = parser.parse_args()

    import django

    django.setup()
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # fpdf2's font subsetting chatters
    from documents.metadata.rules import RulesExtractor

    if args.ocr_cache:
        args.ocr_cache.mkdir(parents=True, exist_ok=True)
    extractor = RulesExtractor()
    right = dict.fromkeys(FIELDS, 0)
    counted = dict.fromkeys(FIELDS, 0)
    misses = []
    documents = [d for d in load_set(args.only) if not (args.text_only and d.scanned)]
    for document in documents:
        text = ocr_text(document, args.ocr_cache) if document.scanned else document.text
        found = found_fields(extractor.extract(text=text, original_filename=f"{document.name}.pdf"))
        for field in FIELDS:
            expected = document.labels[field]
            counted[field] += 1
            if is_right(field, expected, found[field]):
                right[field] += 1
            else:
                miss = f"{document.name:34} {field:13} expected {expected!r:42} found {found[field]!r}"
                misses.append(miss)

    scanned = sum(d.scanned for d in documents)
    print(f"{len(documents)} documents ({scanned} scanned, OCR {OCR_LANGUAGES})")
    for field in FIELDS:
        share = right[field] / counted[field] if counted[field] else 0.0
        print(f"  {field:14} {right[field]:3}/{counted[field]:<3} {share:6.1%}")
    total_right, total_counted = sum(right.values()), sum(counted.values())
    print(f"  {'overall':14} {total_right:3}/{total_counted:<3} {total_right / max(total_counted, 1):6.1%}")
    if args.verbose and misses:
        print("\nMisses:")
        print("\n".join(misses))


if __name__ == "__main__":
    main()
