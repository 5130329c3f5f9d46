"""Measure a PDF's pages and images before anything rasterises them.

A PDF of a few kilobytes can hold an image of 35,000 x 35,000 pixels (a Flate stream of
zeros compresses about a thousandfold, twice over in two filters), or a page of 200 x 200
inches. Whatever decodes or renders it at full resolution then asks for gigabytes: ocrmypdf
renders a page at the resolution of its sharpest image (at least 400 dpi), so a one-page
PDF once took the worker's process tree to 3.6 GB before it failed. Here only dictionaries
are read (``/Width``, ``/Height``, the page boxes, the drawing operators that place images),
never image data, and every walk is bounded, because the file is hostile:

- image XObjects are found in the page's resources and in those of its form XObjects, each
  object once; a form drawn inside itself (a reference loop) is followed once, and nesting
  stops at MAX_FORM_DEPTH;
- the content streams are parsed only when their decoded size is known to stay under
  MAX_CONTENT_BYTES (counted while inflating, never from a declared length), and at most
  MAX_DRAWS images and forms are followed per page;
- numbers that are not finite, negative sizes and wrong types count as absent.

What the walk cannot see (a page over those bounds, an image in a pattern or annotation) is
left to the memory limits on the engines (``isolation.run_isolated``, ``TesseractEngine``),
which hold for any input.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf
from django.conf import settings

# ocrmypdf's VECTOR_PAGE_DPI: the least resolution it renders a page with text or drawings at.
OCR_MIN_DPI = 400.0
MAX_FORM_DEPTH = 12
MAX_DRAWS = 10_000
MAX_CONTENT_BYTES = 16 * 1024 * 1024
# Content parsed per document, all pages and forms together (qpdf parses ~100 MB/s here).
MAX_PARSED_BYTES = 256 * 1024 * 1024
# The operators that paint paths and show text: a page with them is rendered at 400 dpi at least.
DRAWING_OPERATORS = "S s f F f* B B* b b* sh Tj TJ ' \""
DRAWING = frozenset(DRAWING_OPERATORS.split())
# A graphics state stack deeper than this is not a real document (the PDF limit is 28).
MAX_STACK = 256
POINTS_PER_INCH = 72.0
DEFAULT_PAGE = (612.0, 792.0)  # US Letter, what readers assume for a page without a MediaBox
IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
UNBOUNDED = 2**63  # what a size that overflows a float counts as: more than any limit

Matrix = tuple[float, float, float, float, float, float]


@dataclass
class _Budget:
    """What a walk may still spend: images and forms followed on this page, bytes parsed;
    and the PDF that owns the streams it parses (which must outlive them)."""

    pdf: pikepdf.Pdf
    draws: int
    parsed: int

    def parse(self, content: bytes) -> bool:
        self.parsed -= len(content)
        return self.parsed >= 0


@dataclass
class PageMeasure:
    """One page: its size in inches and the images it holds and draws."""

    number: int
    width: float  # inches, UserUnit applied
    height: float
    largest_image: tuple[int, int] = (0, 0)  # width x height of its image with most pixels
    image_pixels: int = 0  # of all image XObjects in its resources together
    image_dpi: float = 0.0  # the sharpest image as drawn: pixels per inch along either side
    drawings: bool = False  # paints paths or shows text (or was not walked: assumed)
    walked: bool = True  # False when its content was over the bounds and not parsed
    seen: set[tuple[int, int]] = field(default_factory=set, repr=False)

    @property
    def largest_image_pixels(self) -> int:
        return self.largest_image[0] * self.largest_image[1]

    @property
    def ocr_dpi(self) -> float:
        """The resolution ocrmypdf renders this page at: its sharpest image's, and at least
        400 dpi when it has drawings or text, or no image at all (ocrmypdf's
        get_page_square_dpi)."""
        if self.drawings or not self.image_dpi:
            return max(OCR_MIN_DPI, self.image_dpi)
        return self.image_dpi

    def raster_pixels(self, dpi: float) -> int:
        """Pixels of the page rendered at ``dpi`` (beyond any limit when that overflows)."""
        width, height = self.width * dpi, self.height * dpi
        if not (math.isfinite(width) and math.isfinite(height)):
            return UNBOUNDED
        return math.ceil(width) * math.ceil(height)


def pdf_measure(pdf: pikepdf.Pdf, numbers: list[int] | None = None) -> list[PageMeasure]:
    """The listed pages (1-based; all by default) measured without decoding any image."""
    wanted = numbers if numbers is not None else list(range(1, len(pdf.pages) + 1))
    budget = _Budget(pdf=pdf, draws=MAX_DRAWS, parsed=MAX_PARSED_BYTES)
    return [_measure_page(pdf.pages[number - 1], number, budget) for number in wanted]


def pdf_large_image(pdf: pikepdf.Pdf) -> str | None:
    """Why the PDF is refused when an image of any page has more than MAX_IMAGE_PIXELS
    pixels, else None.

    The same limit as for an image file (converters/images.py): a picture that large is a
    possible decompression bomb wherever it comes from.
    """
    limit = settings.MAX_IMAGE_PIXELS
    shared: set[tuple[int, int]] = set()  # resources shared by many pages are read once
    for number, page in enumerate(pdf.pages, start=1):
        measure = PageMeasure(number=number, width=0.0, height=0.0, seen=shared)
        for image in _images_in_resources(_resources(page.obj), measure.seen, depth=0):
            _note_image(measure, image)
        if measure.largest_image_pixels > limit:
            width, height = measure.largest_image
            return (
                f"Page {number} holds an image of {width} x {height} pixels, more than "
                f"{limit} pixels (MAX_IMAGE_PIXELS); refused as a possible decompression bomb."
            )
    return None


def pages_large_raster(measures: list[PageMeasure]) -> str | None:
    """Why OCR may not render these pages when one of them would be more than
    MAX_IMAGE_PIXELS pixels at the resolution ocrmypdf picks for it, or holds an image (an
    inline one too) of more pixels than that, else None."""
    limit = settings.MAX_IMAGE_PIXELS
    for measure in measures:
        if measure.largest_image_pixels > limit:
            width, height = measure.largest_image
            return (
                f"Page {measure.number} holds an image of {width} x {height} pixels, more than "
                f"{limit} pixels (MAX_IMAGE_PIXELS); refused as a possible decompression bomb."
            )
        dpi = measure.ocr_dpi
        if measure.raster_pixels(dpi) > limit:
            return (
                f"Page {measure.number} ({measure.width:.4g} x {measure.height:.4g} inches) would be "
                f"rendered for OCR at {dpi:.0f} dpi as {_raster_size(measure, dpi)}, more than "
                f"{limit} pixels (MAX_IMAGE_PIXELS); it was not rendered."
            )
    return None


def _raster_size(measure: PageMeasure, dpi: float) -> str:
    width, height = measure.width * dpi, measure.height * dpi
    if not (math.isfinite(width) and math.isfinite(height)):
        return "more pixels than a number can hold"
    return f"{math.ceil(width)} x {math.ceil(height)} pixels"


def _measure_page(page: pikepdf.Page, number: int, budget: _Budget) -> PageMeasure:
    width, height = _page_size(page.obj)
    unit = _number(page.obj.get("/UserUnit")) or 1.0
    measure = PageMeasure(number=number, width=width * unit / 72, height=height * unit / 72)
    resources = _resources(page.obj)
    for image in _images_in_resources(resources, measure.seen, depth=0):
        _note_image(measure, image)
    content = _content_bytes(page.obj.get("/Contents"))
    if content is None:
        measure.walked = False
    else:
        budget.draws = MAX_DRAWS
        measure.walked = _walk(content, resources, IDENTITY, measure, depth=0, path=set(), budget=budget)
    if not measure.walked:
        measure.drawings = True
        # Unwalked, an image is assumed to fill the page: the least dpi it can be drawn at.
        for image in _images_in_resources(resources, set(), depth=0):
            size = _image_size(image)
            if size and measure.width > 0 and measure.height > 0:
                measure.image_dpi = max(measure.image_dpi, size[0] / measure.width, size[1] / measure.height)
    return measure


def _walk(
    content: bytes,
    resources: pikepdf.Dictionary | None,
    ctm: Matrix,
    measure: PageMeasure,
    *,
    depth: int,
    path: set[tuple[int, int]],
    budget: _Budget,
) -> bool:
    """Follow the images and forms ``content`` draws; False when a bound was reached."""
    if not budget.parse(content):
        return False
    try:
        with warnings.catch_warnings():
            # A broken stream is what a hostile file is; pikepdf's warnings about it would
            # only fill the log.
            warnings.simplefilter("ignore")
            # Only these operators come back ("BI ID EI" is how inline images are asked for).
            stream = pikepdf.Stream(budget.pdf, content)
            instructions = pikepdf.parse_content_stream(stream, f"q Q cm Do BI ID EI {DRAWING_OPERATORS}")
    except (pikepdf.PdfError, ValueError, TypeError):
        return False
    stack: list[Matrix] = []
    complete = True
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            image = instruction.iimage
            _note_drawn(measure, (int(image.width), int(image.height)), ctm)
            continue
        operator, operands = str(instruction.operator), instruction.operands
        if operator == "q":
            if len(stack) >= MAX_STACK:
                return False
            stack.append(ctm)
        elif operator == "Q":
            ctm = stack.pop() if stack else ctm
        elif operator == "cm":
            matrix = _matrix(operands)
            if matrix is not None:
                ctm = _multiply(matrix, ctm)
        elif operator in DRAWING:
            measure.drawings = True
        elif operator == "Do" and operands:
            budget.draws -= 1
            if budget.draws < 0:
                return False
            complete &= _draw(operands[0], resources, ctm, measure, depth=depth, path=path, budget=budget)
    return complete


def _draw(
    name: object,
    resources: pikepdf.Dictionary | None,
    ctm: Matrix,
    measure: PageMeasure,
    *,
    depth: int,
    path: set[tuple[int, int]],
    budget: _Budget,
) -> bool:
    xobjects = _dictionary(resources, "/XObject")
    if xobjects is None or not isinstance(name, pikepdf.Name):
        return True
    xobject = xobjects.get(name)
    if not isinstance(xobject, pikepdf.Stream):
        return True
    subtype = xobject.get("/Subtype")
    if subtype == pikepdf.Name.Image:
        size = _image_size(xobject)
        if size:
            _note_drawn(measure, size, ctm)
        return True
    if subtype != pikepdf.Name.Form:
        return True
    key = xobject.objgen
    if key in path or depth >= MAX_FORM_DEPTH:
        return key in path  # a loop is followed once; too deep a nesting is a bound reached
    content = _content_bytes(xobject)
    if content is None:
        return False
    matrix = _matrix(xobject.get("/Matrix")) or IDENTITY
    inner = _dictionary(xobject, "/Resources") or resources
    return _walk(
        content, inner, _multiply(matrix, ctm), measure, depth=depth + 1, path=path | {key}, budget=budget
    )


def _images_in_resources(
    resources: pikepdf.Dictionary | None, seen: set[tuple[int, int]], *, depth: int
) -> Iterator[pikepdf.Stream]:
    """Every image XObject in ``resources`` and in its forms' resources, each object once."""
    xobjects = _dictionary(resources, "/XObject")
    if xobjects is None or depth > MAX_FORM_DEPTH:
        return
    for key in list(xobjects.keys())[:MAX_DRAWS]:
        xobject = xobjects.get(key)
        if not isinstance(xobject, pikepdf.Stream):
            continue
        if xobject.is_indirect:
            if xobject.objgen in seen:
                continue
            seen.add(xobject.objgen)
        subtype = xobject.get("/Subtype")
        if subtype == pikepdf.Name.Image:
            yield xobject
        elif subtype == pikepdf.Name.Form:
            yield from _images_in_resources(_dictionary(xobject, "/Resources"), seen, depth=depth + 1)


def _note_image(measure: PageMeasure, image: pikepdf.Stream) -> None:
    size = _image_size(image)
    if size:
        measure.image_pixels += size[0] * size[1]
        if size[0] * size[1] > measure.largest_image_pixels:
            measure.largest_image = size


def _note_drawn(measure: PageMeasure, size: tuple[int, int], ctm: Matrix) -> None:
    """The resolution an image is drawn at: its pixels over the inches the matrix gives it."""
    a, b, c, d, _, _ = ctm
    drawn_width, drawn_height = math.hypot(a, b) / POINTS_PER_INCH, math.hypot(c, d) / POINTS_PER_INCH
    if size[0] * size[1] > measure.largest_image_pixels:
        measure.largest_image = size
    for pixels, inches in ((size[0], drawn_width), (size[1], drawn_height)):
        if inches > 0 and math.isfinite(pixels / inches):
            measure.image_dpi = max(measure.image_dpi, pixels / inches)


def _image_size(image: pikepdf.Object) -> tuple[int, int] | None:
    width, height = _number(image.get("/Width")), _number(image.get("/Height"))
    if not width or not height or width < 0 or height < 0:
        return None
    return int(width), int(height)


def _inherited(page: pikepdf.Dictionary, key: str) -> object:
    """A page's ``key``, or the nearest ancestor's in the page tree (MediaBox and Resources
    are inheritable); followed upwards at most 64 levels, so never round a loop."""
    node: object = page
    for _ in range(64):
        if not isinstance(node, pikepdf.Dictionary):
            return None
        value = node.get(key)
        if value is not None:
            return value
        node = node.get("/Parent")
    return None


def _resources(page: pikepdf.Dictionary) -> pikepdf.Dictionary | None:
    value = _inherited(page, "/Resources")
    return value if isinstance(value, pikepdf.Dictionary) else None


def _page_size(page: pikepdf.Dictionary) -> tuple[float, float]:
    """Width and height in points of the MediaBox (inherited from the page tree if need be)."""
    box = _inherited(page, "/MediaBox")
    if not isinstance(box, pikepdf.Array) or len(box) != 4:
        return DEFAULT_PAGE
    corners = [_number(value) for value in box]
    if any(corner is None for corner in corners):
        return DEFAULT_PAGE
    x0, y0, x1, y1 = (float(corner or 0.0) for corner in corners)
    return abs(x1 - x0), abs(y1 - y0)


def _content_bytes(contents: object) -> bytes | None:
    """A page's or form's content, decoded, or None when it is over MAX_CONTENT_BYTES or
    encoded in a way whose size cannot be bounded while decoding."""
    streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
    parts: list[bytes] = []
    left = MAX_CONTENT_BYTES
    for stream in streams[:1000]:
        if not isinstance(stream, pikepdf.Stream):
            continue
        part = _decoded_within(stream, left)
        if part is None:
            return None
        parts.append(part)
        left -= len(part)
    return b"\n".join(parts)


def _decoded_within(stream: pikepdf.Stream, limit: int) -> bytes | None:
    filters = stream.get("/Filter")
    names = list(filters) if isinstance(filters, pikepdf.Array) else [] if filters is None else [filters]
    try:
        raw = stream.read_raw_bytes()
    except pikepdf.PdfError:
        return None
    if not names:
        return raw if len(raw) <= limit else None
    if names != [pikepdf.Name.FlateDecode] or stream.get("/DecodeParms") is not None:
        # Other filters (and predictors) are rare in content streams; qpdf decodes them
        # whole, so only a small stream is handed to it.
        if len(raw) > limit // 1024:
            return None
        try:
            data = stream.read_bytes()
        except pikepdf.PdfError:
            return None
        return data if len(data) <= limit else None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        return None
    return data if len(data) <= limit else None


def _dictionary(holder: object, key: str) -> pikepdf.Dictionary | None:
    if not isinstance(holder, pikepdf.Dictionary | pikepdf.Stream):
        return None
    try:
        value = holder.get(key)
    except (pikepdf.PdfError, ValueError):
        return None
    return value if isinstance(value, pikepdf.Dictionary) else None


def _matrix(operands: object) -> Matrix | None:
    """Six finite numbers (a ``cm``'s operands, a form's /Matrix), or None."""
    try:
        values = [_number(value) for value in operands]  # type: ignore[attr-defined]  # any sequence
    except TypeError:
        return None
    if len(values) != 6:
        return None
    if any(value is None for value in values):
        return None
    a, b, c, d, e, f = (float(value or 0.0) for value in values)
    return a, b, c, d, e, f


def _multiply(m: Matrix, n: Matrix) -> Matrix:
    """``m`` then ``n``, as PDF concatenates matrices (row vectors)."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s, e * p + f * r + t, e * q + f * s + u)


def _number(value: object) -> float | None:
    """A finite number, or None for anything else (a name, a string, NaN, infinity)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # pikepdf numbers convert; others raise
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
