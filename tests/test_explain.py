"""Grad-CAM, feature maps and filters: every registered model, a saved-and-loaded model, and a sanity check on a
network trained to find a bright square."""

import keras
import numpy as np
import pytest

from galaxy_core.explain import (
    colorize,
    default_gradcam_layer,
    feature_maps,
    first_conv_filters,
    gradcam,
    overlay,
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
