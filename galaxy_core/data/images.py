"""Decoding image files safely and preprocessing them: the one place where pixels are prepared.

Preprocessing is the same for every source: a square centre crop (a fraction of the shorter side), a resize
to the model's input size, and RGB or grayscale. Arrays are always uint8, shape (H, W, C).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
# Far above any galaxy cutout (a 423 px SDSS image is 0.18 MP), far below what exhausts memory.
MAX_IMAGE_PIXELS = 40_000_000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 512
# ITU-R 601-2 luma, the weights PIL uses for mode "L".
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageDecodeError(ValueError):
    """A file is not a usable image; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class PreprocessOptions:
    """How raw pixels become model input: centre crop, resize, channels."""

    image_size: int = 64
    crop_fraction: float = 1.0
    channels: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(
                f"image_size must be a whole number from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} px, "
                f"got {self.image_size!r}"
            )
        if not 0.05 <= float(self.crop_fraction) <= 1.0:
            raise ValueError(f"crop_fraction must be between 0.05 and 1.0, got {self.crop_fraction!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels!r}")

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The centre square on whole pixels, the same window the JPEG fast path decodes."""
        side = max(1, int(self.crop_fraction * min(width, height)))
        left, top = (width - side) // 2, (height - side) // 2
        return (left, top, left + side, top + side)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16-bit and float images are scaled by their own range."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) / (high - low) * 255.0 if high > low else np.zeros_like(pixels)
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become black sky rather than an arbitrary colour.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def open_image(source: str | Path | bytes | BinaryIO, draft_size: int | None = None) -> tuple[Image.Image, tuple]:
    """Decode one image to RGB, honouring EXIF orientation; returns (image, original (width, height)).

    `draft_size` lets JPEG decoding skip detail below that many pixels on the shorter side (much faster).
    Raises ImageDecodeError for empty, truncated, oversized or non-image input.
    """
    try:
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        is_empty = (
            source.getbuffer().nbytes == 0
            if isinstance(source, io.BytesIO)
            else (isinstance(source, str | Path) and Path(source).stat().st_size == 0)
        )
        if is_empty:
            raise ImageDecodeError("the file is empty (0 bytes)")
        image = Image.open(source)
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageDecodeError(
                f"the image is {width}x{height} = {width * height:,} pixels, above the limit of "
                f"{MAX_IMAGE_PIXELS:,} (a decompression bomb or a huge scan)"
            )
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image), (width, height)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as error:
        raise ImageDecodeError("not an image, or an image format this lab cannot read") from error
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"the image is too large to decode safely: {error}") from error
    except (OSError, ValueError, SyntaxError) as error:
        # PIL reports truncated and corrupt data as OSError ("image file is truncated", "broken data stream").
        raise ImageDecodeError(f"the image data is damaged or incomplete ({error})") from error


def preprocess_pil(image: Image.Image, options: PreprocessOptions) -> np.ndarray:
    """Centre-crop, resize and set channels of an RGB PIL image."""
    size = (options.image_size, options.image_size)
    resized = image.resize(size, Image.Resampling.BILINEAR, box=options.crop_box(*image.size))
    if options.channels == 1:
        return np.asarray(resized.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(resized, dtype=np.uint8)


def load_image_file(path: str | Path, options: PreprocessOptions) -> tuple[np.ndarray, tuple]:
    """Decode and preprocess one file; returns (pixels, original (width, height))."""
    draft = int(np.ceil(options.image_size / options.crop_fraction))
    image, original_size = open_image(path, draft_size=draft)
    return preprocess_pil(image, options), original_size


def preprocess_array(images: np.ndarray, options: PreprocessOptions) -> np.ndarray:
    """Preprocess a batch of uint8 RGB arrays (N, H, W, 3), as arrays from HDF5 or the renderer."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    height, width = images.shape[1:3]
    if (width, height) == (options.image_size,) * 2 and options.crop_fraction == 1.0:
        return to_grayscale(images) if options.channels == 1 else images
    return np.stack([preprocess_pil(Image.fromarray(image), options) for image in images])


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) to grayscale uint8 (..., 1) with the luma weights PIL uses."""
    luma = images.astype(np.float32) @ LUMA_WEIGHTS
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
