"""The report's own networks (../shared/SEED.md), rebuilt layer for layer so that a class can reproduce them.

All take 0-255 pixels and divide by 255 inside, as the report did. Parameter counts at the report's input size
match its table (tests/test_models.py checks them).
"""

from __future__ import annotations

import keras

from galaxy_core.models.layers import PREPROCESS_MODES, batch_normalization, classifier, conv_bn_relu, preprocess
from galaxy_core.models.registry import Recipe, register_model

REPORT = "the student report 'Galaxies Classification By Using Deep Learning' (../shared/SEED.md)"
# The report trained every model with Adam at 1e-3 and batch 16.
REPORT_RECIPE = Recipe(optimizer="adam", learning_rate=1e-3, batch_size=16)
PRACTICE_BLOCKS = ((32,), (32, 64), (64, 128))


def _conv(filters: int, name: str, padding: str = "valid"):
    return keras.layers.Conv2D(
        filters, 3, padding=padding, activation="relu", kernel_initializer="he_normal", name=name
    )


def _practice_features(x):
    """Practice 1-3's feature extractor: conv blocks with ReLU, then BN (after the ReLU, as in the report) and
    2x2 max pooling. Valid padding: each conv trims a pixel on every side."""
    for block, filters_list in enumerate(PRACTICE_BLOCKS, start=1):
        for index, filters in enumerate(filters_list, start=1):
            x = _conv(filters, f"block{block}_conv{index}")(x)
        x = batch_normalization(f"block{block}_bn")(x)
        x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return x


def _dense_head(x, units: int, dropout: float):
    for index in (1, 2):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer="he_normal", name=f"head_dense{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"head_dropout{index}")(x)
    return x


@register_model(
    name="tutorial",
    title="Tutorial CNN",
    family="report",
    description=(
        "The first network of the report, in the style of the Keras tutorials: two 3x3 convolutions find local "
        "patterns, one max pooling halves the map, and Flatten hands every position to a 128-unit dense layer. "
        "Flatten makes it big (about 4.3 M weights at 50 px, almost all in that dense layer) and quick to "
        "overfit: the report saw it overfit after epoch 14."
    ),
    origin=REPORT,
    default_input_size=50,
    min_input_size=6,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block1_conv2",
    report_accuracy=0.765,
    recipe=REPORT_RECIPE,
)
def tutorial(*, input_shape, num_classes, name, classifier_activation):
    inputs = keras.Input(input_shape, name="image")
    x = preprocess(inputs, "unit")
    x = _conv(32, "block1_conv1")(x)
    x = _conv(64, "block1_conv2")(x)
    x = keras.layers.MaxPooling2D(name="block1_pool")(x)
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="head_dense1")(x)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


@register_model(
    name="practice1",
    title="Practice 1: small CNN with batch normalisation and global average pooling",
    family="report",
    description=(
        "Three blocks of 3x3 convolutions (32 -> 32, 64 -> 64, 128 filters) with batch normalisation and max "
        "pooling, then global average pooling straight into the classifier. Averaging each feature map to one "
        "number replaces Flatten's millions of weights: 140,707 parameters in all, 30 times fewer than the "
        "Tutorial, and the report's best small model."
    ),
    origin=REPORT,
    default_input_size=50,
    min_input_size=34,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block3_conv2",
    report_accuracy=0.8688,
    recipe=REPORT_RECIPE,
)
def practice1(*, input_shape, num_classes, name, classifier_activation):
    inputs = keras.Input(input_shape, name="image")
    x = _practice_features(preprocess(inputs, "unit"))
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


@register_model(
    name="practice2",
    title="Practice 2: Practice 1 with a dense head and dropout",
    family="report",
    description=(
        "Practice 1's convolutions, then two 128-unit dense layers each followed by dropout (30% of the units "
        "switched off at random while training, so that no unit can be relied on alone). More capacity in the "
        "head did not help here: 85.62% against Practice 1's 86.88%."
    ),
    origin=REPORT,
    default_input_size=50,
    min_input_size=34,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block3_conv2",
    report_accuracy=0.8562,
    recipe=REPORT_RECIPE,
)
def practice2(*, input_shape, num_classes, name, classifier_activation):
    inputs = keras.Input(input_shape, name="image")
    x = _practice_features(preprocess(inputs, "unit"))
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = _dense_head(x, 128, 0.3)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


@register_model(
    name="practice3",
    title="Practice 3: one more convolution, Flatten instead of GAP",
    family="report",
    description=(
        "Practice 2 with a fourth 128-filter convolution after the last pooling and Flatten in place of global "
        "average pooling. At the report's 50 px the last map is 1x1, so Flatten and GAP coincide; the extra "
        "convolution adds 148 k weights for no gain (85.00%). Its input must be at least 50 px."
    ),
    origin=REPORT,
    default_input_size=50,
    min_input_size=50,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block3_conv2",
    report_accuracy=0.85,
    recipe=REPORT_RECIPE,
)
def practice3(*, input_shape, num_classes, name, classifier_activation):
    inputs = keras.Input(input_shape, name="image")
    x = _practice_features(preprocess(inputs, "unit"))
    x = _conv(128, "block4_conv1")(x)
    x = batch_normalization("block4_bn")(x)
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = _dense_head(x, 128, 0.3)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


VGG_LIKE_BLOCKS = ((64, 128), (128, 256), (256, 256, 512), (512, 512, 512), (512, 512, 512))


def _vgg_like(input_shape, num_classes, name, classifier_activation, bn_every_conv: bool):
    inputs = keras.Input(input_shape, name="image")
    x = preprocess(inputs, "unit")
    for block, filters_list in enumerate(VGG_LIKE_BLOCKS, start=1):
        for index, filters in enumerate(filters_list, start=1):
            if bn_every_conv:  # Practice 5: conv without bias (BN's shift replaces it) -> BN -> ReLU
                x = conv_bn_relu(x, filters, f"block{block}", index)
            else:
                x = _conv(filters, f"block{block}_conv{index}", padding="same")(x)
        if not bn_every_conv:
            x = batch_normalization(f"block{block}_bn")(x)
        x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = _dense_head(x, 512, 0.3)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


@register_model(
    name="practice4",
    title="Practice 4: VGG16-like network (the report's best)",
    family="report",
    description=(
        "Thirteen same-padded 3x3 convolutions in five blocks, widening from 64 to 512 filters while max pooling "
        "halves the map five times: the VGG idea that stacks of small convolutions see as far as one big one "
        "with fewer weights. Batch normalisation after each block, then GAP and two 512-unit dense layers with "
        "dropout. 17.6 M parameters; the report's best at 87.29%, on images upscaled to 224 px. It works on "
        "smaller images too (at least 32 px) and trains far faster there."
    ),
    origin=REPORT,
    default_input_size=224,
    min_input_size=32,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block5_conv3",
    report_accuracy=0.8729,
    recipe=REPORT_RECIPE,
)
def practice4(*, input_shape, num_classes, name, classifier_activation):
    return _vgg_like(input_shape, num_classes, name, classifier_activation, bn_every_conv=False)


@register_model(
    name="practice5",
    title="Practice 5: Practice 4 with batch normalisation after every convolution",
    family="report",
    description=(
        "Practice 4 with each convolution followed by batch normalisation and then the ReLU, and no convolution "
        "bias (the normalisation's learned shift does that job). The modern ordering; in the report it scored "
        "a little lower (84.79%), a reminder that one run per model says little."
    ),
    origin=REPORT,
    default_input_size=224,
    min_input_size=32,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block5_relu3",
    report_accuracy=0.8479,
    recipe=REPORT_RECIPE,
)
def practice5(*, input_shape, num_classes, name, classifier_activation):
    return _vgg_like(input_shape, num_classes, name, classifier_activation, bn_every_conv=True)
