"""A mixed bag of uploads, good and bad, as (file name, bytes, expected reason or None for usable)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from galaxy_core.data.images import MAX_IMAGE_PIXELS


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def galaxy_photo(size: int = 96) -> Image.Image:
    """A bright elongated blob on dark sky, off-centre to the right, so orientation can be told apart."""
    yy, xx = np.mgrid[:size, :size]
    blob = 255 * np.exp(-(((xx - size * 0.65) / (size / 5)) ** 2 + ((yy - size / 2) / (size / 12)) ** 2))
    return Image.fromarray(np.stack([blob] * 3, -1).astype(np.uint8))


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    return encode(galaxy_photo(), "JPEG", exif=exif)


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def mixed_uploads() -> list[tuple[str, bytes, str | None]]:
    side = int(MAX_IMAGE_PIXELS**0.5) + 10
    sixteen_bit = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    return [
        ("galaxy.jpg", encode(galaxy_photo(), "JPEG"), None),
        ("rotated.jpg", exif_rotated_jpeg(), None),
        ("gray.png", encode(Image.new("L", (80, 80), 90), "PNG"), None),
        ("rgba.png", encode(Image.new("RGBA", (80, 80), (200, 10, 10, 128)), "PNG"), None),
        ("palette.bmp", encode(Image.new("P", (80, 80), 7), "BMP"), None),
        ("cmyk.tif", encode(Image.new("CMYK", (80, 80), (0, 200, 200, 0)), "TIFF"), None),
        ("deep.png", encode(sixteen_bit, "PNG"), None),
        ("tiny.png", encode(galaxy_photo(12), "PNG"), None),
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"these are my notes, not a picture\n" * 20, "not an image"),
        ("cut.jpg", encode(galaxy_photo(), "JPEG")[:300], "damaged or incomplete"),
        ("bomb.png", encode(Image.new("1", (side, side)), "PNG"), "above the limit"),
    ]
