"""What a network does when a galaxy turns: its answers at every angle, and, for a p4m network
(galaxy_core.models.p4m), one filter in its 8 orientations and the feature maps that turn with the image.

A turn by an angle that is not a multiple of 90 degrees moves pixels between grid points: the image is resampled
(bilinear) and its corners, which the turn brings in from outside, are black, as the sky around a galaxy nearly is.
At multiples of 90 degrees nothing is resampled.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from galaxy_core.answers.prediction import predict_in_batches
from galaxy_core.errors import InvalidInputError
from galaxy_core.models.p4m import ORIENTATIONS, P4MLifting, transform


def _picture(image: np.ndarray) -> Image.Image:
    """An (H, W, C) array of 0-255 values as a PIL image (mode L for one channel)."""
    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float32)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _scaled_together(arrays: np.ndarray) -> np.ndarray:
    """`arrays` scaled by one minimum and maximum to [0, 1] (zeros when they are all equal)."""
    low, high = arrays.min(), arrays.max()
    return (arrays - low) / (high - low) if high > low else np.zeros_like(arrays)


def turned_images(image: np.ndarray, angles) -> np.ndarray:
    """`image` (H, W, C) of 0-255 values turned counter-clockwise about its centre by each of `angles` (degrees):
    (len(angles), H, W, C) uint8."""
    picture = _picture(image)
    turned = [
        np.asarray(picture.rotate(float(angle), resample=Image.Resampling.BILINEAR)).reshape(np.shape(image))
        for angle in angles
    ]
    return np.stack(turned)


def fit_to_input(image: np.ndarray, model) -> np.ndarray:
    """`image` (H, W, C) of 0-255 values resized (bilinear) and its channels matched to the model's input."""
    height, width, channels = model.input.shape[1:]
    picture = _picture(image).convert("L" if channels == 1 else "RGB")
    picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(picture).reshape(height, width, channels)


def answers_by_angle(model, image: np.ndarray, angles) -> np.ndarray:
    """The model's class probabilities for `image` turned by each angle: (len(angles), classes)."""
    return predict_in_batches(model, turned_images(image, angles))


def lifting_layer(model) -> P4MLifting:
    """The model's first p4m convolution; InvalidInputError for a network without one."""
    for layer in model.layers:
        if isinstance(layer, P4MLifting):
            return layer
    raise InvalidInputError(f"{model.name} is not a p4m network: it has no lifting convolution")


def filter_orientations(model, filter_index: int = 0) -> np.ndarray:
    """One filter of the lifting convolution in its 8 orientations, as the layer applies them: (8, k, k), each the
    mean over the input channels, scaled together to [0, 1]."""
    kernel = np.asarray(lifting_layer(model).kernel, dtype=np.float32)  # (k, k, channels, 1, filters)
    if not 0 <= filter_index < kernel.shape[-1]:
        raise InvalidInputError(f"the lifting convolution has filters 0-{kernel.shape[-1] - 1}, not {filter_index}")
    one = kernel[:, :, :, 0, filter_index].mean(axis=-1)
    return _scaled_together(np.stack([transform(one, g) for g in range(ORIENTATIONS)]))


def orientation_maps(model, image: np.ndarray, filter_index: int = 0) -> np.ndarray:
    """The lifting convolution's 8 feature maps of one filter for `image` (one per orientation): (8, H, W), scaled
    together to [0, 1]. Turn the image by a quarter and each map turns, and they change places."""
    import keras

    layer = lifting_layer(model)
    probe = keras.Model(model.input, layer.output)
    maps = np.asarray(probe(np.asarray(image, dtype=np.float32)[None], training=False), dtype=np.float32)[0]
    filters = maps.shape[-1] // ORIENTATIONS
    if not 0 <= filter_index < filters:
        raise InvalidInputError(f"the lifting convolution has filters 0-{filters - 1}, not {filter_index}")
    one = maps.reshape(*maps.shape[:2], filters, ORIENTATIONS)[:, :, filter_index]
    return _scaled_together(np.moveaxis(one, -1, 0))
