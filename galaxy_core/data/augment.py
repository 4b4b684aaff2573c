"""Label-preserving augmentation for galaxies (no preferred orientation): flips, rotations, zoom, brightness.

Flip, rotation and zoom compose into one affine map per image, so each batch is resampled once (one
interpolation, one op) instead of once per transform as a stack of Keras layers would; on a 2-core CPU that
keeps augmentation from slowing training (docs/benchmarks.md). Randomness is stateless and seeded, so a run with
the same seed sees the same augmentations. The Dataset page's preview calls the same function as training.
TensorFlow is imported only when augmentation is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from galaxy_core.errors import InvalidInputError


@dataclass(frozen=True)
class AugmentOptions:
    flip: bool = True
    rotate: bool = True  # any angle
    zoom: float = 0.1  # up to this fraction in or out
    brightness: float = 0.1  # up to this fraction of the 0-255 range, up or down

    def __post_init__(self) -> None:
        for name in ("zoom", "brightness"):
            value = getattr(self, name)
            if not 0.0 <= value <= 0.5:
                raise InvalidInputError(f"augmentation {name} must be between 0 and 0.5, got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotate or self.zoom > 0 or self.brightness > 0


def augment_batch(images, options: AugmentOptions, seed):
    """Augment a batch (B, H, W, C) of 0-255 pixels (uint8 is cheapest to resample) into float32.

    `seed` is a stateless seed, shape (2,) int.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)

    def uniform(index, low, high):
        return tf.random.stateless_uniform([batch], seeds[index], low, high)

    def random_sign(index):
        return tf.where(uniform(index, 0.0, 1.0) < 0.5, -1.0, 1.0)

    angle = uniform(0, -math.pi, math.pi) if options.rotate else tf.zeros([batch])
    scale = uniform(1, 1 - options.zoom, 1 + options.zoom)
    # With free rotation one mirror gives every flip; without it, each axis flips on its own.
    flip_x = random_sign(2) if options.flip else tf.ones([batch])
    flip_y = random_sign(3) if options.flip and not options.rotate else tf.ones([batch])
    # The transform maps each output pixel back to where it is read in the input: about the image centre,
    # rotate by -angle, shrink by the zoom, mirror.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos * flip_x, sin * flip_x
    b0, b1 = -sin * flip_y, cos * flip_y
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    a2 = centre_x - a0 * centre_x - a1 * centre_y
    b2 = centre_y - b0 * centre_x - b1 * centre_y
    zeros = tf.zeros([batch])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    if options.flip or options.rotate or options.zoom > 0:
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.shape(images)[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            # Corners are filled with mirrored sky, not black wedges a network could learn from.
            fill_mode="REFLECT",
        )
    images = tf.cast(images, tf.float32)
    if options.brightness > 0:
        shift = uniform(4, -options.brightness, options.brightness) * 255.0
        images = tf.clip_by_value(images + shift[:, None, None, None], 0.0, 255.0)
    return images


def augment_images(images: np.ndarray, options: AugmentOptions, seed: int = 0) -> np.ndarray:
    """Augmented copies of a uint8 batch (N, H, W, C), as uint8: for previews and notebooks."""
    augmented = augment_batch(images, options, np.array([seed, 0]))
    return np.clip(np.rint(np.asarray(augmented)), 0, 255).astype(np.uint8)
