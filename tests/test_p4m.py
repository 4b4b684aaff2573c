"""The p4m network: its layers do what the module says (checked against convolutions written here in NumPy), turning
or flipping the input turns and permutes their output (the group's table computed here, not read from the module),
the whole network answers the same for a galaxy's 8 orientations, and a p4m run learns and exports."""

import shutil

import keras
import numpy as np
import pytest

from galaxy_core.models import create_model
from galaxy_core.models.p4m import OrientationPooling, P4MConv, P4MLifting

RNG = np.random.default_rng(0)


def turn(array: np.ndarray, g: int) -> np.ndarray:
    """The documented action of element g on an image's first two axes: g % 4 quarter turns, then a flip if g >= 4."""
    array = np.rot90(array, g % 4, axes=(0, 1))
    return array[:, ::-1] if g >= 4 else array


def group_table() -> tuple[list[list[int]], list[int]]:
    """product[a][b] (b, then a) and inverse[a], found by turning a 2 x 2 image with four different pixels."""
    probe = np.array([[1, 2], [3, 4]])
    key = {turn(probe, g).tobytes(): g for g in range(8)}
    product = [[key[turn(turn(probe, b), a).tobytes()] for b in range(8)] for a in range(8)]
    return product, [row.index(0) for row in product]


PRODUCT, INVERSE = group_table()


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Same' correlation of (H, W, C) with (k, k, C, F), as a convolution layer computes it."""
    size, half = kernel.shape[0], kernel.shape[0] // 2
    padded = np.pad(image, ((half, half), (half, half), (0, 0)))
    height, width = image.shape[:2]
    out = np.zeros((height, width, kernel.shape[-1]))
    for i in range(size):
        for j in range(size):
            out += padded[i : i + height, j : j + width] @ kernel[i, j]
    return out


def as_groups(maps: np.ndarray) -> np.ndarray:
    """(..., filters * 8) to (..., filters, 8): the layout the module documents."""
    return maps.reshape(*maps.shape[:-1], maps.shape[-1] // 8, 8)


def turned_group_maps(maps: np.ndarray, g: int) -> np.ndarray:
    """What turning by g does to p4m feature maps (H, W, filters, 8): each map turned, orientation h taken from
    g^-1 h."""
    return np.stack([turn(maps[..., PRODUCT[INVERSE[g]][h]], g) for h in range(8)], axis=-1)


def test_the_group_table_is_a_group_of_eight():
    assert all(sorted(row) == list(range(8)) for row in PRODUCT)
    assert all(PRODUCT[a][INVERSE[a]] == 0 for a in range(8))
    assert (
        PRODUCT[1][1] == 2 and PRODUCT[4][4] == 0 and PRODUCT[1][4] != PRODUCT[4][1]
    )  # turns do not commute with a flip


def test_the_lifting_layer_correlates_each_filter_in_its_8_orientations():
    image = RNG.normal(size=(1, 8, 8, 3)).astype("float32")
    layer = P4MLifting(2, kernel_size=3)
    out = as_groups(np.asarray(layer(image))[0])
    kernel = np.asarray(layer.kernel)[:, :, :, 0, :]  # (3, 3, channels, filters)
    for g in range(8):
        np.testing.assert_allclose(out[..., g], correlate(image[0], turn(kernel, g)), atol=1e-4)


@pytest.mark.parametrize("layer, channels", [(P4MLifting(3), 2), (P4MConv(3), 2 * 8)])
def test_turning_the_input_turns_and_permutes_the_output(layer, channels):
    inputs = RNG.normal(size=(8, 8, channels)).astype("float32")
    lifted = channels == 2
    out = as_groups(np.asarray(layer(inputs[None]))[0])
    for g in range(8):
        turned_input = turn(inputs, g) if lifted else turned_group_maps(as_groups(inputs), g).reshape(8, 8, channels)
        out_of_turned = as_groups(np.asarray(layer(np.ascontiguousarray(turned_input)[None]))[0])
        np.testing.assert_allclose(out_of_turned, turned_group_maps(out, g), atol=1e-4)


def test_orientation_pooling_takes_each_filters_strongest_orientation():
    maps = RNG.normal(size=(1, 4, 4, 3 * 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(OrientationPooling()(maps))[0], as_groups(maps[0]).max(axis=-1), atol=0)


def test_the_network_answers_the_same_for_a_galaxys_8_orientations():
    model = create_model("p4m_cnn", (32, 32, 3), 3)
    # Batch normalisation with statistics of its own (not 0 and 1), as after training
    model(RNG.uniform(0, 255, (16, 32, 32, 3)).astype("float32"), training=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(RNG.normal(size=layer.moving_mean.shape) * 0.1)
            layer.moving_variance.assign(RNG.uniform(0.5, 2.0, size=layer.moving_variance.shape))
    galaxy = RNG.uniform(0, 255, (32, 32, 3)).astype("float32")
    views = np.stack([turn(galaxy, g) for g in range(8)])
    answers = np.asarray(model(views, training=False))
    np.testing.assert_allclose(answers, np.repeat(answers[:1], 8, axis=0), atol=1e-5)
    other = np.asarray(model(RNG.uniform(0, 255, (1, 32, 32, 3)).astype("float32"), training=False))
    assert not np.allclose(other, answers[:1], atol=1e-3)  # it is not a constant answer


def test_a_plain_network_does_not():
    """The same check on an ordinary CNN fails: the test can tell an equivariant network from one that is not."""
    model = create_model("custom_cnn", (32, 32, 3), 3, blocks=2, filters=8, convs_per_block=1)
    galaxy = RNG.uniform(0, 255, (32, 32, 3)).astype("float32")
    answers = np.asarray(model(np.stack([turn(galaxy, g) for g in range(8)]), training=False))
    assert not np.allclose(answers, np.repeat(answers[:1], 8, axis=0), atol=1e-5)


def test_mixed_precision_keeps_the_symmetry_and_float32_answers():
    """As on a GPU: the policy mixed_float16 computes the convolutions in float16; the answers stay float32 and the
    8 orientations still agree (to float16's precision)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("p4m_cnn", (32, 32, 3), 3)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("block1_conv").compute_dtype == "float16" and model.output.dtype == "float32"
    galaxy = RNG.uniform(0, 255, (32, 32, 3)).astype("float32")
    answers = np.asarray(model(np.stack([turn(galaxy, g) for g in range(8)]), training=False))
    np.testing.assert_allclose(answers, np.repeat(answers[:1], 8, axis=0), atol=2e-3)


def test_a_p4m_run_learns_and_its_exports_answer_as_it_does(isolated_settings, tmp_path):
    """Through the lab's own training, on the easy synthetic galaxies of the other models' learning test (bar 0.9;
    this recipe, a narrow p4m network for 8 epochs, measured 0.983 at seeds 0 and 1), at 32 px; its .keras file
    loads in safe mode, and its SavedModel and TFLite exports answer as the run did."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from galaxy_core.answers.export import export_run
    from galaxy_core.answers.prediction import load_model_file, predict_probabilities
    from galaxy_core.classroom.people import MACHINE_TEACHER
    from galaxy_core.data import DatasetSpec, create_dataset
    from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
    from galaxy_core.training import RunStore, TrainConfig
    from galaxy_core.training.client import new_run, train_in_this_process

    easy = {"name": "synthetic", "num_images": 600, "image_size": 32, "difficulty": "easy"}
    config = TrainConfig(
        dataset=easy,
        model="p4m_cnn",
        model_options={"width": 4},
        epochs=8,
        batch_size=16,
        learning_rate=3e-3,
        early_stopping=False,
        seed=0,
    )
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    test = create_dataset(DatasetSpec.from_dict(easy), cache_dir=isolated_settings["cache"]).splits["test"]
    probabilities = predict_probabilities(load_model_file(run.best_model_path), test.images)
    figure = balanced_accuracy(confusion_matrix(test.labels, probabilities.argmax(axis=1), 3))
    assert figure >= 0.9, f"test balanced accuracy {figure:.3f}: the p4m network did not learn"
    interpreter = Interpreter(model_path=str(export_run(run, "tflite", tmp_path)))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], test.images[:1].astype(np.float32))
    interpreter.invoke()
    answer = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(answer[0], probabilities[0], atol=1e-4)
    saved = export_run(run, "savedmodel", tmp_path)
    folder = tmp_path / "savedmodel"
    shutil.unpack_archive(saved, folder)
    served = tf.saved_model.load(str(folder))
    served_answers = np.asarray(served.serve(test.images[:4].astype(np.float32)))
    np.testing.assert_allclose(served_answers, probabilities[:4], atol=1e-4)


def test_gradcam_turns_with_the_galaxy_and_the_receptive_field_is_traced():
    """Grad-CAM on the orientation pooling of a galaxy turned by a quarter is the galaxy's map turned (the class
    score does not change, the features turn). Receptive field at that layer, by hand: 3 (lifting), 4 (pool), 8,
    10, 18, 22, 38 px (3 x 3 convolutions and 2 x 2 poolings, the jump doubling at each pooling)."""
    from galaxy_core.answers.explain import gradcam, receptive_field

    keras.utils.set_random_seed(0)
    model = create_model("p4m_cnn", (32, 32, 3), 3)
    galaxy = RNG.uniform(0, 255, (32, 32, 3)).astype("float32")
    pair, shown = np.stack([galaxy, turn(galaxy, 1)]), 0
    for class_index in range(3):  # an untrained network's map may be all zero (ReLU) for some classes
        maps = gradcam(model, pair, class_index=class_index, layer_name="orientation_pool")
        np.testing.assert_allclose(maps[1], turn(maps[0], 1), atol=1e-4)
        shown += maps[0].std() > 0
    assert shown  # at least one map that is not blank was turned
    assert receptive_field(model, "orientation_pool").size == 38
