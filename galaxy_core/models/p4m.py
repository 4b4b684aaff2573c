"""Symmetry built in: group-equivariant convolutions for the p4m group (Cohen & Welling 2016) and a network of them.

p4m is the eight ways to lay a square image down: four quarter turns, each with or without a mirror flip. A galaxy
has no up, so every one of them is the same galaxy. An ordinary convolution learns a filter for each orientation of a
pattern it needs (or is shown turned images until it does); a group convolution shares each filter across the eight
orientations, so a turned galaxy gives turned feature maps and the same answer.

Feature maps here have a channel per (filter, orientation), laid out as filter * 8 + orientation, orientation
g = 4 * flip + quarter_turns, acting on an image as `transform` does: quarter turns first (counter-clockwise, as
numpy's rot90), then a left-right flip. The layers:

- `P4MLifting`: an image to p4m feature maps: each filter correlated with the image in its 8 orientations.
- `P4MConv`: p4m feature maps to p4m feature maps: output orientation h uses the filter turned by h, its input
  orientations permuted by h's inverse, so turning the input turns and permutes the output the same way.
- `OrientationPooling`: the maximum over the 8 orientations of each filter: features that do not turn.
`P4MBatchNormalization` shares its statistics and scale across a filter's 8 orientations, or it would break the
symmetry. The network pools with 2 x 2 windows on even sizes and convolves with stride 1 and odd
kernels, which commute exactly with quarter turns and flips, and ends with global average pooling: its answer for
a galaxy and for its 7 turned and flipped copies is the same to float tolerance (tests/test_p4m.py).
"""

from __future__ import annotations

import keras
import numpy as np

from galaxy_core.errors import InvalidInputError
from galaxy_core.models.compact import COMPACT_RECIPE
from galaxy_core.models.layers import BATCH_NORM_MOMENTUM, PREPROCESS_MODES, pooled_classifier, preprocess
from galaxy_core.models.registry import register_model

ORIENTATIONS = 8


def transform(array: np.ndarray, g: int) -> np.ndarray:
    """p4m element `g` applied to the first two axes of `array`: g % 4 quarter turns, then a flip if g >= 4."""
    turned = np.rot90(array, g % 4, axes=(0, 1))
    return np.flip(turned, axis=1) if g >= 4 else turned


def _cayley_table() -> tuple[np.ndarray, np.ndarray]:
    """(product[a, b]: the element that is b then a, inverse[a]), read off an image with no symmetry."""
    probe = np.arange(9).reshape(3, 3)
    images = [transform(probe, g).tobytes() for g in range(ORIENTATIONS)]
    product = np.array(
        [[images.index(transform(transform(probe, b), a).tobytes()) for b in range(ORIENTATIONS)] for a in range(8)]
    )
    inverse = np.array([list(product[a]).index(0) for a in range(ORIENTATIONS)])
    return product, inverse


PRODUCT, INVERSE = _cayley_table()


def spatial_permutation(size: int, g: int) -> np.ndarray:
    """Where each position of a size x size kernel turned by `g` comes from (flat indices)."""
    return transform(np.arange(size * size).reshape(size, size), g).ravel()


def orientation_permutation(g: int) -> np.ndarray:
    """The input orientation the filter of output orientation `g` reads at each of its 8 orientation slots:
    g^-1 h for slot h."""
    return PRODUCT[INVERSE[g]]


class _P4MConvolution(keras.layers.Layer):
    """What the lifting and the group convolution share: a kernel turned 8 ways into one ordinary convolution."""

    input_orientations = 1
    kernel_uses_per_position = ORIENTATIONS  # each output position: the kernel in each orientation (count_macs)

    def __init__(self, filters: int, kernel_size: int = 3, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise InvalidInputError(
                f"a p4m convolution takes an odd kernel size (a centre to turn about), not {kernel_size}"
            )
        self.filters, self.kernel_initializer = filters, keras.initializers.get(kernel_initializer)
        # As an ordinary convolution's (what the receptive-field tracer reads): stride 1, "same" padding
        self.kernel_size, self.strides, self.padding, self.dilation_rate = (kernel_size,) * 2, (1, 1), "same", (1, 1)

    def build(self, input_shape):
        channels = input_shape[-1] // self.input_orientations
        if channels * self.input_orientations != input_shape[-1]:
            raise InvalidInputError(f"{self.name} needs p4m feature maps: 8 channels per filter, got {input_shape[-1]}")
        size = self.kernel_size[0]
        self.kernel = self.add_weight(
            shape=(size, size, channels, self.input_orientations, self.filters),
            initializer=self.kernel_initializer,
            name="kernel",
        )

    def call(self, inputs):
        size, (_, _, channels, slots, filters) = self.kernel_size[0], self.kernel.shape
        flat = keras.ops.reshape(self.kernel, (size * size, channels, slots, filters))
        turned = []
        for g in range(ORIENTATIONS):
            kernel = keras.ops.take(flat, spatial_permutation(size, g), axis=0)
            if slots == ORIENTATIONS:
                kernel = keras.ops.take(kernel, orientation_permutation(g), axis=2)
            turned.append(kernel)
        kernels = keras.ops.reshape(keras.ops.stack(turned, axis=-1), (size, size, channels * slots, filters * 8))
        return keras.ops.conv(inputs, keras.ops.cast(kernels, inputs.dtype), padding="same")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters * ORIENTATIONS)

    def get_config(self):
        initializer = keras.initializers.serialize(self.kernel_initializer)
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size[0],
            "kernel_initializer": initializer,
        }


@keras.saving.register_keras_serializable(package="galaxy_core")
class P4MLifting(_P4MConvolution):
    """An image (any channels) to p4m feature maps: `filters` filters, each in its 8 orientations."""

    input_orientations = 1


@keras.saving.register_keras_serializable(package="galaxy_core")
class P4MConv(_P4MConvolution):
    """p4m feature maps to p4m feature maps: `filters` filters over every input filter and orientation."""

    input_orientations = ORIENTATIONS


@keras.saving.register_keras_serializable(package="galaxy_core")
class OrientationPooling(keras.layers.Layer):
    """The strongest of each filter's 8 orientations: feature maps that turn with the image but do not permute."""

    def call(self, inputs):
        grouped = keras.ops.reshape(inputs, (*keras.ops.shape(inputs)[:-1], inputs.shape[-1] // 8, ORIENTATIONS))
        return keras.ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // ORIENTATIONS)


def _grouped(shape) -> tuple:
    """A shape (..., filters * 8) as (..., filters, 8)."""
    return (*shape[:-1], shape[-1] // ORIENTATIONS, ORIENTATIONS)


@keras.saving.register_keras_serializable(package="galaxy_core")
class P4MBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation of p4m feature maps with one mean, variance, scale and shift per filter, shared by its 8
    orientations (one per orientation would treat a turned galaxy differently from the galaxy)."""

    def __init__(self, axis=-2, **kwargs):
        super().__init__(axis=axis, **kwargs)

    def build(self, input_shape):
        super().build(_grouped(input_shape))
        self.input_spec = None  # it takes the maps as they come; its statistics are over the grouped ones

    def call(self, inputs, training=None, mask=None):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(super().call(keras.ops.reshape(inputs, _grouped(shape)), training=training), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def group_batch_norm_relu(x, name: str):
    """Batch normalisation shared by each filter's 8 orientations ({name}_bn), then ReLU ({name}_relu)."""
    x = P4MBatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


@register_model(
    name="p4m_cnn",
    title="Rotation-equivariant CNN (p4m)",
    family="modern",
    description=(
        "Symmetry built in (Cohen & Welling 2016): each filter is used in all 8 orientations of a square (four "
        "quarter turns, with and without a mirror flip), so a turned galaxy gives turned feature maps, and after "
        "pooling over the orientations the same answer, with no augmentation needed for those turns. A lifting "
        "convolution, three group convolutions with 2 x 2 max pooling between them, the strongest orientation of "
        "each filter, then global average pooling. Few parameters (each is shared 8 ways) but 8 feature maps per "
        "filter to compute. Exact for inputs whose side is a multiple of 8."
    ),
    origin="Cohen & Welling, 'Group Equivariant Convolutional Networks' (ICML 2016), the p4m group",
    default_input_size=48,
    min_input_size=16,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="orientation_pool",
    recipe=COMPACT_RECIPE,
)
def p4m_cnn(*, input_shape, num_classes, name, classifier_activation, width: int = 6, dropout: float = 0.2):
    if width < 1:
        raise InvalidInputError(f"width must be >= 1 filter, got {width}")
    inputs = keras.Input(input_shape, name="image")
    x = P4MLifting(width, name="lift_conv")(preprocess(inputs, "unit"))
    x = group_batch_norm_relu(x, "lift")
    for number, filters in enumerate((2 * width, 4 * width, 4 * width), start=1):
        x = keras.layers.MaxPooling2D(name=f"block{number}_pool")(x)
        x = P4MConv(filters, name=f"block{number}_conv")(x)
        x = group_batch_norm_relu(x, f"block{number}")
    x = OrientationPooling(name="orientation_pool")(x)
    return keras.Model(inputs, pooled_classifier(x, num_classes, classifier_activation, dropout), name=name)
