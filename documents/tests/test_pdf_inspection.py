"""Pages and images are measured from the PDF's dictionaries before anything renders them;
what is over MAX_IMAGE_PIXELS is refused with the reason, whatever the file does to hide it."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from unittest import mock

import pikepdf
import pytest

from documents.models import FailureKind
from documents.pipeline.base import StepInputTooLarge
from documents.pipeline.inspection import MAX_CONTENT_BYTES, pages_large_raster, pdf_large_image, pdf_measure
from documents.pipeline.ocr import EngineRefusedDocument, EngineRefusedTooLarge
from documents.pipeline.ocr.tesseract import OCR_MEMORY_LIMIT, TesseractEngine
from documents.pipeline.pdf import check_pdf
from documents.tests.conftest import pdf_drawing_image, pdf_with_page_box


def write(tmp_path: Path, content: bytes, name: str = "input.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def save(pdf: pikepdf.Pdf) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def form(pdf: pikepdf.Pdf, content: bytes, **xobjects: pikepdf.Object) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, content)
    stream.update(
        pikepdf.Dictionary(Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form, BBox=[0, 0, 612, 792])
    )
    stream.Resources = pikepdf.Dictionary(
        XObject=pikepdf.Dictionary({f"/{name}": value for name, value in xobjects.items()})
    )
    return pdf.make_indirect(stream)


def image_xobject(pdf: pikepdf.Pdf, width: object, height: object) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, b"\0" * 8)
    stream.update(pikepdf.Dictionary(
        Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=width, Height=height,
        BitsPerComponent=8, ColorSpace=pikepdf.Name.DeviceGray,
    ))  # fmt: skip
    return pdf.make_indirect(stream)


def test_a_one_kilobyte_pdf_with_a_35000_pixel_square_image_is_refused_before_any_decoding(tmp_path):
    content = pdf_drawing_image(35_000, 35_000)
    assert len(content) < 4096  # 150 MB of pixels, twice Flate-compressed

    # Read from dictionaries, never inflated: 150 MB decoded would show in the test's time.
    with pytest.raises(StepInputTooLarge) as refused:
        check_pdf(write(tmp_path, content))

    assert refused.value.kind == FailureKind.TOO_LARGE
    assert refused.value.message == (
        "Page 1 holds an image of 35000 x 35000 pixels, more than 100000000 pixels "
        "(MAX_IMAGE_PIXELS); refused as a possible decompression bomb."
    )


def test_the_image_limit_follows_the_setting_and_a_normal_scan_passes(tmp_path, samples, settings):
    assert check_pdf(samples / "scan.pdf") == 1
    assert check_pdf(write(tmp_path, pdf_drawing_image(9_000, 9_000))) == 1  # 81 MP, under 100 MP

    settings.MAX_IMAGE_PIXELS = 50_000_000
    with pytest.raises(StepInputTooLarge, match=r"10000 x 10000 pixels, more than 50000000 pixels"):
        check_pdf(write(tmp_path, pdf_drawing_image(10_000, 10_000)))


def test_images_are_found_inside_nested_forms_and_a_form_that_draws_itself_is_followed_once(tmp_path):
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    huge = image_xobject(pdf, 30_000, 30_000)
    inner = form(pdf, b"q 612 0 0 792 0 0 cm /Huge Do Q /Inner Do", Huge=huge)
    inner.Resources.XObject.Inner = inner  # a reference loop: the form draws itself
    outer = form(pdf, b"q 0.5 0 0 0.5 0 0 cm /Inner Do Q", Inner=inner)
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Outer=outer))
    page.Contents = pikepdf.Stream(pdf, b"/Outer Do")
    path = write(tmp_path, save(pdf))

    with pytest.raises(StepInputTooLarge, match=r"Page 1 holds an image of 30000 x 30000 pixels"):
        check_pdf(path)
    with pikepdf.open(path) as opened:
        (measure,) = pdf_measure(opened)
    assert measure.walked
    assert measure.largest_image == (30_000, 30_000)
    # Drawn at half the page's size through the outer form's matrix: 30,000 pixels over 4.25 inches.
    assert measure.image_dpi == pytest.approx(30_000 / 4.25)


def test_a_page_of_200_by_200_inches_is_not_rendered_for_ocr_and_no_engine_starts(tmp_path):
    path = write(tmp_path, pdf_with_page_box(14_400, 14_400))
    assert check_pdf(path) == 1  # a large page alone is no reason to refuse: thumbnails crop it

    with pikepdf.open(path) as opened:
        reason = pages_large_raster(pdf_measure(opened))
    assert reason == (
        "Page 1 (200 x 200 inches) would be rendered for OCR at 400 dpi as 80000 x 80000 "
        "pixels, more than 100000000 pixels (MAX_IMAGE_PIXELS); it was not rendered."
    )

    engine = TesseractEngine(languages="eng", jobs=1, timeout=60)
    with mock.patch("subprocess.run") as run, pytest.raises(EngineRefusedTooLarge) as refused:
        engine.ocr(
            source=path, destination=tmp_path / "out.pdf", pages=[1], replace_text=False, scratch=tmp_path
        )
    run.assert_not_called()
    assert refused.value.message == reason
    assert refused.value.kind == FailureKind.TOO_LARGE
    assert isinstance(refused.value, EngineRefusedDocument)  # a cloud engine configured next may read it


def test_a_small_image_drawn_tiny_makes_ocr_render_the_whole_page_at_its_resolution(tmp_path):
    # 4,000 pixels in a tenth of an inch: ocrmypdf would render the letter page at 40,000 dpi.
    path = write(tmp_path, pdf_drawing_image(4_000, 4_000, drawn=(7.2, 7.2)))
    assert check_pdf(path) == 1
    with pikepdf.open(path) as opened:
        (measure,) = pdf_measure(opened)
    assert measure.ocr_dpi == pytest.approx(40_000)
    assert "would be rendered for OCR at 40000 dpi" in (pages_large_raster([measure]) or "")


def test_an_inline_image_counts_like_any_other(tmp_path):
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    page.Contents = pikepdf.Stream(
        pdf,
        b"q 612 0 0 792 0 0 cm BI /W 20000 /H 20000 /BPC 1 /CS /G /F /Fl ID "
        + zlib.compress(b"\0" * 64)
        + b" EI Q",
    )
    with pikepdf.open(io.BytesIO(save(pdf))) as opened:
        reason = pages_large_raster(pdf_measure(opened))
    assert "holds an image of 20000 x 20000 pixels" in (reason or "")


@pytest.mark.parametrize(
    ("width", "height", "box"),
    [
        ("wide", 100, [0, 0, 612, 792]),
        (-40_000, -40_000, [0, 0, "A4", 792]),
        (10**15, 10**15, [0, 0, 10**12, -(10**12)]),
        (pikepdf.Array([5]), pikepdf.Dictionary(), pikepdf.Name("/Letter")),
        (100, 100, [-(10**15), -(10**15), 10**15, 10**15]),
    ],
)
def test_malformed_sizes_and_boxes_count_as_absent_and_never_crash(tmp_path, width, height, box):
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    page.obj.MediaBox = box
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_xobject(pdf, width, height)))
    page.Contents = pikepdf.Stream(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do /Missing Do Q Q Q 1 2 cm /Im0")
    path = write(tmp_path, save(pdf))

    with pikepdf.open(path) as opened:
        (measure,) = pdf_measure(opened)
        large = pdf_large_image(opened)
    if width == 10**15:
        # Absurd but finite: refused, never overflowing into a wrong answer.
        assert "MAX_IMAGE_PIXELS" in (large or "")
    elif width == 100:
        # A page of 2 x 10^15 points, and one whose size overflows a float: too large to render.
        assert "MAX_IMAGE_PIXELS" in (pages_large_raster([measure]) or "")
        measure.width = measure.height = 1e308
        assert "as more pixels than a number can hold, more than" in (pages_large_raster([measure]) or "")
    else:
        assert large is None
        assert measure.largest_image == (0, 0)


def test_a_content_stream_that_inflates_past_the_bound_is_not_parsed_and_the_page_is_judged_by_its_images(
    tmp_path,
):
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_xobject(pdf, 14_000, 14_000)))
    bomb = pikepdf.Stream(pdf, b"")
    bomb.write(zlib.compress(b"q Q " * (MAX_CONTENT_BYTES // 4 + 1), 9), filter=pikepdf.Name.FlateDecode)
    page.Contents = pdf.make_indirect(bomb)
    path = write(tmp_path, save(pdf))

    with pikepdf.open(path) as opened:
        (measure,) = pdf_measure(opened)
    assert not measure.walked
    # Unwalked, its image is taken to fill the page: 14,000 pixels over 8.5 inches.
    assert measure.image_dpi == pytest.approx(14_000 / 8.5)
    assert "MAX_IMAGE_PIXELS" in (pages_large_raster([measure]) or "")


def test_thousands_of_pages_sharing_their_resources_are_measured_in_bounded_time(tmp_path, settings):
    settings.MAX_PAGES = 5_000
    pdf = pikepdf.new()
    shared = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_xobject(pdf, 2_550, 3_300)))
    resources = pdf.make_indirect(shared)
    contents = pdf.make_indirect(pikepdf.Stream(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do Q"))
    for _ in range(5_000):
        page = pdf.add_blank_page(page_size=(612, 792))
        page.obj.Resources = resources
        page.obj.Contents = contents
    path = write(tmp_path, save(pdf))

    assert check_pdf(path) == 5_000
    with pikepdf.open(path) as opened:
        measures = pdf_measure(opened)
    assert pages_large_raster(measures) is None
    assert {round(measure.image_dpi) for measure in measures} == {300}


def test_every_ocr_process_runs_with_its_address_space_capped(tmp_path, samples):
    engine = TesseractEngine(languages="eng", jobs=1, timeout=60)
    with mock.patch("subprocess.run") as run:
        run.return_value.returncode = 0
        engine._run(
            samples / "scan.pdf",
            tmp_path / "out.pdf",
            [1],
            replace_text=False,
            rotate=False,
            scratch=tmp_path,
        )
    command = run.call_args.args[0]
    assert command[:3] == ["prlimit", f"--as={OCR_MEMORY_LIMIT}", "--"]
    assert command[command.index("--max-image-mpixels") + 1] == "100.0"
    # Tesseract reads a page of at most 16 megapixels; the PDF keeps the page as it was.
    assert command[command.index("--max-ocr-image-mpixels") + 1] == "16"
    assert command[command.index("--jobs") + 1] == "1"
    assert run.call_args.kwargs["env"]["MALLOC_ARENA_MAX"] == "2"


@pytest.mark.parametrize(("side", "jobs"), [(2_550, 2), (8_000, 1)])
def test_two_pages_over_100_megapixels_together_are_read_one_at_a_time(tmp_path, side, jobs):
    # Drawn over a letter page: 300 dpi (8 megapixels rendered), or 941 dpi (83 megapixels).
    with pikepdf.open(io.BytesIO(pdf_drawing_image(side, side))) as pdf:
        pdf.pages.append(pdf.pages[0])
        path = write(tmp_path, save(pdf))
    engine = TesseractEngine(languages="eng", jobs=2, timeout=60)
    with (
        mock.patch.object(TesseractEngine, "_run") as run,
        mock.patch("documents.pipeline.ocr.tesseract.look_at_pages", return_value=[]),
        mock.patch("documents.pipeline.ocr.tesseract.page_texts", return_value=["", ""]),
    ):
        engine.ocr(
            source=path, destination=tmp_path / "out.pdf", pages=[1, 2], replace_text=False, scratch=tmp_path
        )
    assert run.call_args.kwargs["jobs"] == jobs
