"""Images to PDF: img2pdf embeds the pixels losslessly; Pillow prepares what it cannot take."""

from __future__ import annotations

from pathlib import Path

import img2pdf
from django.conf import settings
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from pillow_heif import register_heif_opener

from documents.pipeline.base import StepFailed, StepInputTooLarge

# img2pdf takes these as they are (no re-encoding); anything else becomes PNG frames first.
_NATIVE_FORMATS = {"JPEG", "PNG", "TIFF", "JPEG2000"}
# Rows composited at a time when an image loses its alpha channel (_flatten).
_STRIP_ROWS = 256
# Without resolution information, assume a scan at this DPI so the page has a paper size.
_DEFAULT_DPI = 300

# HEIC/HEIF, the format of phone photos, through the libheif plugin.
register_heif_opener()


class ImageConverter:
    name = "images"

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
        try:
            with Image.open(source) as image:
                self._refuse_bombs(image)
                frames = self._frames_for_img2pdf(image, source, scratch)
            layout = img2pdf.get_fixed_dpi_layout_fun((_DEFAULT_DPI, _DEFAULT_DPI))
            destination.write_bytes(img2pdf.convert([str(frame) for frame in frames], layout_fun=layout))
            return ""
        except Image.DecompressionBombError:
            raise StepInputTooLarge(self._too_large_message()) from None
        except (UnidentifiedImageError, img2pdf.ImageOpenError, OSError, ValueError) as exc:
            raise StepFailed(f"The image could not be read ({exc.__class__.__name__}: {exc}).") from None

    def _refuse_bombs(self, image: Image.Image) -> None:
        # Pillow only warns between the limit and twice the limit; we refuse at the limit.
        width, height = image.size
        if width * height > settings.MAX_IMAGE_PIXELS:
            raise StepInputTooLarge(self._too_large_message(width, height))

    def _frames_for_img2pdf(self, image: Image.Image, source: Path, scratch: Path) -> list[Path]:
        transparent_palette = image.mode == "P" and "transparency" in image.info
        if (
            image.format in _NATIVE_FORMATS
            and image.mode in {"1", "L", "RGB", "CMYK", "P"}
            and not transparent_palette
        ):
            return [source]
        frames = []
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            frame_path = scratch / f"frame-{index:04d}.png"
            self._flatten(frame).save(
                frame_path, format="PNG", dpi=image.info.get("dpi", (_DEFAULT_DPI,) * 2)
            )
            frames.append(frame_path)
        return frames

    @staticmethod
    def _flatten(frame: Image.Image) -> Image.Image:
        """RGB or grey on white: PDFs images cannot carry an alpha channel.

        The frame is turned in place and composited a strip of rows at a time, so that
        memory holds the decoded frame and the flat result, not several whole copies of it:
        a 99-megapixel RGBA PNG took the worker to 1.7 GB when converted whole.
        """
        ImageOps.exif_transpose(frame, in_place=True)
        if frame.mode in {"RGBA", "LA", "P", "PA"}:
            flat = Image.new("RGB", frame.size, "white")
            for top in range(0, frame.height, _STRIP_ROWS):
                box = (0, top, frame.width, min(top + _STRIP_ROWS, frame.height))
                strip = frame.crop(box).convert("RGBA")
                flat.paste(strip, box, mask=strip.getchannel("A"))
            return flat
        if frame.mode not in {"1", "L", "RGB"}:
            return frame.convert("RGB")
        return frame

    @staticmethod
    def _too_large_message(width: int | None = None, height: int | None = None) -> str:
        size = f" ({width}x{height} pixels)" if width and height else ""
        return (
            f"The image is too large{size}: more than {settings.MAX_IMAGE_PIXELS} pixels "
            "(MAX_IMAGE_PIXELS), refused as a possible decompression bomb."
        )
