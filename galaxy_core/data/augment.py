"""Label-preserving augmentation for galaxies (no preferred orientation): flips, rotations, zoom, brightness.

The same Keras layers serve the training pipeline and the Dataset page's preview, so what a user sees is
what training does. TensorFlow is imported only when augmentation is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
                raise ValueError(f"augmentation {name} must be between 0 and 0.5, got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotate or self.zoom > 0 or self.brightness > 0


def build_augmentation_layers(options: AugmentOptions, seed: int | None = None) -> list:
    """Keras preprocessing layers for float images in the 0-255 range, in the order they apply."""
    import keras

    layers = []
    if options.flip:
        layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed, name="augment_flip"))
    if options.rotate:
        # "reflect" fills corners with sky-like texture instead of black wedges a network could learn from.
        layers.append(keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=seed, name="augment_rotate"))
    if options.zoom > 0:
        layers.append(keras.layers.RandomZoom((-options.zoom, options.zoom), fill_mode="reflect", seed=seed,
                                              name="augment_zoom"))
    if options.brightness > 0:
        layers.append(keras.layers.RandomBrightness(options.brightness, value_range=(0, 255), seed=seed,
                                                    name="augment_brightness"))
    return layers


def apply_layers(layers: list, images):
    """Run float image batches through augmentation layers in training mode."""
    for layer in layers:
        images = layer(images, training=True)
    return images


def augment_images(images: np.ndarray, options: AugmentOptions, seed: int | None = None) -> np.ndarray:
    """Augmented copies of a uint8 batch (N, H, W, C), as uint8: for previews and notebooks."""
    layers = build_augmentation_layers(options, seed)
    augmented = apply_layers(layers, images.astype(np.float32))
    return np.clip(np.rint(np.asarray(augmented)), 0, 255).astype(np.uint8)
