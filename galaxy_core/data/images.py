"""Decoding image files safely and preprocessing them: the one place where pixels are prepared.

Preprocessing is the same for every source: a square centre crop (a fraction of the shorter side), a resize
to the model's input size, and RGB or grayscale. Arrays are always uint8, shape (H, W, C).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from galaxy_core.errors import GalaxyLabError, InvalidInputError

SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")
# The formats Pillow may decode (whatever a file's name says); the others are never tried: some, such as EPS, are
# handed by Pillow to external programs. (JPEG includes MPO, the variant many phone cameras write.)
DECODED_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP")
Image.init()  # registers every format plugin, so that Image.open(..., formats=DECODED_FORMATS) knows them all
# EXIF orientation -> the transposition that shows the image upright.
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Far above any galaxy cutout (a 423 px SDSS image is 0.18 MP), far below what exhausts memory.
MAX_IMAGE_PIXELS = 40_000_000
HUGE = "(a decompression bomb or a huge scan)"
SHRINK_STRIP_ROWS = 256
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 512
# ITU-R 601-2 luma, the weights PIL uses for mode "L".
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageDecodeError(GalaxyLabError, ValueError):
    """A file is not a usable image; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class PreprocessOptions:
    """How raw pixels become model input: centre crop, resize, channels."""

    image_size: int = 64
    crop_fraction: float = 1.0
    channels: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise InvalidInputError(
                f"image_size must be a whole number from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} px, "
                f"got {self.image_size!r}"
            )
        if not 0.05 <= float(self.crop_fraction) <= 1.0:
            raise InvalidInputError(f"crop_fraction must be between 0.05 and 1.0, got {self.crop_fraction!r}")
        if self.channels not in (1, 3):
            raise InvalidInputError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels!r}")

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The centre square on whole pixels, the same window the JPEG fast path decodes."""
        side = max(1, int(self.crop_fraction * min(width, height)))
        left, top = (width - side) // 2, (height - side) // 2
        return (left, top, left + side, top + side)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16-bit and float images are scaled by their own range."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image)
        low, high = float(pixels.min()), float(pixels.max())
        scale = np.float32(255.0 / (high - low)) if high > low else np.float32(0.0)
        image = Image.fromarray(((pixels - np.float32(low)) * scale).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become black sky rather than an arbitrary colour.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def _shrink(image: Image.Image, shortest: int) -> Image.Image:
    """The image reduced by a whole factor (box averaging) while its shorter side stays at least twice `shortest`:
    what follows (colour conversion, crop and resize) then works on far fewer pixels, for the same result. It
    goes in strips of rows, so that no full-size copy is made (Pillow converts a whole RGBA image to premultiplied
    alpha to reduce it, and some modes must be converted before they can be reduced at all)."""
    factor = min(image.size) // (2 * shortest)
    if factor < 2:
        return image
    width, height = image.size
    rows = factor * max(1, SHRINK_STRIP_ROWS // factor)
    strips = [
        _reducible(image.crop((0, top, width, min(top + rows, height))), image.info).reduce(factor)
        for top in range(0, height, rows)
    ]
    shrunk = Image.new(strips[0].mode, (strips[0].width, sum(strip.height for strip in strips)))
    for number, strip in enumerate(strips):
        shrunk.paste(strip, (0, number * (rows // factor)))
    return shrunk


def _reducible(image: Image.Image, info: dict) -> Image.Image:
    """The image in a mode Pillow can reduce (1, P and 16-bit modes cannot be)."""
    if image.mode == "1":
        return image.convert("L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in info else "RGB")
    if image.mode.startswith("I;16"):
        return image.convert("I")
    return image


@contextmanager
def plain_decode_errors() -> Iterator[None]:
    """Any failure to read an image inside the block becomes an ImageDecodeError with a reason in plain words."""
    try:
        yield
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as error:
        raise ImageDecodeError("not an image, or an image format this lab cannot read") from error
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"the image is far above the limit of {MAX_IMAGE_PIXELS:,} pixels {HUGE}") from error
    except MemoryError as error:
        raise ImageDecodeError("the image is too large to decode with the memory this server has") from error
    except Exception as error:  # a damaged file can make any decoder raise anything; it must fail alone
        raise ImageDecodeError("the image data is damaged or incomplete") from error


def open_header(source: str | Path | bytes | BinaryIO, *, charge: Callable[[int], None] | None = None) -> Image.Image:
    """An image opened but not yet decoded (its format, mode, size and EXIF known), if it is one of the
    DECODED_FORMATS, not empty and not oversized; `charge(pixels)` is called with its size, and may refuse it by
    raising ImageDecodeError (a request's budget). Use inside `plain_decode_errors()`."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    is_empty = (
        source.getbuffer().nbytes == 0
        if isinstance(source, io.BytesIO)
        else (isinstance(source, str | Path) and Path(source).stat().st_size == 0)
    )
    if is_empty:
        raise ImageDecodeError("the file is empty (0 bytes)")
    image = Image.open(source, formats=DECODED_FORMATS)
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"the image is {width}x{height} = {width * height:,} pixels, above the limit of {MAX_IMAGE_PIXELS:,} {HUGE}"
        )
    if charge is not None:
        charge(width * height)
    return image


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: as stored)."""
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels (H, W, C) turned as an EXIF orientation says they are shown."""
    if orientation not in ORIENTATIONS:
        return pixels
    turned = np.asarray(
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).transpose(ORIENTATIONS[orientation])
    )
    return turned[..., None] if pixels.shape[-1] == 1 else turned


def open_image(
    source: str | Path | bytes | BinaryIO,
    draft_size: int | None = None,
    *,
    charge: Callable[[int], None] | None = None,
) -> tuple[Image.Image, tuple]:
    """Decode one image to RGB, honouring EXIF orientation; returns (image, original (width, height)).

    Only the formats in DECODED_FORMATS are tried (Pillow hands some others, such as EPS, to external programs).
    `draft_size` lets decoding skip detail below that many pixels on the shorter side: JPEG decodes at a smaller
    scale, other images are reduced right after decoding. `charge(pixels)` is called before the pixels are
    decoded, and may refuse them by raising ImageDecodeError (a request's budget). Raises ImageDecodeError for
    empty, truncated, oversized or non-image input, with a reason in plain words.
    """
    with plain_decode_errors():
        image = open_header(source, charge=charge)
        original_size = image.size
        orientation = orientation_of(image)
        if draft_size and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        if draft_size:
            image = _shrink(image, draft_size)
        if orientation in ORIENTATIONS:
            image = image.transpose(ORIENTATIONS[orientation])
        return _to_rgb(image), original_size


def draft_size(options: PreprocessOptions) -> int:
    """The shorter side an image may be decoded at for these options without losing what the model sees."""
    return int(np.ceil(options.image_size / options.crop_fraction))


def preprocess_pil(image: Image.Image, options: PreprocessOptions) -> np.ndarray:
    """Centre-crop, resize and set channels of an RGB PIL image."""
    size = (options.image_size, options.image_size)
    resized = image.resize(size, Image.Resampling.BILINEAR, box=options.crop_box(*image.size))
    if options.channels == 1:
        return np.asarray(resized.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(resized, dtype=np.uint8)


def load_image_file(path: str | Path, options: PreprocessOptions) -> tuple[np.ndarray, tuple]:
    """Decode and preprocess one file with Pillow; returns (pixels, original (width, height))."""
    image, original_size = open_image(path, draft_size=draft_size(options))
    return preprocess_pil(image, options), original_size


def preprocess_array(images: np.ndarray, options: PreprocessOptions) -> np.ndarray:
    """Preprocess a batch of uint8 RGB arrays (N, H, W, 3), as arrays from HDF5 or the renderer."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InvalidInputError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    height, width = images.shape[1:3]
    if (width, height) == (options.image_size,) * 2 and options.crop_fraction == 1.0:
        return to_grayscale(images) if options.channels == 1 else images
    return np.stack([preprocess_pil(Image.fromarray(image), options) for image in images])


def image_bytes(count: int, options: PreprocessOptions) -> int:
    """The memory `count` preprocessed images take (uint8)."""
    return count * options.image_size**2 * options.channels


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) to grayscale uint8 (..., 1) with the luma weights PIL uses."""
    luma = images.astype(np.float32) @ LUMA_WEIGHTS
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
