"""Out-of-fold predictions for a training split: what label review (confident learning) needs of each image, a
model's probabilities from a model that did not train on it.

The training split is cut into k stratified folds; k models of one recipe each train on the other k - 1 folds for
the recipe's number of epochs (no validation split, no early stopping: every fold gets the same training) and
predict the fold they did not see.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from galaxy_core.data import Dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import TrainConfig

MIN_FOLDS, MAX_FOLDS = 2, 10


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number (0 to folds - 1) per example, each class dealt round the folds in a seeded random order."""
    labels = np.asarray(labels)
    assignment = np.empty(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assignment[members] = np.arange(len(members)) % folds
    return assignment


def check_folds(dataset: Dataset, folds: int) -> None:
    """Refuse, with the reason, a number of folds the training split cannot be cut into."""
    if not isinstance(folds, int) or not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise InvalidInputError(f"folds must be a whole number from {MIN_FOLDS} to {MAX_FOLDS}, got {folds!r}")
    counts = np.bincount(dataset.splits["train"].labels, minlength=dataset.num_classes)
    short = [f"{dataset.class_names[c]} has {n}" for c, n in enumerate(counts) if n < folds]
    if short:
        raise InvalidInputError(
            f"a {folds}-fold review needs at least {folds} training images of each class: " + ", ".join(short)
        )


def out_of_fold_probabilities(
    config: TrainConfig,
    dataset: Dataset,
    folds: int = 5,
    *,
    on_fold: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(training images, classes) probabilities, each row predicted by the one of `folds` models of `config`'s
    recipe that did not train on that image. `on_fold(done, folds)` is called after each fold (to report progress,
    or to stop by raising)."""
    import keras

    from galaxy_core.data.pipeline import make_tf_dataset
    from galaxy_core.models import create_model
    from galaxy_core.prediction import predict_probabilities
    from galaxy_core.training.procedure import class_weights, make_optimizer

    check_folds(dataset, folds)
    train = dataset.splits["train"]
    assignment = stratified_folds(train.labels, folds, config.seed)
    probabilities = np.zeros((len(train), dataset.num_classes), dtype=np.float32)
    for fold in range(folds):
        held_out, kept = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        keras.utils.set_random_seed(config.seed + fold)
        model = create_model(config.model, train.images.shape[1:], dataset.num_classes, **config.model_options)
        steps = math.ceil(len(kept) / config.batch_size)
        model.compile(
            optimizer=make_optimizer(config, config.learning_rate, steps * config.epochs),
            loss="sparse_categorical_crossentropy",
        )
        batches = make_tf_dataset(
            train.images[kept],
            train.labels[kept],
            batch_size=config.batch_size,
            augment=config.augment,
            shuffle=True,
            seed=config.seed + fold,
        )
        weights = class_weights(train.labels[kept], dataset.num_classes) if config.class_weighting else None
        # The pipeline shuffles, with the seed.
        model.fit(batches, epochs=config.epochs, class_weight=weights, shuffle=False, verbose=0)
        probabilities[held_out] = predict_probabilities(model, train.images[held_out])
        if on_fold is not None:
            on_fold(fold + 1, folds)
    return probabilities
