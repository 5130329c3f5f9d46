"""Benchmark: what converting without network costs, against plain LibreOffice, in one run.

    .venv/bin/python bench/conversion.py [--rounds 3]

Converts the corpus's OpenDocument file and an HTML page made from its text file three
ways, alternating in each round:

- plain: ``soffice --headless --convert-to pdf`` with one profile kept between runs, as a
  user converting by hand would (the baseline);
- pipeline: DocuElevate's converter as the worker runs it, with references taken out, a
  fresh profile per document, a bare environment and a network namespace of its own;
- unsandboxed: the same converter with ``CONVERTER_SANDBOX=none``, to single out what the
  namespace itself costs.

Prints the median seconds per file of each and the ratios pipeline/plain and
pipeline/unsandboxed. The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import html
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOCUELEVATE_CORPUS", PROJECT_DIR.parent / "shared" / "corpus"))
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("WORKDIR", tempfile.mkdtemp(prefix="bench-conversion-"))


def inputs(scratch: Path) -> list[tuple[Path, str]]:
    page = scratch / "linn.html"
    text = html.escape((CORPUS / "linn.txt").read_text())
    page.write_text(f"<html><body><pre>{text}</pre></body></html>")
    return [(CORPUS / "tagged.odt", "application/vnd.oasis.opendocument.text"), (page, "text/html")]


def plain(files: list[tuple[Path, str]], profile: Path, out: Path) -> float:
    started = time.perf_counter()
    for path, _mime in files:
        subprocess.run(
            ["soffice", "--headless", f"-env:UserInstallation={profile.as_uri()}",
             "--convert-to", "pdf", "--outdir", str(out), str(path)],
            check=True, capture_output=True,
        )  # fmt: skip
    return time.perf_counter() - started


def pipeline(files: list[tuple[Path, str]], out: Path, *, sandbox: str) -> float:
    from django.conf import settings

    from documents.pipeline.converters.libreoffice import LibreOfficeConverter

    settings.CONVERTER_SANDBOX = sandbox
    converter = LibreOfficeConverter(timeout=300)
    started = time.perf_counter()
    for path, mime in files:
        scratch = Path(tempfile.mkdtemp(dir=out))
        converter.to_pdf(source=path, destination=scratch / "out.pdf", mime_type=mime, scratch=scratch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from documents.pipeline.isolation import network_isolation

    print(f"isolation: {network_isolation().reason}")
    timings: dict[str, list[float]] = {"plain": [], "pipeline": [], "unsandboxed": []}
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as folder:
        scratch = Path(folder)
        files = inputs(scratch)
        profile = scratch / "profile"
        plain(files, profile, scratch)  # the user's profile exists before the first timed run
        for _round in range(args.rounds):
            timings["plain"].append(plain(files, profile, scratch) / len(files))
            timings["pipeline"].append(pipeline(files, scratch, sandbox="namespace") / len(files))
            timings["unsandboxed"].append(pipeline(files, scratch, sandbox="none") / len(files))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, value in medians.items():
        print(f"{name:>12}: {value:.2f} s per file (median of {args.rounds})")
    print(f"pipeline / plain:       {medians['pipeline'] / medians['plain']:.2f}")
    print(f"pipeline / unsandboxed: {medians['pipeline'] / medians['unsandboxed']:.2f}")


if __name__ == "__main__":
    main()
