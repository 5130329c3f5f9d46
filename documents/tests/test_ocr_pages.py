"""The quick look that decides which pages need straightening or turning."""

from __future__ import annotations

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from documents.pipeline.ocr.pages import estimate_skew, look_at_pages, looks_turned, straighten_pages


def text_like_page(angle: float) -> np.ndarray:
    """Ink of a page with lines of 'words', turned by ``angle`` degrees."""
    image = Image.new("L", (420, 560), 0)
    draw = ImageDraw.Draw(image)
    for row in range(40, 520, 18):
        for column in range(30, 390, 46):
            draw.rectangle([column, row, column + 36, row + 7], fill=255)
    return np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR)) > 127


@pytest.mark.parametrize("angle", [-4.0, -1.5, 0.0, 2.0, 6.0])
def test_skew_is_measured_as_the_turn_that_levels_the_lines(angle):
    assert estimate_skew(text_like_page(angle)) == pytest.approx(-angle, abs=0.3)


def test_a_blank_page_has_no_skew():
    assert estimate_skew(np.zeros((500, 400), dtype=bool)) == 0.0


def test_straightening_levels_the_page_without_touching_the_scan(samples, engines, tmp_path):
    (before,) = look_at_pages(samples / "skewed-scan.pdf", [1], tmp_path)
    assert before.needs_deskew
    straightened = tmp_path / "straight.pdf"
    straighten_pages(samples / "skewed-scan.pdf", straightened, {1: before.skew})
    (after,) = look_at_pages(straightened, [1], tmp_path)
    assert abs(after.skew) < 0.4
    with pikepdf.open(samples / "skewed-scan.pdf") as original, pikepdf.open(straightened) as result:
        image_a = next(iter(original.pages[0].get_images().values()))
        image_b = next(iter(result.pages[0].get_images().values()))
        assert image_a.read_raw_bytes() == image_b.read_raw_bytes()  # the scan itself is untouched


def test_a_straight_scan_needs_no_deskew(samples, engines, tmp_path):
    (look,) = look_at_pages(samples / "scan.pdf", [1], tmp_path)
    assert look.has_ink
    assert not look.needs_deskew


def test_running_text_does_not_look_turned():
    text = "The ChronoScribe is a 32 track MIDI sequence recorder for the studio and for the stage."
    assert not looks_turned(text)
    assert not looks_turned("Der Vertrag gilt ab dem ersten Januar und ist für beide Seiten bindend.")


def test_ocr_of_an_upside_down_page_looks_turned():
    assert looks_turned("ɹǝpɹoɔǝɹ ǝɔuǝnbǝs IPIW ʞɔɐɹʇ ᄅƐ 'ɹǝɔuǝnbǝSuuᴉ˥ 1ʇ ss|ue| ur ,pnq A1 lo")
    assert looks_turned("Jepiooay eouenbes JGIN NOeIL ze Jeouenbesuul] ey} SI SIUL 'ainjoniys pue uolouny")


def test_a_page_with_hardly_any_text_is_not_suspected():
    assert not looks_turned("Fig. 3")
