"""The lab's training learns: through its own procedure, a small CNN on easy synthetic galaxies scores far above
chance on test images it never saw, the same run on permuted training labels does not, and what the run saved
answers as the run said it would.

The bars come from measurement (600 easy synthetic galaxies at 32 px, custom_cnn with 3 blocks of 16 filters, 10
epochs at 3e-3, batch 16; the test split has 20 galaxies of each class): at seeds 0-3 the test balanced accuracy
was 1.00, 0.93, 0.98 and 0.97, and 0.25, 0.50, 0.42 and 0.50 with the training labels permuted (chance is 1/3).
"""

import numpy as np
import pytest

from galaxy_core.answers.prediction import load_model_file, predict_probabilities
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.training import RunStore, TrainConfig
from galaxy_core.training.client import new_run, train_in_this_process

EASY = {"name": "synthetic", "num_images": 600, "image_size": 32, "difficulty": "easy"}
LEARNS, CHANCE_AT_MOST = 0.9, 0.55


def easy_config(**overrides) -> TrainConfig:
    return TrainConfig(
        dataset=EASY,
        model="custom_cnn",
        model_options={"blocks": 3, "filters": 16, "convs_per_block": 1},
        epochs=10,
        batch_size=16,
        learning_rate=3e-3,
        early_stopping=False,
        **overrides,
    )


@pytest.fixture(scope="module")
def easy_dataset(tmp_path_factory):
    return create_dataset(DatasetSpec.from_dict(EASY), cache_dir=tmp_path_factory.mktemp("cache"))


def test_a_run_learns_and_its_checkpoint_answers_as_it_said(isolated_settings, easy_dataset):
    run = new_run(RunStore(isolated_settings["runs"]), easy_config(), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    test = easy_dataset.splits["test"]
    # The figure, computed here from the saved checkpoint's own answers on the test images, not read from the run.
    model = load_model_file(run.best_model_path)
    probabilities = predict_probabilities(model, test.images)
    figure = balanced_accuracy(confusion_matrix(test.labels, probabilities.argmax(axis=1), 3))
    assert figure >= LEARNS, f"test balanced accuracy {figure:.3f}: the run did not learn"
    saved = run.predictions()
    np.testing.assert_array_equal(saved["labels"], test.labels)
    np.testing.assert_allclose(saved["probabilities"], probabilities, atol=1e-5)  # reloaded, the same answers
    assert run.summary().test_balanced_accuracy == pytest.approx(figure)


def test_permuted_training_labels_leave_it_at_chance(isolated_settings, easy_dataset):
    """No test image's label can reach training, and no pairing of images and labels goes astray: with the
    training labels shuffled among the training images, the same run learns nothing that holds on the test split."""
    train = easy_dataset.splits["train"]
    shuffled = np.random.default_rng(0).permutation(train.labels)
    changes = {
        str(image): easy_dataset.class_names[label] for image, label in zip(train.source_ids, shuffled, strict=True)
    }
    assert np.mean(shuffled == train.labels) < 0.5  # most labels moved
    run = new_run(RunStore(isolated_settings["runs"]), easy_config(label_changes=changes), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    figure = run.summary().test_balanced_accuracy
    assert figure <= CHANCE_AT_MOST, f"test balanced accuracy {figure:.3f} on permuted labels"
