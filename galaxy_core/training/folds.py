"""Label review runs: out-of-fold predictions for a training split, then confident learning on them.

What label review needs of each training image is a model's probabilities from a model that did not train on it.
The training split is cut into k stratified folds; k models of one recipe each train on the other k - 1 folds for
the recipe's number of epochs (no validation split, no early stopping: every fold gets the same training) and
predict the fold they did not see. `galaxy_core.evaluation.label_issues` then ranks the images whose label those
predictions doubt. A review run keeps the probabilities, the ranking and the k fold models (for Grad-CAM).
Importing this module does not import TensorFlow: pages check a number of folds with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from galaxy_core.data import Dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import MAX_FOLDS, MIN_FOLDS, TrainConfig
from galaxy_core.training.store import RunState


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
    if isinstance(folds, bool) or not isinstance(folds, int) or not MIN_FOLDS <= folds <= MAX_FOLDS:
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
    *,
    on_fold: Callable[[int, object, int], None] | None = None,
    observers: Sequence = (),
) -> tuple[np.ndarray, np.ndarray]:
    """((training images, classes) probabilities, each image's fold): each row predicted by the one of the config's
    `folds` models of its recipe that did not train on that image. `on_fold(fold, model, images)` is called after
    each fold has predicted its images (fold from 0); `observers` watch every fold's fit (one that sets
    `model.stop_training` ends the whole review: the remaining folds are not trained and the rows they would have
    filled stay zero)."""
    import keras

    from galaxy_core.data.pipeline import make_tf_dataset
    from galaxy_core.models import create_model
    from galaxy_core.prediction import predict_probabilities
    from galaxy_core.training.procedure import class_weights, make_optimizer

    check_folds(dataset, config.folds)
    train = dataset.splits["train"]
    assignment = stratified_folds(train.labels, config.folds, config.seed)
    probabilities = np.zeros((len(train), dataset.num_classes), dtype=np.float32)
    for fold in range(config.folds):
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
        model.fit(
            batches, epochs=config.epochs, class_weight=weights, callbacks=list(observers), shuffle=False, verbose=0
        )
        if model.stop_training:
            break
        probabilities[held_out] = predict_probabilities(model, train.images[held_out])
        if on_fold is not None:
            on_fold(fold, model, len(held_out))
    return probabilities, assignment


def review_labels(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> RunState:
    """Run a label review of `dataset`'s training split for `run` (a run writer, as for training) and return
    its final state. A stop before the last fold has predicted leaves no review: every image needs its
    prediction."""
    from galaxy_core.evaluation import label_issues
    from galaxy_core.training.callback import ReviewProgress
    from galaxy_core.training.procedure import StoppedBeforeTrainingError

    train = dataset.splits["train"]
    run.set_status(
        RunState.RUNNING,
        message=f"training fold 1 of {config.folds}",
        class_names=list(dataset.class_names),
        dataset_sizes={name: len(split) for name, split in dataset.splits.items()},
        epochs_done=0,
    )
    progress = ReviewProgress(run, config)

    def fold_done(fold: int, model, images: int) -> None:
        run.save_model(model, f"fold-{fold + 1}")
        run.log(f"fold {fold + 1} of {config.folds} predicted its {images} images")

    probabilities, assignment = out_of_fold_probabilities(
        config, dataset, on_fold=fold_done, observers=[progress, *observers]
    )
    if progress.stopped_by_request:
        raise StoppedBeforeTrainingError(
            f"stopped after {progress.epochs_done} of {config.planned_epochs} epochs: no review (every image needs "
            "the prediction of its fold's model)"
        )
    doubted = label_issues(train.labels, probabilities)
    run.save_review(
        probabilities=probabilities,
        labels=train.labels,
        source_ids=train.source_ids.astype(str),
        folds=assignment,
        doubted=doubted,
    )
    message = (
        f"finished: {len(doubted)} of {len(train)} training labels doubted ({len(doubted) / len(train):.1%}), "
        f"{config.folds} folds"
    )
    run.log(message)
    run.set_status(RunState.FINISHED, message=message, finished=time.time(), doubted=len(doubted))
    return RunState.FINISHED
