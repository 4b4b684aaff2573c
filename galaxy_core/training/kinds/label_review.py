"""The "label_review" kind: out-of-fold predictions for a training split, then confident learning on them.

What label review needs of each training image is a model's probabilities from a model that did not train on it.
The training split is cut into k stratified folds; k models of one recipe each train on the other k - 1 folds for
the recipe's number of epochs (no validation split, no early stopping: every fold gets the same training) and
predict the fold they did not see. `galaxy_core.evaluation.label_issues` then ranks the images whose label those
predictions doubt. A review run keeps the probabilities and the ranking (its "review" arrays, read by
galaxy_core.answers.review) and the k fold models (for Grad-CAM), which then answer as one: their ensemble is the
run's best model, tested like any run's (galaxy_core.training.kinds.ensemble). Importing this module does not
import TensorFlow: pages check a number of folds with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from galaxy_core.data import Dataset, DatasetSpec
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import REVIEW_PRESET, TrainConfig, preset_config
from galaxy_core.training.kinds.ensemble import answer_as_one
from galaxy_core.training.kinds.registry import CommandLine, Workload, register_kind
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError
from galaxy_core.training.recipe import fit_phase
from galaxy_core.training.records import KindTraits

MIN_FOLDS, MAX_FOLDS = 2, 10


@dataclass(frozen=True)
class ReviewOptions:
    folds: int = 5  # models trained, each predicting the fold it did not see


REVIEW_ARRAYS = "review"  # the run's review.npz: probabilities, labels, source_ids, folds, doubted


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number (0 to folds - 1) per example, each class dealt round the folds in a seeded random order."""
    labels = np.asarray(labels)
    assignment = np.empty(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assignment[members] = np.arange(len(members)) % folds
    return assignment


def fold_count_problems(folds) -> list[str]:
    if isinstance(folds, bool) or not isinstance(folds, int) or not MIN_FOLDS <= folds <= MAX_FOLDS:
        return [f"folds must be a whole number from {MIN_FOLDS} to {MAX_FOLDS}, got {folds!r}"]
    return []


def check_folds(dataset: Dataset, folds: int) -> None:
    """Refuse, with the reason, a number of folds the training split cannot be cut into."""
    problems = fold_count_problems(folds)
    if problems:
        raise InvalidInputError(problems[0])
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

    from galaxy_core.answers.prediction import predict_probabilities
    from galaxy_core.models import create_model

    check_folds(dataset, config.options.folds)
    train = dataset.splits["train"]
    assignment = stratified_folds(train.labels, config.options.folds, config.seed)
    probabilities = np.zeros((len(train), dataset.num_classes), dtype=np.float32)
    for fold in range(config.options.folds):
        held_out, kept = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        keras.utils.set_random_seed(config.seed + fold)
        model = create_model(config.model, train.images.shape[1:], dataset.num_classes, **config.model_options)
        fit_phase(
            model,
            config,
            train.take(kept),
            dataset.num_classes,
            observers,
            epochs=config.epochs,
            learning_rate=config.learning_rate,
            seed=config.seed + fold,
        )
        if model.stop_training:
            break
        probabilities[held_out] = predict_probabilities(model, train.images[held_out])
        if on_fold is not None:
            on_fold(fold, model, len(held_out))
    return probabilities, assignment


def planned_epochs(config: TrainConfig) -> int:
    """Its epochs once per fold."""
    return config.epochs * config.options.folds


def workload(config: TrainConfig, split_sizes: dict[str, int]) -> Workload:
    """Each fold's network trains on the other folds, validates on nothing, and predicts its own fold once."""
    train = split_sizes.get("train", 0)
    return Workload(train * (config.options.folds - 1) / config.options.folds, 0, train)


def label_review_config(dataset: DatasetSpec, folds: int = 5, **overrides) -> TrainConfig:
    """A label review of `dataset`'s training split: `folds` models of the quick recipe, each predicting the
    images it did not train on."""
    return preset_config(dataset, REVIEW_PRESET, kind="label_review", options=ReviewOptions(folds), **overrides)


def add_arguments(parser) -> None:
    """`galaxy-lab review-labels`'s own flags (the dataset's are the command line's)."""
    parser.add_argument("--folds", type=int, default=5, help=f"models trained, {MIN_FOLDS}-{MAX_FOLDS} (default 5)")
    parser.add_argument(
        "--epochs", type=int, help=f"epochs of each fold's model (default: the {REVIEW_PRESET} preset's)"
    )


def config_from_arguments(args, request) -> TrainConfig:
    epochs = {"epochs": args.epochs} if args.epochs else {}
    return label_review_config(request.dataset(), args.folds, image_size=args.image_size, **epochs)


COMMAND_LINE = CommandLine(
    add_arguments,
    config_from_arguments,
    command="review-labels",
    help="queue a label review of a dataset's training split and follow it here",
    description=f"Trains --folds models of the {REVIEW_PRESET} preset, each on all but one fold of the training "
    "split, lets each predict the fold it did not see, and ranks the labels those predictions doubt (confident "
    "learning). Decide on them on the Label review page, or export them with galaxy-lab reviewed-labels. The run "
    "id is printed last.",
    dataset_size_note=f"the {REVIEW_PRESET} preset's",
)


@register_kind(
    "label_review",
    title="label review: {folds} x {model}",
    planned_epochs=planned_epochs,
    options=ReviewOptions,
    check=lambda config: fold_count_problems(config.options.folds),
    workload=workload,
    traits=KindTraits(
        reviews_labels=True,
        ones_own=False,  # its folds' models answer for its review, not as one person's network
        member_names=lambda config, count: [f"fold {number}" for number in range(1, count + 1)],
    ),
    command_line=COMMAND_LINE,
)
def review_labels(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """Review `dataset`'s training split for `run`. A stop before the last fold has predicted leaves no review:
    every image needs its prediction."""
    from galaxy_core.evaluation import label_issues
    from galaxy_core.training.callbacks import FoldProgress, StopOnRequest

    train = dataset.splits["train"]
    run.report_progress(
        message=f"training fold 1 of {config.options.folds}",
        class_names=list(dataset.class_names),
        dataset_sizes={name: len(split) for name, split in dataset.splits.items()},
        epochs_done=0,
    )
    stop, progress = StopOnRequest(run), FoldProgress(run, config.epochs, config.options.folds)
    fold_models = []

    def fold_done(fold: int, model, images: int) -> None:
        run.save_model(model, f"fold-{fold + 1}")
        fold_models.append(model)
        run.log(f"fold {fold + 1} of {config.options.folds} predicted its {images} images")

    probabilities, assignment = out_of_fold_probabilities(
        config, dataset, on_fold=fold_done, observers=[stop, progress, *observers]
    )
    if stop.requested:
        raise StoppedBeforeTrainingError(
            f"stopped after {progress.epochs_done} of {planned_epochs(config)} epochs: no review (every image needs "
            "the prediction of its fold's model)"
        )
    doubted = label_issues(train.labels, probabilities)
    run.save_arrays(
        REVIEW_ARRAYS,
        probabilities=probabilities,
        labels=train.labels,
        source_ids=train.source_ids.astype(str),
        folds=assignment,
        doubted=doubted,
    )
    run.report_progress(message="its fold models answering as one: testing the ensemble")
    figures = answer_as_one(run, fold_models, [1.0] * len(fold_models), dataset)
    message = (
        f"finished: {len(doubted)} of {len(train)} training labels doubted ({len(doubted) / len(train):.1%}), "
        f"{config.options.folds} folds, their models an ensemble"
    )
    run.log(message)
    return Outcome(RunState.FINISHED, message, {"doubted": len(doubted), **figures})
