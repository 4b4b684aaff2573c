"""Grad-CAM, occlusion, embeddings, feature maps and filters: every registered model, a saved-and-loaded model,
and sanity checks on networks whose evidence is known (trained to find a bright square, or built by hand)."""

import keras
import numpy as np
import pytest

from galaxy_core.answers.explain import (
    colorize,
    default_gradcam_layer,
    embedding,
    feature_maps,
    first_conv_filters,
    gradcam,
    map_agreement,
    occlusion,
    overlay,
    project_2d,
    receptive_field,
    spatial_layer_names,
)
from galaxy_core.models import create_model, list_models, model_info
from tests.helpers import shared_model


def blob_images(size: int, count: int = 2, channels: int = 3) -> np.ndarray:
    """Noisy images with one bright off-centre blob each, at a different place in each image."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for index in range(count):
        x, y = size * (0.3 + 0.4 * index / max(1, count - 1)), size * 0.6
        blob = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (size / 8) ** 2))
        images.append(np.clip(blob[..., None] + rng.uniform(0, 30, (size, size, channels)), 0, 255))
    return np.stack(images).astype(np.float32)


@pytest.mark.parametrize("name", list_models())
def test_gradcam_works_for_every_registered_model(name):
    size = max(32, model_info(name).min_input_size)
    model = shared_model(name, (size, size, 3))  # from seed 0: an untrained network's maps depend on its weights
    images = blob_images(size)
    assert default_gradcam_layer(model) == model_info(name).gradcam_layer
    maps = [gradcam(model, images, class_index) for class_index in range(3)]
    for heatmaps in maps:
        assert heatmaps.shape == (2, size, size)
        assert heatmaps.dtype == np.float32
        assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    # An untrained network may hold no positive evidence at all for a class (an all-zero map); for some class it
    # must show structure in every image.
    assert any(all(heatmap.std() > 0.01 for heatmap in heatmaps) for heatmaps in maps)


@pytest.mark.parametrize("name", list_models())
def test_occlusion_and_embedding_work_for_every_registered_model(name):
    size = max(32, model_info(name).min_input_size)
    model = shared_model(name, (size, size, 3))
    images = blob_images(size)
    maps = occlusion(model, images, patch=size // 2, stride=size // 2)  # 4 patches: the shapes are the point here
    assert maps.shape == (2, size, size) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    features = embedding(model, images)
    assert features.shape == (2, model.get_layer("logits").input.shape[-1]) and np.isfinite(features).all()
    assert embedding(model, images, default_gradcam_layer(model)).shape[0] == 2


@pytest.mark.parametrize("name", ["inception_small", "mobilenet_v2", "custom_cnn"])
def test_gradcam_of_a_loaded_model_equals_the_original(name, tmp_path):
    size = max(32, model_info(name).min_input_size)
    model = shared_model(name, (size, size, 3))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    images = blob_images(size)
    np.testing.assert_allclose(gradcam(loaded, images, 2), gradcam(model, images, 2), atol=1e-4)


def test_class_index_per_image_and_layer_choice():
    model = create_model("custom_cnn", (32, 32, 1), 3, blocks=2, filters=8)
    images = blob_images(32, count=3, channels=1)
    per_image = gradcam(model, images, class_index=[0, 1, 2])
    for index in range(3):
        np.testing.assert_allclose(per_image[index], gradcam(model, images[index], index)[0], atol=1e-5)
    early = gradcam(model, images, 0, layer_name="block1_relu1")
    assert early.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="class_index must be 0-2"):
        gradcam(model, images, class_index=3)
    with pytest.raises(ValueError, match="is not a spatial layer"):
        gradcam(model, images, layer_name="logits")
    assert "preprocess" not in spatial_layer_names(model) and "block2_conv1" in spatial_layer_names(model)


def square_images(count: int, size: int, square: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dim noise; half the images (label 1) get a bright square at a random place. Returns images, labels and
    each square's top-left corner."""
    images = rng.uniform(0, 60, (count, size, size, 1)).astype(np.float32)
    labels = np.arange(count) % 2
    corners = rng.integers(0, size - square, (count, 2))
    for image, label, (top, left) in zip(images, labels, corners, strict=True):
        if label:
            image[top : top + square, left : left + square] = 255
    return images, labels, corners


def test_gradcam_peak_falls_on_the_bright_square_a_network_learned_to_find():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    size, square = 32, 6
    images, labels, _ = square_images(400, size, square, rng)
    model = create_model("custom_cnn", (size, size, 1), 2, blocks=2, filters=8, dropout=0.0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    test_images, test_labels, corners = square_images(40, size, square, rng)
    with_square = test_labels == 1
    assert (model.predict(test_images, verbose=0).argmax(axis=1) == test_labels).mean() > 0.9
    heatmaps = gradcam(model, test_images[with_square], class_index=1)
    hits = 0
    for heatmap, (top, left) in zip(heatmaps, corners[with_square], strict=True):
        peak_y, peak_x = np.unravel_index(heatmap.argmax(), heatmap.shape)
        # On the square, give or take the 4-pixel cells of the explained layer (two 2x poolings).
        hits += top - 4 <= peak_y < top + square + 4 and left - 4 <= peak_x < left + square + 4
    assert hits >= 0.9 * with_square.sum()


def test_overlay_keeps_cold_pixels_and_colours_hot_ones():
    image = np.full((8, 8, 1), 100, np.uint8)
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[2, 3] = 1.0
    painted = overlay(image, heatmap, strength=0.6)
    assert painted.shape == (8, 8, 3) and painted.dtype == np.uint8
    assert (painted[0, 0] == 100).all()
    hot = colorize(np.ones((1, 1)))[0, 0]
    np.testing.assert_allclose(painted[2, 3], np.rint(100 * 0.4 + hot * 0.6), atol=1)
    assert tuple(colorize(np.zeros((1, 1)))[0, 0]) != tuple(hot)
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, np.zeros((4, 4)))


def test_feature_maps_and_first_layer_filters():
    model = create_model("custom_cnn", (32, 32, 3), 3, blocks=2, filters=8)
    maps = feature_maps(model, blob_images(32)[0], "block1_relu1")
    assert maps.shape == (32, 32, 8) and maps.min() >= 0 and maps.max() <= 1
    name, filters = first_conv_filters(model)
    assert name == "block1_conv1" and filters.shape == (8, 3, 3, 3) and filters.dtype == np.uint8
    assert filters.reshape(8, -1).max(axis=1).min() == 255  # each kernel scaled on its own
    _, vgg_filters = first_conv_filters(create_model("practice1", (34, 34, 3), 3))
    assert vgg_filters.shape[-1] in (1, 3)


def top_left_model(size: int = 16):
    """Two classes; class 1's logit is the mean brightness of the image's top-left quarter (nothing else counts)."""
    inputs = keras.Input((size, size, 1))
    quarter = keras.layers.Cropping2D(((0, size // 2), (0, size // 2)))(inputs)
    brightness = keras.layers.GlobalAveragePooling2D()(quarter)
    logits = keras.layers.Dense(2, name="logits", kernel_initializer=keras.initializers.Constant([[-0.005, 0.005]]))
    outputs = keras.layers.Activation("softmax")(logits(brightness))
    return keras.Model(inputs, outputs, name="top_left")


def test_occlusion_marks_only_where_the_evidence_is():
    model = top_left_model()
    image = np.zeros((16, 16, 1), np.float32)
    image[:8, :8] = 255  # class 1, from the top-left quarter
    heatmap = occlusion(model, image, patch=4, stride=4)[0]
    assert heatmap[:8, :8].min() > 0 and heatmap.max() == 1.0
    assert heatmap[8:, :].max() == 0 and heatmap[:, 8:].max() == 0
    # Class 0 only gains when the quarter is covered: nothing weakens it.
    assert occlusion(model, image, class_index=0, patch=4, stride=4).max() == 0
    # Overlapping patches: the edge of the quarter is covered by patches both on and off it.
    overlapping = occlusion(model, image, patch=4, stride=2)[0]
    assert overlapping[0, 0] == 1.0 and 0 < overlapping[8, 0] < overlapping[0, 0] and overlapping[12, 12] == 0


def test_occlusion_and_embedding_refuse_bad_settings_clearly():
    model = top_left_model()
    image = np.zeros((16, 16, 1), np.float32)
    with pytest.raises(ValueError, match=r"patch \(20 px\) is larger than the image \(16x16 px\)"):
        occlusion(model, image, patch=20)
    with pytest.raises(ValueError, match="stride must be a whole number >= 1"):
        occlusion(model, image, stride=0)
    with pytest.raises(ValueError, match="class_index must be 0-1"):
        occlusion(model, image, class_index=2)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        embedding(model, image, "nope")
    assert embedding(model, np.stack([image, image + 10])).shape == (2, 1)


def test_projection_keeps_the_direction_the_features_vary_along():
    rng = np.random.default_rng(0)
    along = rng.normal(size=(50, 1))
    features = np.hstack([along, 2 * along, -along]) + rng.normal(scale=0.01, size=(50, 3))
    coordinates, shares = project_2d(features)
    assert coordinates.shape == (50, 2) and shares[0] > 0.99 and shares.sum() <= 1.0 + 1e-6
    assert abs(np.corrcoef(coordinates[:, 0], along[:, 0])[0, 1]) > 0.99
    assert (coordinates.max(axis=0) >= -coordinates.min(axis=0)).all()  # signs fixed: largest coordinate positive
    np.testing.assert_allclose(project_2d(features)[0], coordinates)
    assert project_2d(np.ones((4, 1)))[0].shape == (4, 2)
    with pytest.raises(ValueError, match="at least 3 feature vectors"):
        project_2d(features[:2])


def test_map_agreement_is_a_correlation_and_flat_maps_have_none():
    ramp = np.linspace(0, 1, 16).reshape(4, 4)
    assert map_agreement(ramp, ramp) == pytest.approx(1.0)
    assert map_agreement(ramp, 1 - ramp) == pytest.approx(-1.0)
    assert map_agreement(ramp, np.zeros((4, 4))) is None
    with pytest.raises(ValueError, match="cannot be compared"):
        map_agreement(ramp, np.zeros((2, 2)))


def linear_branchy_model(size: int = 40):
    """Linear layers only (so every pixel a unit can see has a non-zero gradient): strides, both paddings,
    dilation, explicit zero padding, average pooling, and two branches of different reach joined."""
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(2, 3, padding="valid", name="conv_valid")(inputs)
    x = keras.layers.ZeroPadding2D(((2, 2), (2, 2)), name="pad")(x)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="conv_strided")(x)
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    narrow = keras.layers.Conv2D(2, 1, name="narrow")(x)
    wide = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="wide")(x)
    x = keras.layers.Concatenate(name="joined")([narrow, wide])
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="linear_branchy")


@pytest.mark.parametrize("layer_name", ["conv_valid", "conv_strided", "pool", "narrow", "joined"])
def test_receptive_field_is_where_a_units_gradient_reaches(layer_name):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = linear_branchy_model()
    field = receptive_field(model, layer_name)
    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    image = tf.constant(np.random.default_rng(0).normal(size=(1, 40, 40, 1)), tf.float32)
    unit = field.map_size // 2
    with tf.GradientTape() as tape:
        tape.watch(image)
        value = tf.reduce_sum(probe(image)[0, unit, unit])
    rows = np.nonzero(np.abs(tape.gradient(value, image).numpy()[0, :, :, 0]).sum(axis=1) > 1e-7)[0]
    start, end = field.box()
    # The gradient reaches exactly the pixels of the square that lie on the image.
    assert (rows.min(), rows.max()) == (max(0, start), min(39, end))


def test_receptive_field_arithmetic_by_hand_and_on_every_registered_model():
    model = linear_branchy_model()
    assert (receptive_field(model, "conv_valid").size, receptive_field(model, "conv_valid").jump) == (3, 1)
    assert (receptive_field(model, "conv_strided").size, receptive_field(model, "conv_strided").jump) == (5, 2)
    assert (receptive_field(model, "pool").size, receptive_field(model, "pool").jump) == (7, 4)
    assert receptive_field(model, "joined").size == 7 + 4 * 4  # the dilated 3x3 (5 wide) branch counts
    for name in list_models():
        size = max(32, model_info(name).min_input_size)
        built = shared_model(name, (size, size, 3))
        field = receptive_field(built, default_gradcam_layer(built))
        assert field.size > 1 and field.jump >= 1 and field.map_size >= 1
    with pytest.raises(ValueError, match="is not a spatial layer"):
        receptive_field(model, "logits")
