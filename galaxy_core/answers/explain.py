"""What a network looked at: Grad-CAM and occlusion heatmaps, feature maps, first-layer filters and the features
it sums an image up with (its embedding), as arrays.

Grad-CAM (Selvaraju et al. 2017) weighs each channel of a convolutional layer by the mean gradient of a class
score over it, sums the weighted channels and keeps the positive part: where the evidence for that class lies.
The score is the class's logit, not its probability: a confident softmax is flat (saturated) and its gradient
nearly vanishes. Every model in the registry keeps one flat functional graph with a "logits" layer, so one
sub-model from the input to (layer, logits) works for all of them, also after a .keras round trip.

Occlusion sensitivity (Zeiler & Fergus 2014) asks the model itself instead of its gradients: cover one patch of
the image, and see how much the class's probability drops. It needs nothing of the model's insides, so it checks
Grad-CAM from outside: where the two agree, the evidence is there; where they differ, the gradient of one layer
and the model's behaviour tell different stories (an occluded patch can also be new evidence of its own).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from galaxy_core.answers.prediction import predict_in_batches
from galaxy_core.convolution import same_padding
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
    from galaxy_core.models.ensemble import ensemble_members

    images = _as_batch(images)
    members = ensemble_members(model)
    if members:
        return _ensemble_gradcam(model, members, images, class_index, layer_name)
    compute = _gradcam_function(model, layer_name or default_gradcam_layer(model))
    classes = _class_indices(model, len(images), class_index).astype(np.int32)
    heatmaps = [
        compute(images[start : start + GRADCAM_BATCH], classes[start : start + GRADCAM_BATCH]).numpy()
        for start in range(0, len(images), GRADCAM_BATCH)
    ]
    return np.clip(np.concatenate(heatmaps), 0.0, 1.0)


def _ensemble_gradcam(model, members: list, images: np.ndarray, class_index, layer_name: str | None) -> np.ndarray:
    """An ensemble's Grad-CAM: each member's map (at its own declared layer) for the ensemble's class, averaged with
    the members' weights and scaled to a peak of 1."""
    if layer_name:
        raise InvalidInputError(
            "an ensemble's Grad-CAM reads each member at its own layer: look at one member to choose a layer"
        )
    classes = _class_indices(model, len(images), class_index)
    if class_index is None:
        classes = predict_in_batches(model, images).argmax(axis=1)
    total = sum(weight * gradcam(member, images, classes) for member, weight in members)
    peaks = total.max(axis=(1, 2), keepdims=True)
    return np.divide(total, peaks, out=np.zeros_like(total), where=peaks > 0)


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


def _class_indices(model, count: int, class_index) -> np.ndarray:
    """One class per image from None (the predicted one, marked -1), one int, or one index per image."""
    num_classes = model.output.shape[-1]
    wanted = -1 if class_index is None else class_index
    try:
        classes = np.broadcast_to(np.asarray(wanted, dtype=np.int64), (count,))
    except ValueError as error:
        raise InvalidInputError(f"class_index must be one class or one per image ({count}), got {wanted!r}") from error
    if class_index is not None and (classes.min() < 0 or classes.max() >= num_classes):
        raise InvalidInputError(f"class_index must be 0-{num_classes - 1} for {model.name}, got {class_index!r}")
    return classes


def _patch_corners(size: int, patch: int, stride: int) -> list[int]:
    """Where patches start along one side: every `stride` pixels, the last one flush with the edge."""
    corners = list(range(0, size - patch + 1, stride))
    return corners if corners[-1] == size - patch else [*corners, size - patch]


def occlusion(model, images, class_index=None, patch: int = 8, stride: int = 4) -> np.ndarray:
    """Occlusion sensitivity: one map per image, shape (N, H, W), values in [0, 1].

    A `patch` x `patch` square of the image's mean colour slides over it every `stride` pixels; each pixel's value
    is the mean drop of the class probability over the patches that cover it, scaled by the image's largest drop
    (1 = covering here costs the most; an image whose class no patch weakens is all zeros). `class_index` as for
    `gradcam`: None for each image's predicted class.
    """
    images = _as_batch(images)
    height, width = images.shape[1:3]
    for name, value in (("patch", patch), ("stride", stride)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise InvalidInputError(f"occlusion {name} must be a whole number >= 1, got {value!r}")
    if patch > min(height, width):
        raise InvalidInputError(f"the occlusion patch ({patch} px) is larger than the image ({height}x{width} px)")
    classes = _class_indices(model, len(images), class_index)
    tops, lefts = _patch_corners(height, patch, stride), _patch_corners(width, patch, stride)
    corners = [(top, left) for top in tops for left in lefts]
    maps = np.zeros((len(images), height, width), np.float32)
    for index, image in enumerate(images):
        base = predict_in_batches(model, image[None])[0]
        chosen = int(base.argmax()) if classes[index] < 0 else int(classes[index])
        covered = np.repeat(image[None], len(corners), axis=0)
        for copy, (top, left) in zip(covered, corners, strict=True):
            copy[top : top + patch, left : left + patch] = image.mean(axis=(0, 1))
        probabilities = predict_in_batches(model, covered)
        drops = np.maximum(base[chosen] - probabilities[:, chosen], 0.0)
        total, coverage = np.zeros((height, width), np.float32), np.zeros((height, width), np.float32)
        for drop, (top, left) in zip(drops, corners, strict=True):
            total[top : top + patch, left : left + patch] += drop
            coverage[top : top + patch, left : left + patch] += 1
        mean_drop = total / coverage
        peak = mean_drop.max()
        maps[index] = mean_drop / peak if peak > 0 else 0.0
    return maps


def embedding(model, images, layer_name: str | None = None) -> np.ndarray:
    """The features the model sums each image up with, (N, D) float32: by default what its classifier reads (the
    input of the "logits" layer: for the lab's models, the globally pooled channels after the last convolution);
    a named spatial layer's maps are averaged over height and width."""
    import keras

    from galaxy_core.models.ensemble import ensemble_members

    if ensemble_members(model):
        raise InvalidInputError("an ensemble has no features of its own: look at one of its members")
    if layer_name is None:
        try:
            output = model.get_layer(LOGITS_LAYER).input
        except ValueError as error:
            raise InvalidInputError(
                f"model {model.name!r} has no {LOGITS_LAYER!r} layer to read its features from"
            ) from error
    else:
        try:
            output = model.get_layer(layer_name).output
        except ValueError as error:
            raise InvalidInputError(f"model {model.name!r} has no layer {layer_name!r}") from error
    features = predict_in_batches(keras.Model(model.input, output), _as_batch(images))
    if features.ndim == 4:
        features = features.mean(axis=(1, 2))
    if features.ndim != 2:
        raise InvalidInputError(f"layer {layer_name!r} of {model.name} gives {features.ndim - 1}-D features per image")
    return features


def project_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal component analysis to two dimensions: (N, 2) coordinates and the share of the features' variance
    each axis keeps. Features are centred and each scaled by its spread (a channel's scale says nothing of its
    meaning); axis signs are fixed (largest coordinate positive) so a figure does not flip between calls."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 3:
        raise InvalidInputError(f"a 2-D projection needs at least 3 feature vectors, got shape {features.shape}")
    spread = features.std(axis=0)
    scaled = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    _, singular, axes = np.linalg.svd(scaled, full_matrices=False)
    axes = axes[:2]
    if len(axes) < 2:  # one feature: the second axis is flat
        axes = np.vstack([axes, np.zeros_like(axes)])
    coordinates = scaled @ axes.T
    signs = np.where(np.abs(coordinates.max(axis=0)) >= np.abs(coordinates.min(axis=0)), 1.0, -1.0)
    variance = singular**2
    shares = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return (coordinates * signs).astype(np.float32), np.pad(shares, (0, 2 - len(shares)))


def map_agreement(first: np.ndarray, second: np.ndarray) -> float | None:
    """How alike two heatmaps of one image are: their pixels' correlation, -1 to 1; None when either is flat (a
    map with no evidence anywhere agrees or disagrees with nothing)."""
    first, second = np.ravel(first).astype(np.float64), np.ravel(second).astype(np.float64)
    if first.shape != second.shape:
        raise InvalidInputError(f"maps of {first.size} and {second.size} pixels cannot be compared")
    if first.std() == 0 or second.std() == 0:
        return None
    return float(np.corrcoef(first, second)[0, 1])


@dataclass(frozen=True)
class ReceptiveField:
    """Which input pixels one unit of a layer can see: a `size` x `size` square; neighbouring units are `jump`
    pixels apart; unit (i, j)'s square is centred on pixel (first_centre + i * jump, first_centre + j * jump)."""

    layer: str
    size: int
    jump: int
    first_centre: float
    map_size: int  # the layer's output height (and width)

    def box(self, unit: int | None = None) -> tuple[float, float]:
        """(start, end) in input pixels, along either side, of the unit's square (default: the middle unit's);
        it may reach past the image, where padding is all the unit sees."""
        unit = self.map_size // 2 if unit is None else unit
        centre = self.first_centre + unit * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2


def _window(layer) -> tuple[int, int, str] | None:
    """(effective kernel size, stride, padding) of a sliding-window layer; None for any other layer."""
    if hasattr(layer, "kernel_size"):
        size, dilation = layer.kernel_size[0], getattr(layer, "dilation_rate", (1,))[0]
        return dilation * (size - 1) + 1, layer.strides[0], layer.padding
    if hasattr(layer, "pool_size") and layer.pool_size is not None:
        return layer.pool_size[0], (layer.strides or layer.pool_size)[0], layer.padding
    return None


def receptive_field(model, layer_name: str) -> ReceptiveField:
    """The receptive field of `layer_name`'s units, worked out along the model's graph: each sliding window
    widens it by (kernel - 1) x the jump so far and multiplies the jump by its stride; where paths merge
    (Inception's concatenation, a residual sum) the widest path counts. A path through a whole-image summary
    (global pooling, as in squeeze-and-excitation blocks) sees the whole image: such a field is reported as
    2 x side - 1 pixels, a square that covers the image from any unit."""
    import keras

    if layer_name not in spatial_layer_names(model):
        raise InvalidInputError(
            f"{layer_name!r} is not a spatial layer of {model.name}; choose one of: "
            + ", ".join(spatial_layer_names(model))
        )
    side = model.input.shape[1]
    whole_image = (2 * side - 1, side, (side - 1) / 2)
    fields: dict[str, tuple[int, int, float]] = {}  # layer name -> (size, jump, centre of the first unit)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            fields[layer.name] = (1, 1, 0.0)
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        sources = [(fields[tensor._keras_history.operation.name], tensor) for tensor in inputs]
        if _output_rank(layer) != 4:
            fields[layer.name] = whole_image  # one vector per image: it has seen everything
            continue
        out_side = layer.output.shape[1]
        if len(sources) > 1:  # a merge: the paths of the output's grid set the grid, the widest one the size
            aligned = [field for field, tensor in sources if len(tensor.shape) == 4 and tensor.shape[1] == out_side]
            size, jump, centre = max(aligned or [field for field, _ in sources], key=lambda field: field[0])
            size, in_side = max(size, *(field[0] for field, _ in sources)), out_side
        else:
            (size, jump, centre), tensor = sources[0]
            in_side = tensor.shape[1] if len(tensor.shape) == 4 else None
        if in_side is None:  # a vector made a map again (squeeze-and-excitation): still the whole image
            fields[layer.name] = whole_image
            continue
        window = _window(layer)
        if window is not None:
            kernel, stride, padding = window
            before = same_padding(in_side, kernel, stride)[0] if padding == "same" else 0
            centre += ((kernel - 1) / 2 - before) * jump
            size, jump = size + (kernel - 1) * jump, jump * stride
        elif isinstance(layer, keras.layers.ZeroPadding2D | keras.layers.Cropping2D):
            top = (layer.padding if isinstance(layer, keras.layers.ZeroPadding2D) else layer.cropping)[0][0]
            centre += (-top if isinstance(layer, keras.layers.ZeroPadding2D) else top) * jump
        elif out_side != in_side:
            raise InvalidInputError(f"the receptive field through {layer.name} ({type(layer).__name__}) is not known")
        fields[layer.name] = (size, jump, centre)
        if layer.name == layer_name:
            return ReceptiveField(layer_name, size, jump, centre, out_side)
    raise InvalidInputError(f"{layer_name!r} was not reached in {model.name}")
