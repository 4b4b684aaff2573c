"""Modern compact networks written out in a few lines each, small enough to train in minutes on a CPU at 64-96 px:
a ResNet (residual connections), a DenseNet (feature reuse) and an Inception net (parallel filter sizes)."""

from __future__ import annotations

import keras

from galaxy_core.errors import InvalidInputError
from galaxy_core.models.layers import (
    PREPROCESS_MODES,
    batch_normalization,
    classifier,
    conv_bn_relu,
    pooled_classifier,
    preprocess,
)
from galaxy_core.models.registry import Recipe, register_model

COMPACT_RECIPE = Recipe(optimizer="adam", learning_rate=1e-3, batch_size=32)


def _residual_block(x, filters: int, strides: int, name: str):
    """Two 3x3 convolutions whose output is added to the block's input (projected when the shape changes)."""
    shortcut = x
    y = conv_bn_relu(x, filters, f"{name}_a", strides=strides)
    y = keras.layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_b_conv"
    )(y)
    y = batch_normalization(f"{name}_b_bn")(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_shortcut_conv")(x)
        shortcut = batch_normalization(f"{name}_shortcut_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


@register_model(
    name="resnet_small",
    title="Small ResNet",
    family="modern",
    description=(
        "A residual network (He et al. 2015) with three stages of two residual blocks (32, 64, 128 filters). "
        "Each block adds its input to its output, so a block only has to learn a correction, and gradients flow "
        "straight through the additions: the idea that made networks of 100+ layers trainable. About 0.7 M "
        "parameters and 110 M multiply-adds per 64 px image; trains in minutes on a CPU."
    ),
    origin="He, Zhang, Ren & Sun, 'Deep Residual Learning for Image Recognition' (2015); CIFAR-style variant",
    default_input_size=64,
    min_input_size=16,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="stage3_block2_out",
    recipe=COMPACT_RECIPE,
)
def resnet_small(*, input_shape, num_classes, name, classifier_activation, width: int = 32, dropout: float = 0.2):
    if width < 1:
        raise InvalidInputError(f"width must be >= 1, got {width}")
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_relu(preprocess(inputs, "unit"), width, "stem")
    for stage, multiplier in enumerate((1, 2, 4), start=1):
        for block in (1, 2):
            # Every stage starts by halving the map (64 -> 32 -> 16 -> 8 px): four times cheaper than keeping
            # the first stage at full resolution, and a galaxy's shape survives it.
            strides = 2 if block == 1 else 1
            x = _residual_block(x, width * multiplier, strides, f"stage{stage}_block{block}")
    return keras.Model(inputs, pooled_classifier(x, num_classes, classifier_activation, dropout), name=name)


@register_model(
    name="densenet_small",
    title="Small DenseNet",
    family="modern",
    description=(
        "A densely connected network (Huang et al. 2017): inside a dense block every layer receives the "
        "feature maps of all layers before it (concatenated) and adds a few new ones (the growth rate). "
        "Features are reused instead of relearned, so the network is very thin: about 0.1 M parameters here. "
        "Transition layers (1x1 convolution + average pooling) shrink the maps between blocks."
    ),
    origin="Huang, Liu, van der Maaten & Weinberger, 'Densely Connected Convolutional Networks' (2017)",
    default_input_size=64,
    min_input_size=8,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="block3_out",
    recipe=COMPACT_RECIPE,
)
def densenet_small(
    *, input_shape, num_classes, name, classifier_activation, growth_rate: int = 12, layers_per_block: int = 4
):
    if growth_rate < 1 or layers_per_block < 1:
        raise InvalidInputError(f"growth_rate and layers_per_block must be >= 1, got {growth_rate}, {layers_per_block}")
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_relu(preprocess(inputs, "unit"), 2 * growth_rate, "stem")
    for block in (1, 2, 3):
        for layer in range(1, layers_per_block + 1):
            new = conv_bn_relu(x, growth_rate, f"block{block}_layer{layer}")
            x = keras.layers.Concatenate(name=f"block{block}_layer{layer}_concat")([x, new])
        if block < 3:
            x = conv_bn_relu(x, x.shape[-1] // 2, f"transition{block}", kernel_size=1)
            x = keras.layers.AveragePooling2D(2, name=f"transition{block}_pool")(x)
    x = batch_normalization("block3_bn")(x)
    x = keras.layers.ReLU(name="block3_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    return keras.Model(inputs, classifier(x, num_classes, classifier_activation), name=name)


def _inception_module(x, filters: int, name: str):
    """Four parallel paths (1x1; 3x3; two 3x3 = 5x5's field of view; pooling), concatenated."""
    quarter = filters // 4
    path1 = conv_bn_relu(x, quarter, f"{name}_1x1", kernel_size=1)
    path2 = conv_bn_relu(conv_bn_relu(x, quarter, f"{name}_3x3_reduce", kernel_size=1), quarter, f"{name}_3x3")
    path3 = conv_bn_relu(x, quarter, f"{name}_5x5_reduce", kernel_size=1)
    path3 = conv_bn_relu(conv_bn_relu(path3, quarter, f"{name}_5x5_a"), quarter, f"{name}_5x5_b")
    path4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    path4 = conv_bn_relu(path4, quarter, f"{name}_pool_proj", kernel_size=1)
    return keras.layers.Concatenate(name=f"{name}_concat")([path1, path2, path3, path4])


@register_model(
    name="inception_small",
    title="Small Inception (GoogLeNet-style)",
    family="modern",
    description=(
        "Inception modules (Szegedy et al. 2015, GoogLeNet) look at the same input with several filter sizes at "
        "once: 1x1, 3x3 and 5x5 paths and a pooling path, concatenated, so the network learns which scale "
        "matters. 1x1 convolutions first shrink the channels to keep it cheap. Four modules, about 0.1 M "
        "parameters."
    ),
    origin="Szegedy et al., 'Going Deeper with Convolutions' (2015); 5x5 paths as two 3x3 as in Inception v2",
    default_input_size=64,
    min_input_size=8,
    preprocessing=PREPROCESS_MODES["unit"],
    gradcam_layer="module4_concat",
    recipe=COMPACT_RECIPE,
)
def inception_small(*, input_shape, num_classes, name, classifier_activation, width: int = 64, dropout: float = 0.2):
    if width < 4:
        raise InvalidInputError(f"width must be >= 4 (four paths), got {width}")
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_relu(preprocess(inputs, "unit"), width // 2, "stem")
    x = keras.layers.MaxPooling2D(name="stem_pool")(x)
    x = _inception_module(x, width, "module1")
    x = _inception_module(x, width, "module2")
    x = keras.layers.MaxPooling2D(name="reduce_pool")(x)
    x = _inception_module(x, 2 * width, "module3")
    x = _inception_module(x, 2 * width, "module4")
    return keras.Model(inputs, pooled_classifier(x, num_classes, classifier_activation, dropout), name=name)
