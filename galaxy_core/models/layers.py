"""Pieces the builders share: pixel preprocessing inside the model, the conv-BN-ReLU unit and the classifier head.

Models take raw 0-255 pixels, so a saved model needs nothing but the image. The one custom layer is registered
with Keras, so `.keras` files load in safe mode once `galaxy_core.models` is imported.
"""

from __future__ import annotations

import keras
import numpy as np

from galaxy_core.errors import InvalidInputError

# ImageNet channel means in BGR order, as the "caffe" preprocessing of VGG16 subtracts them.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
PREPROCESS_MODES = {
    "unit": "divide by 255 (pixels in [0, 1])",
    "symmetric": "scale to [-1, 1]",
    "caffe": "ImageNet 'caffe' preprocessing: RGB to BGR, subtract the ImageNet channel means",
    "raw": "none (0-255 pixels; the network normalises them itself)",
}


@keras.saving.register_keras_serializable(package="galaxy_core")
class ImagePreprocess(keras.layers.Layer):
    """Maps raw 0-255 pixels to what a network expects; optionally repeats a gray channel into RGB."""

    def __init__(self, mode: str = "unit", to_rgb: bool = False, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise InvalidInputError(f"preprocess mode must be one of {sorted(PREPROCESS_MODES)}, got {mode!r}")
        self.mode = mode
        self.to_rgb = to_rgb

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.to_rgb:
            x = keras.ops.repeat(x, 3, axis=-1)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "symmetric":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            mean = keras.ops.convert_to_tensor(np.array(IMAGENET_BGR_MEAN), dtype=self.compute_dtype)
            return keras.ops.flip(x, axis=-1) - mean
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3) if self.to_rgb else tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "to_rgb": self.to_rgb}


# Keras' default momentum (0.99) averages the statistics over about the last 100 batches, starting from mean 0 and
# variance 1. On a few thousand images (66 batches an epoch) validation then runs on stale statistics for several
# epochs and sits at chance while training accuracy is already 0.8 (docs/benchmarks.md). 0.9 (PyTorch's default)
# settles within an epoch; training itself uses batch statistics and is the same either way.
BATCH_NORM_MOMENTUM = 0.9


def batch_normalization(name: str):
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=name)


def conv_bn_relu(x, filters: int, name: str, index="", *, kernel_size: int = 3, strides: int = 1, batch_norm=True):
    """Convolution (same padding, He initialisation, no bias when batch normalisation's shift replaces it), batch
    normalisation, ReLU; layers named {name}_conv{index}, {name}_bn{index}, {name}_relu{index}."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        name=f"{name}_conv{index}",
    )(x)
    if batch_norm:
        x = batch_normalization(f"{name}_bn{index}")(x)
    return keras.layers.ReLU(name=f"{name}_relu{index}")(x)


def classifier(x, num_classes: int, classifier_activation: str | None):
    """Dense logits (layer "logits"), then the activation (layer "probabilities") unless logits are asked for.

    Both run in float32, so that mixed precision on a GPU never rounds the outputs.
    """
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    if classifier_activation is None:
        return logits
    return keras.layers.Activation(classifier_activation, name="probabilities", dtype="float32")(logits)


def pooled_classifier(x, num_classes: int, classifier_activation: str | None, dropout: float):
    """The usual modern head: global average pooling ("head_gap"), dropout ("head_dropout"), the classifier."""
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return classifier(x, num_classes, classifier_activation)


def preprocess(inputs, mode: str, to_rgb: bool = False):
    return ImagePreprocess(mode=mode, to_rgb=to_rgb, name="preprocess")(inputs)
