"""A CNN assembled from the knobs the report turned by hand, for experiments in class."""

from __future__ import annotations

import keras

from galaxy_core.errors import InvalidInputError
from galaxy_core.models.layers import PREPROCESS_MODES, classifier, conv_bn_relu, preprocess
from galaxy_core.models.registry import register_model

POOLING = ("max", "average", "stride")
HEADS = ("gap", "flatten")


def _check(blocks, filters, kernel_size, convs_per_block, pooling, dropout, head, dense_units, input_shape):
    problems = []
    if not 1 <= blocks <= 6:
        problems.append(f"blocks must be 1-6, got {blocks}")
    if filters < 1:
        problems.append(f"filters must be >= 1, got {filters}")
    if kernel_size not in (1, 3, 5, 7):
        problems.append(f"kernel_size must be 1, 3, 5 or 7, got {kernel_size}")
    if not 1 <= convs_per_block <= 4:
        problems.append(f"convs_per_block must be 1-4, got {convs_per_block}")
    if pooling not in POOLING:
        problems.append(f"pooling must be one of {POOLING}, got {pooling!r}")
    if not 0.0 <= dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {dropout}")
    if head not in HEADS:
        problems.append(f"head must be one of {HEADS}, got {head!r}")
    if dense_units < 0:
        problems.append(f"dense_units must be >= 0, got {dense_units}")
    if problems:
        raise InvalidInputError("; ".join(problems))
    if min(input_shape[:2]) < 2**blocks:
        raise InvalidInputError(
            f"custom_cnn with {blocks} blocks halves the image {blocks} times, so it needs at least "
            f"{2**blocks} px; got {input_shape[0]}x{input_shape[1]}"
        )


@register_model(
    name="custom_cnn",
    title="Custom CNN",
    family="custom",
    description=(
        "Build your own: conv blocks of 3x3 (or other) convolutions, each block doubling the filters and halving "
        "the map by max pooling, average pooling or a strided convolution; batch normalisation on or off; "
        "global average pooling or Flatten; optional dense layer and dropout. Change one knob at a time and "
        "compare the runs."
    ),
    origin="Galaxy CNN Lab",
    default_input_size=64,
    min_input_size=2,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="features_out",
)
def custom_cnn(
    *,
    input_shape,
    num_classes,
    name,
    classifier_activation,
    blocks: int = 3,
    filters: int = 32,
    kernel_size: int = 3,
    convs_per_block: int = 2,
    batch_norm: bool = True,
    pooling: str = "max",
    dropout: float = 0.3,
    head: str = "gap",
    dense_units: int = 0,
):
    _check(blocks, filters, kernel_size, convs_per_block, pooling, dropout, head, dense_units, input_shape)
    inputs = keras.Input(input_shape, name="image")
    x = preprocess(inputs, "unit")
    for block in range(1, blocks + 1):
        width = filters * 2 ** (block - 1)
        for index in range(1, convs_per_block + 1):
            last = index == convs_per_block
            strides = 2 if pooling == "stride" and last else 1
            x = conv_bn_relu(
                x, width, f"block{block}", index, kernel_size=kernel_size, strides=strides, batch_norm=batch_norm
            )
        if pooling == "max":
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
        elif pooling == "average":
            x = keras.layers.AveragePooling2D(2, name=f"block{block}_pool")(x)
    # A named hand-over point between the features and the head, for Grad-CAM whatever the options.
    x = keras.layers.Identity(name="features_out")(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    else:
        x = keras.layers.Flatten(name="head_flatten")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", name="head_dense1")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)
