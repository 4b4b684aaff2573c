"""One way from an image file to the model's input, for a dataset's files and for images people bring alike.

A JPEG goes through the datasets' fast path (galaxy_core.data.jpeg: the crop window at a reduced DCT scale, then
resized), any other image, and a JPEG that path cannot read (CMYK, damaged), through Pillow
(galaxy_core.data.images). A dropped copy of a dataset's file thus gives the model the very pixels the dataset
gave it, and the same answer. One difference is kept on purpose: a dropped image's EXIF orientation is honoured
(the pixels are turned as the image is shown); a dataset's JPEG files are read as stored, like Keras' folder loader.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from galaxy_core.data.images import (
    PreprocessOptions,
    draft_size,
    open_header,
    open_image,
    orient,
    orientation_of,
    plain_decode_errors,
    preprocess_pil,
)
from galaxy_core.data.jpeg import decode_jpeg_bytes


def prepare_image(
    data: bytes, options: PreprocessOptions, *, charge: Callable[[int], None] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """(the model's input (S, S, C) uint8, the original (width, height)) of one image file's bytes. `charge`: as for
    open_image. Raises ImageDecodeError, with the reason in plain words, for what is no usable image."""
    with plain_decode_errors():
        header = open_header(data, charge=charge)
        jpeg = header.format in ("JPEG", "MPO") and header.mode != "CMYK"
        orientation, original_size = orientation_of(header), header.size
    if jpeg:
        pixels = decode_jpeg_bytes(data, options)
        if pixels is not None:
            return orient(pixels, orientation), original_size
    image, original_size = open_image(data, draft_size=draft_size(options))
    return preprocess_pil(image, options), original_size
