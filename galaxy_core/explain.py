"""What a network looked at: Grad-CAM heatmaps, feature maps and first-layer filters, as arrays.

Grad-CAM (Selvaraju et al. 2017) weighs each channel of a convolutional layer by the mean gradient of a class
score over it, sums the weighted channels and keeps the positive part: where the evidence for that class lies.
The score is the class's logit, not its probability: a confident softmax is flat (saturated) and its gradient
nearly vanishes. Every model in the registry keeps one flat functional graph with a "logits" layer, so one
sub-model from the input to (layer, logits) works for all of them, also after a .keras round trip.
"""

from __future__ import annotations

import weakref

import numpy as np

from galaxy_core.errors import InvalidInputError

LOGITS_LAYER = "logits"
GRADCAM_BATCH = 32
# Anchor colours of the "turbo" colormap (Google, 2019): dark blue (cold) to dark red (hot).
TURBO_ANCHORS = np.array(
    [
        [48, 18, 59],
        [70, 107, 227],
        [40, 188, 235],
        [50, 241, 151],
        [164, 252, 60],
        [238, 207, 58],
        [251, 128, 34],
        [209, 48, 5],
        [122, 4, 3],
    ],
    dtype=np.float32,
)

# model -> {layer name: compiled Grad-CAM function}; dropped with the model.
_gradcam_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _output_rank(layer) -> int:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # a layer with several outputs, or never called
        return 0


def spatial_layer_names(model) -> list[str]:
    """Layers whose output is a (batch, height, width, channels) map, input and preprocessing left out."""
    import keras

    return [
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and layer.name != "preprocess" and _output_rank(layer) == 4
    ]


def default_gradcam_layer(model) -> str:
    """The layer the model's registry entry declares; for another model, its last spatial layer."""
    from galaxy_core.models import list_models, model_info

    names = spatial_layer_names(model)
    if not names:
        raise InvalidInputError(f"model {model.name!r} has no convolutional (spatial) layer to explain")
    declared = model_info(model.name).gradcam_layer if model.name in list_models() else None
    return declared if declared in names else names[-1]


def _gradcam_function(model, layer_name: str):
    """A compiled function (images, class indices, -1 for the predicted class) -> heatmaps, one per model and
    layer: a sub-model from the input to (layer, logits), and the gradient of the chosen logit."""
    import keras
    import tensorflow as tf

    functions = _gradcam_functions.setdefault(model, {})
    if layer_name in functions:
        return functions[layer_name]
    if layer_name not in spatial_layer_names(model):
        raise InvalidInputError(
            f"{layer_name!r} is not a spatial layer of {model.name}; choose one of: "
            + ", ".join(spatial_layer_names(model))
        )
    try:
        logits_output = model.get_layer(LOGITS_LAYER).output
    except ValueError as error:
        raise InvalidInputError(f"model {model.name!r} has no {LOGITS_LAYER!r} layer to explain") from error
    probe = keras.Model(model.input, [model.get_layer(layer_name).output, logits_output])

    @tf.function(reduce_retracing=True)
    def heatmaps(images, classes):
        with tf.GradientTape() as tape:
            features, logits = probe(images, training=False)
            features = tf.cast(features, tf.float32)
            chosen = tf.where(classes < 0, tf.argmax(logits, axis=1, output_type=tf.int32), classes)
            score = tf.gather(logits, chosen, axis=1, batch_dims=1)
        gradients = tape.gradient(score, features)
        channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(features * channel_weights, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]
        return tf.math.divide_no_nan(cam, tf.reduce_max(cam, axis=(1, 2), keepdims=True))

    functions[layer_name] = heatmaps
    return heatmaps


def _as_batch(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or one (H, W, C) image, got shape {images.shape}")
    return images


def gradcam(model, images, class_index=None, layer_name: str | None = None) -> np.ndarray:
    """One heatmap per image, shape (N, H, W) at the images' size, values in [0, 1].

    `class_index`: None for each image's predicted class, an int for the same class for all, or one index per
    image. `layer_name`: None for the model's declared Grad-CAM layer. A map with no positive evidence is all
    zeros.
    """
    images = _as_batch(images)
    compute = _gradcam_function(model, layer_name or default_gradcam_layer(model))
    wanted = -1 if class_index is None else class_index
    classes = np.broadcast_to(np.asarray(wanted, dtype=np.int32), (len(images),))
    num_classes = model.output.shape[-1]
    if class_index is not None and (classes.min() < 0 or classes.max() >= num_classes):
        raise InvalidInputError(f"class_index must be 0-{num_classes - 1} for {model.name}, got {class_index!r}")
    heatmaps = [
        compute(images[start : start + GRADCAM_BATCH], classes[start : start + GRADCAM_BATCH]).numpy()
        for start in range(0, len(images), GRADCAM_BATCH)
    ]
    return np.clip(np.concatenate(heatmaps), 0.0, 1.0)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map (H, W) as turbo-coloured uint8 RGB (H, W, 3)."""
    positions = np.linspace(0.0, 1.0, len(TURBO_ANCHORS))
    values = np.clip(heatmap, 0.0, 1.0)
    channels = [np.interp(values, positions, TURBO_ANCHORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """The image (H, W, 1 or 3, uint8) with the heatmap painted over it where it is hot; uint8 RGB.

    Cold areas keep the galaxy as it is; the hottest take `strength` of the heatmap's colour.
    """
    if image.shape[:2] != heatmap.shape:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape} differ in size")
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    weight = (strength * np.clip(heatmap, 0.0, 1.0))[..., None]
    return np.rint(rgb * (1 - weight) + colorize(heatmap) * weight).astype(np.uint8)


def feature_maps(model, image: np.ndarray, layer_name: str) -> np.ndarray:
    """The output of `layer_name` for one image, (h, w, channels), each channel scaled to [0, 1]."""
    import keras

    if layer_name not in spatial_layer_names(model):
        raise InvalidInputError(f"{layer_name!r} is not a spatial layer of {model.name}")
    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    maps = np.asarray(probe(_as_batch(image), training=False), dtype=np.float32)[0]
    low, high = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
    return np.divide(maps - low, high - low, out=np.zeros_like(maps), where=high > low)


def first_conv_filters(model) -> tuple[str, np.ndarray]:
    """(layer name, kernels as images (filters, k, k, 1 or 3) uint8) of the model's first 2-D convolution.

    Each kernel is scaled on its own to 0-255, so its pattern shows whatever its magnitude.
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = np.asarray(layer.kernel, dtype=np.float32)  # (k, k, in, out)
            kernel = np.moveaxis(kernel, -1, 0)
            if kernel.shape[-1] not in (1, 3):
                kernel = kernel.mean(axis=-1, keepdims=True)
            low = kernel.min(axis=(1, 2, 3), keepdims=True)
            high = kernel.max(axis=(1, 2, 3), keepdims=True)
            scaled = np.divide(kernel - low, high - low, out=np.zeros_like(kernel), where=high > low)
            return layer.name, np.rint(scaled * 255).astype(np.uint8)
    raise InvalidInputError(f"model {model.name!r} has no 2-D convolution")
