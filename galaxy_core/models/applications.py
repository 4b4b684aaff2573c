"""Networks built on keras.applications bases: MobileNetV2, EfficientNetB0, and the report's VGG16 pair.

The base is built on our own preprocessed input tensor, so its layers sit in the same functional graph as ours
(no nested model): Grad-CAM and saving see one flat graph. ImageNet weights are never downloaded behind a
user's back: with weights="auto" a model uses the weights file when it is in Keras' cache (~/.keras/models, or
$KERAS_HOME/models) and random initialisation otherwise; `model.weights_source` says which it got.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from galaxy_core.errors import InvalidInputError
from galaxy_core.models.layers import (
    BATCH_NORM_MOMENTUM,
    PREPROCESS_MODES,
    classifier,
    pooled_classifier,
    preprocess,
)
from galaxy_core.models.registry import Recipe, register_model

WEIGHT_CHOICES = ("auto", "imagenet", "none")
MOBILENET_WEIGHT_SIZES = (96, 128, 160, 192, 224)


def keras_weights_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(weights: str, file_name: str) -> tuple[str | None, str]:
    """(the `weights=` value for keras.applications, what the model gets, in words).

    weights: "auto" (cached ImageNet file if present, else random), "imagenet" (Keras may download),
    "none" (random), or the path of a weights file.
    """
    if weights == "none":
        return None, "random initialisation (weights='none')"
    if weights == "imagenet":
        return "imagenet", "ImageNet weights (downloaded by Keras unless cached)"
    if weights == "auto":
        cached = keras_weights_dir() / file_name
        if cached.is_file():
            return str(cached), f"ImageNet weights from {cached}"
        return None, (
            f"random initialisation: ImageNet weights file {file_name} is not in {keras_weights_dir()} "
            "(put it there, or pass weights=PATH)"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"weights must be one of {WEIGHT_CHOICES} or an existing file; {path} does not exist")
    return str(path), f"weights from {path}"


def _with_base(constructor, file_name, *, input_shape, mode, weights, base_trainable):
    """(inputs, base output, weights source): the application's layers built on our preprocessed input."""
    inputs = keras.Input(input_shape, name="image")
    # ImageNet bases expect three channels: a gray image is repeated into R, G and B.
    x = preprocess(inputs, mode, to_rgb=input_shape[-1] == 1)
    weights_value, source = resolve_weights(weights, file_name)
    base = constructor(include_top=False, weights=weights_value, input_tensor=x)
    for layer in base.layers:
        if layer.name != "preprocess" and not isinstance(layer, keras.layers.InputLayer):
            layer.trainable = base_trainable
        if isinstance(layer, keras.layers.BatchNormalization):
            # MobileNetV2's 0.999 kept validation at chance for 4+ epochs from scratch on gz1-3class
            # (docs/contributing.md, "Decisions worth knowing").
            layer.momentum = BATCH_NORM_MOMENTUM
    return inputs, base.output, source


def _finish(inputs, outputs, name, source):
    model = keras.Model(inputs, outputs, name=name)
    model.weights_source = source
    return model


@register_model(
    name="mobilenet_v2",
    title="MobileNetV2",
    family="modern",
    description=(
        "Built for phones (Sandler et al. 2018): depthwise separable convolutions filter each channel on its own "
        "and then mix channels with a 1x1 convolution, about 8 times cheaper than a full 3x3 convolution; "
        "inverted residual blocks expand, filter and squeeze back. 2.3 M parameters. Uses ImageNet weights when "
        "the file is in Keras' cache, random initialisation otherwise."
    ),
    origin="keras.applications.MobileNetV2 (Sandler et al., 'MobileNetV2: Inverted Residuals and Linear Bottlenecks')",
    default_input_size=96,
    min_input_size=64,  # five stride-2 stages: below 64 px the last map is 1x1 and Grad-CAM sees nothing
    preprocessing=PREPROCESS_MODES["symmetric"],
    gradcam_layer="out_relu",
)
def mobilenet_v2(
    *,
    input_shape,
    num_classes,
    name,
    classifier_activation,
    weights: str = "auto",
    alpha: float = 1.0,
    dropout: float = 0.2,
):
    rows = input_shape[0] if input_shape[0] in MOBILENET_WEIGHT_SIZES else 224
    file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"

    def constructor(**kwargs):
        return keras.applications.MobileNetV2(alpha=alpha, **kwargs)

    inputs, x, source = _with_base(
        constructor, file_name, input_shape=input_shape, mode="symmetric", weights=weights, base_trainable=True
    )
    return _finish(inputs, pooled_classifier(x, num_classes, classifier_activation, dropout), name, source)


@register_model(
    name="efficientnet_b0",
    title="EfficientNetB0",
    family="modern",
    description=(
        "Found by neural architecture search and scaled by rule (Tan & Le 2019): MobileNet-style blocks with "
        "squeeze-and-excitation, which re-weights channels by global context, and the smooth swish activation. "
        "4 M parameters; it normalises pixels itself. Uses ImageNet weights when the file is in Keras' cache, "
        "random initialisation otherwise."
    ),
    origin="keras.applications.EfficientNetB0 (Tan & Le, 'EfficientNet: Rethinking Model Scaling for CNNs')",
    default_input_size=96,
    min_input_size=64,  # as MobileNetV2
    preprocessing=PREPROCESS_MODES["raw"],
    gradcam_layer="top_activation",
)
def efficientnet_b0(
    *, input_shape, num_classes, name, classifier_activation, weights: str = "auto", dropout: float = 0.2
):
    inputs, x, source = _with_base(
        keras.applications.EfficientNetB0,
        "efficientnetb0_notop.h5",
        input_shape=input_shape,
        mode="raw",
        weights=weights,
        base_trainable=True,
    )
    return _finish(inputs, pooled_classifier(x, num_classes, classifier_activation, dropout), name, source)


VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


@register_model(
    name="vgg16_report",
    title="VGG16 as in the report (collapses)",
    family="report",
    description=(
        "The report's transfer-learning attempt, reproduced with its mistakes: an ImageNet VGG16 base fed pixels "
        "scaled by 1/255 instead of ImageNet's own preprocessing, a 128 M-parameter head "
        "(Flatten -> 4096 -> 2048 -> 1024), and every weight trained with Adam at 1e-3. The huge updates wreck "
        "the pretrained features and the network falls back to predicting one class (32.29%, chance level). "
        "Measured in this lab (benchmarks/bench_report_collapse.py; no ImageNet weights on that machine, so both "
        "started from random weights): after 5 epochs at 64 px on gz1-3class it called all 649 test galaxies "
        "'smooth' (balanced accuracy 0.333), while vgg16_fixed's small head on the same frozen base, trained the "
        "same way, did not collapse (0.548). Train it next to vgg16_fixed to see why. Slow on a CPU: try 64-96 px."
    ),
    origin="the student report (../shared/SEED.md), 'VGG16 1 and 2'",
    default_input_size=224,
    min_input_size=32,
    preprocessing=PREPROCESS_MODES["unit"] + " (the report's mistake: ImageNet weights expect 'caffe')",
    gradcam_layer="block5_conv3",
    report_accuracy=0.3229,
    recipe=Recipe(optimizer="adam", learning_rate=1e-3, batch_size=16),
)
def vgg16_report(*, input_shape, num_classes, name, classifier_activation, weights: str = "auto"):
    inputs, x, source = _with_base(
        keras.applications.VGG16, VGG16_FILE, input_shape=input_shape, mode="unit", weights=weights, base_trainable=True
    )
    x = keras.layers.Flatten(name="head_flatten")(x)
    for index, units in enumerate((4096, 2048, 1024), start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense{index}")(x)
    return _finish(inputs, classifier(x, num_classes, classifier_activation), name, source)


@register_model(
    name="vgg16_fixed",
    title="VGG16 done right (transfer learning)",
    family="modern",
    description=(
        "The report's VGG16 with the fixes: ImageNet's own preprocessing (RGB to BGR, subtract the channel "
        "means), the pretrained base frozen (so its weights really stay put) under a small head (global average "
        "pooling -> 256 -> dropout), trained at Adam 1e-3; then the last block is unfrozen and fine-tuned at "
        "1e-5. Only ~130 k weights learn at first, so it cannot wreck the features. Needs the ImageNet weights "
        "file to show transfer learning; slow on a CPU at 224 px, try 64-96 px."
    ),
    origin="keras.applications.VGG16 (Simonyan & Zisserman 2014), with the standard transfer-learning recipe",
    default_input_size=224,
    min_input_size=32,
    preprocessing=PREPROCESS_MODES["caffe"],
    gradcam_layer="block5_conv3",
    recipe=Recipe(
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=32,
        fine_tune_prefix="block5_",
        fine_tune_learning_rate=1e-5,
        fine_tune_epochs=5,
    ),
)
def vgg16_fixed(*, input_shape, num_classes, name, classifier_activation, weights: str = "auto", dropout: float = 0.5):
    inputs, x, source = _with_base(
        keras.applications.VGG16,
        VGG16_FILE,
        input_shape=input_shape,
        mode="caffe",
        weights=weights,
        base_trainable=False,
    )
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = keras.layers.Dense(256, activation="relu", name="head_dense1")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return _finish(inputs, classifier(x, num_classes, classifier_activation), name, source)
