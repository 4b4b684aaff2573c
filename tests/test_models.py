"""Every registered model: builds for 1 and 3 channels and 2, 3, 10 classes, runs, exposes its Grad-CAM layer and
survives a .keras round trip; the report's presets have the report's parameter counts."""

import keras
import numpy as np
import pytest

from galaxy_core.models import create_model, list_models, model_info
from galaxy_core.models.applications import resolve_weights
from galaxy_core.models.layers import BATCH_NORM_MOMENTUM
from tests.helpers import shared_model

MODELS = list_models()


def small_size(name: str) -> int:
    """The smallest input the model takes, at least 32 px: tests stay fast, even for VGG16."""
    return max(32, model_info(name).min_input_size)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_builds_and_runs_for_every_class_count(name, channels):
    size = small_size(name)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, channels)).astype("float32")
    for num_classes in (2, 3, 10):
        shape = (size, size, channels)
        model = shared_model(name, shape) if num_classes == 3 else create_model(name, shape, num_classes)
        assert isinstance(model, keras.Model) and model.name == name
        probabilities = np.asarray(model(images, training=False))
        assert probabilities.shape == (2, num_classes)
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
        feature_map = model.get_layer(model_info(name).gradcam_layer).output
        assert len(feature_map.shape) == 4 and feature_map.shape[1] > 1  # a spatial map, not a 1x1 vector


@pytest.mark.parametrize("name", MODELS)
def test_batch_normalisation_settles_within_an_epoch(name):
    """Every BN layer, keras.applications bases included, averages over about the last 10 batches, and saves so."""
    size = small_size(name)
    model = shared_model(name, (size, size, 3))
    momenta = {
        layer.get_config()["momentum"] for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta <= {BATCH_NORM_MOMENTUM}


@pytest.mark.parametrize("name", MODELS)
def test_keras_round_trip_gives_identical_outputs(name, tmp_path):
    size = small_size(name)
    model = shared_model(name, (size, size, 3))
    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_logits_are_exposed(name):
    size = small_size(name)
    model = create_model(name, (size, size, 3), 4, classifier_activation=None)
    assert model.output.shape == (None, 4)
    assert model.layers[-1].name == "logits"


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("tutorial", 4_353_475),
        ("practice1", 140_707),
        ("practice2", 173_731),
        ("practice3", 321_827),
        ("practice4", 17_572_099),
        ("practice5", 17_578_435),
    ],
)
def test_report_presets_have_the_report_parameter_counts(name, parameters):
    assert create_model(name).count_params() == parameters  # at the report's input size, 3 classes


def test_vgg16_report_is_the_report_128m_network():
    info = model_info("vgg16_report")
    assert info.default_input_size == 224 and info.report_accuracy == pytest.approx(0.3229)
    model = create_model("vgg16_report", weights="none")
    assert 127e6 < model.count_params() < 129e6
    assert all(layer.trainable for layer in model.layers)


def test_vgg16_fixed_freezes_its_base_for_real():
    model = create_model("vgg16_fixed", (32, 32, 3), weights="none")
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert "block5_conv3" in frozen and "block1_conv1" in frozen
    assert {"head_dense1", "logits"}.isdisjoint(frozen)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable < 200_000  # the head only
    assert model_info("vgg16_fixed").recipe.fine_tune_prefix == "block5_"


def test_imagenet_weights_come_from_the_keras_cache_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    value, source = resolve_weights("auto", "vgg16_notop.h5")
    assert value is None and "random initialisation" in source and str(tmp_path) in source
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg16_notop.h5").write_bytes(b"x")
    value, source = resolve_weights("auto", "vgg16_notop.h5")
    assert value == str(tmp_path / "models" / "vgg16_notop.h5") and source.startswith("ImageNet weights")
    assert create_model("mobilenet_v2", (64, 64, 3)).weights_source.startswith("random initialisation")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_weights(str(tmp_path / "missing.h5"), "x.h5")


def test_a_weights_file_is_loaded(tmp_path):
    source = create_model("mobilenet_v2", (96, 96, 3), weights="none")
    base_weights = tmp_path / "base.weights.h5"
    base = keras.Model(source.input, source.get_layer("out_relu").output)
    base.save_weights(base_weights)
    rebuilt = create_model("mobilenet_v2", (96, 96, 3), weights=str(base_weights))
    np.testing.assert_array_equal(
        rebuilt.get_layer("Conv1").get_weights()[0], source.get_layer("Conv1").get_weights()[0]
    )
    assert rebuilt.weights_source == f"weights from {base_weights}"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: create_model("lenet"), "unknown model 'lenet'; known models: tutorial, practice1"),
        (lambda: create_model("practice3", (40, 40, 3)), "practice3 needs images of at least 50 px"),
        (lambda: create_model("practice4", (16, 16, 3)), "at least 32 px"),
        (lambda: create_model("resnet_small", (64, 64, 2)), "channels must be 1"),
        (lambda: create_model("resnet_small", num_classes=1), "num_classes must be"),
        (lambda: create_model("resnet_small", depth=50), r"does not take \['depth'\]"),
        (lambda: create_model("custom_cnn", filters=-8), "filters must be >= 1, got -8"),
        (lambda: create_model("custom_cnn", (32, 32, 3), blocks=6), "needs at least 64 px"),
        (lambda: create_model("custom_cnn", pooling="median"), "pooling must be one of"),
        (lambda: create_model("densenet_small", growth_rate=0), "growth_rate and layers_per_block must be >= 1"),
        (lambda: create_model("mobilenet_v2", weights="imagenet21k"), "weights must be one of"),
    ],
)
def test_bad_options_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_custom_cnn_knobs_change_the_network():
    flatten = create_model("custom_cnn", (32, 32, 3), blocks=2, head="flatten", batch_norm=False, pooling="stride")
    names = [layer.name for layer in flatten.layers]
    assert "head_flatten" in names and not any("_bn" in n for n in names) and not any("pool" in n for n in names)
    gap = create_model("custom_cnn", (32, 32, 3), blocks=2)
    assert "head_gap" in [layer.name for layer in gap.layers]
    assert flatten.count_params() != gap.count_params()


def test_every_model_declares_what_a_teacher_needs():
    for name in MODELS:
        info = model_info(name)
        assert len(info.description) > 150 and info.origin and info.preprocessing
        assert info.min_input_size <= info.default_input_size
        assert info.family in ("report", "modern", "custom")
    assert [n for n in MODELS if model_info(n).family == "report"] == [
        "tutorial",
        "practice1",
        "practice2",
        "practice3",
        "practice4",
        "practice5",
        "vgg16_report",
    ]
