"""Convolution as a CNN layer computes it, in numpy, for teaching: a kernel slid over an image with a stride and
padding, then pooling, and the arithmetic of the output size. No TensorFlow.

Like every deep-learning library, this is cross-correlation: the kernel is not flipped (a Sobel x kernel answers
to a dark-to-bright change from left to right)."""

from __future__ import annotations

import math
import re

import numpy as np

from galaxy_core.errors import InvalidInputError

PADDINGS = ("valid", "same")
POOLINGS = ("none", "max", "average")
KERNEL_SIDES = (3, 5)
KERNELS = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32),
    "blur": np.full((3, 3), 1 / 9, dtype=np.float32),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32),
    "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float32),
    "Sobel x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32),
    "Sobel y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float32),
}


def parse_kernel(text: str) -> np.ndarray:
    """A kernel typed as rows of numbers (rows on lines or separated by ';', numbers by spaces or commas), 3x3 or
    5x5."""
    rows = [row for row in re.split(r"[;\n]", text.strip()) if row.strip()]
    try:
        values = [[float(number) for number in re.split(r"[,\s]+", row.strip())] for row in rows]
    except ValueError:
        raise InvalidInputError(f"a kernel holds numbers only, e.g. '0 -1 0; -1 5 -1; 0 -1 0'; got {text!r}") from None
    side = len(values)
    if side not in KERNEL_SIDES or any(len(row) != side for row in values):
        shape = "x".join(map(str, (side, *sorted({len(row) for row in values})))) if values else "empty"
        raise InvalidInputError(f"a kernel is 3x3 or 5x5 numbers, got {shape}")
    if not np.isfinite(values).all():
        raise InvalidInputError("a kernel holds finite numbers only")
    return np.array(values, dtype=np.float32)


def _check(size: int, kernel_side: int, stride: int, padding: str) -> None:
    if padding not in PADDINGS:
        raise InvalidInputError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if not isinstance(stride, int) or stride < 1:
        raise InvalidInputError(f"stride must be a whole number >= 1, got {stride!r}")
    if padding == "valid" and kernel_side > size:
        raise InvalidInputError(f"a {kernel_side}x{kernel_side} kernel does not fit in a {size} px image")


def output_size(size: int, kernel_side: int, stride: int = 1, padding: str = "valid") -> int:
    """The side of the feature map: floor((n - k) / s) + 1 without padding ("valid"); ceil(n / s) with the
    zero padding that keeps n at stride 1 ("same", as Keras pads)."""
    _check(size, kernel_side, stride, padding)
    return (size - kernel_side) // stride + 1 if padding == "valid" else math.ceil(size / stride)


def output_size_in_words(size: int, kernel_side: int, stride: int = 1, padding: str = "valid") -> str:
    """The arithmetic behind `output_size`, for the page: '(64 - 3) / 1 + 1 = 62'."""
    out = output_size(size, kernel_side, stride, padding)
    if padding == "valid":
        return f"floor(({size} - {kernel_side}) / {stride}) + 1 = {out}"
    return f"ceil({size} / {stride}) = {out} (zeros padded around the image keep every position)"


def same_padding(size: int, kernel_side: int, stride: int = 1) -> tuple[int, int]:
    """(before, after) zeros that "same" padding adds along a side, by Keras' rule: as many as the ceil(n / s)
    positions need, the odd one at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel_side - size, 0)
    return total // 2, total - total // 2


def convolve(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: str = "valid") -> np.ndarray:
    """The feature map of a 2-D image (H, W) under `kernel` (k, k): each output pixel is the sum of the kernel
    times the image patch under it."""
    image, kernel = np.asarray(image, dtype=np.float32), np.asarray(kernel, dtype=np.float32)
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise InvalidInputError(f"the image must be one square channel (H, H), got {image.shape}")
    side = kernel.shape[0]
    out = output_size(image.shape[0], side, stride, padding)
    if padding == "same":
        image = np.pad(image, (same_padding(image.shape[0], side, stride),) * 2)
    windows = np.lib.stride_tricks.sliding_window_view(image, (side, side))[::stride, ::stride][:out, :out]
    return np.einsum("ijkl,kl->ij", windows, kernel)


def pool(feature_map: np.ndarray, kind: str = "max", size: int = 2) -> np.ndarray:
    """Max or average pooling over size x size blocks (stride = size); a leftover edge is dropped."""
    if kind not in POOLINGS:
        raise InvalidInputError(f"pooling must be one of {POOLINGS}, got {kind!r}")
    if kind == "none":
        return feature_map
    side = feature_map.shape[0] // size
    if side < 1:
        raise InvalidInputError(f"a {feature_map.shape[0]} px map is too small for {size}x{size} pooling")
    blocks = feature_map[: side * size, : side * size].reshape(side, size, side, size)
    return blocks.max(axis=(1, 3)) if kind == "max" else blocks.mean(axis=(1, 3))
