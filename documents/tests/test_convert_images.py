"""Images lose their alpha channel on white, turned as their EXIF orientation says, a strip
of rows at a time (documents.pipeline.converters.images)."""

from __future__ import annotations

from PIL import Image

from documents.pipeline.converters.images import ImageConverter


def test_a_transparent_turned_image_is_flattened_on_white_in_strips_and_turned_upright():
    # 700 rows: three strips. The left half is transparent, the right half opaque red.
    image = Image.new("RGBA", (400, 700), (0, 0, 255, 0))
    image.paste((200, 0, 0, 255), (200, 0, 400, 700))
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: turned 90 degrees, to be shown turned back

    flat = ImageConverter._flatten(image)

    assert (flat.mode, flat.size) == ("RGB", (700, 400))
    # Orientation 6 turns the image clockwise: its left half (transparent) ends on top.
    assert flat.getpixel((350, 50)) == (255, 255, 255)
    assert flat.getpixel((350, 350)) == (200, 0, 0)
    assert flat.getpixel((5, 399)) == (200, 0, 0)  # the last strip is composited too
