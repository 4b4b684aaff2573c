"""The training procedure of a run: dataset, model, fit phases, test evaluation, and how a run ends.

It writes only through a run writer: the run store's `Run` in a local worker process, or a `RemoteRun` on a Ray
node that ships the same calls back to the head's store. Whoever calls `train_run` gets the run's final state;
it never raises for a failed or stopped run.
"""

from __future__ import annotations

import contextlib
import errno
import math
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Protocol

import numpy as np

from galaxy_core.data import Dataset, create_dataset
from galaxy_core.data.dataset import stratified_split
from galaxy_core.settings import load_settings
from galaxy_core.training.config import ONE_CYCLE_START, ONE_CYCLE_WARMUP, TrainConfig
from galaxy_core.training.store import RunState


class RunWriter(Protocol):
    """What a training procedure needs of a run (galaxy_core.training.store.Run is the reference)."""

    best_model_path: object  # where the best checkpoint can be loaded from, once saved
    tensorboard_dir: object

    def config(self) -> dict: ...
    def set_status(self, state: RunState, **fields) -> dict: ...
    def append_metrics(self, record: dict) -> None: ...
    def log(self, message: str) -> None: ...
    def save_model(self, model, which: str) -> None: ...
    def save_evaluation(self, summary: dict) -> None: ...
    def save_predictions(self, **arrays: np.ndarray) -> None: ...
    def save_review(self, **arrays: np.ndarray) -> None: ...
    def stop_requested(self) -> bool: ...


class StoppedBeforeTrainingError(Exception):
    """A stop request arrived before the run had learned anything; the message says when."""


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights that make every class count as much in the loss: total / (classes x class count)."""
    counts = np.bincount(labels, minlength=num_classes)
    return {index: float(len(labels) / (num_classes * count)) for index, count in enumerate(counts) if count}


def training_inputs(config: TrainConfig, dataset: Dataset):
    """(the shuffled, augmented training batches, the class weights or None) as a run's fit receives them."""
    from galaxy_core.data.pipeline import make_tf_dataset

    train = dataset.splits["train"]
    batches = make_tf_dataset(
        train.images, train.labels, batch_size=config.batch_size, augment=config.augment, shuffle=True, seed=config.seed
    )
    return batches, class_weights(train.labels, dataset.num_classes) if config.class_weighting else None


def with_validation_source(dataset: Dataset, config: TrainConfig) -> Dataset:
    """The dataset as training sees it: with validation="from_train", a stratified share of the training split
    (seeded by the run) replaces the dataset's val split; the test split never changes."""
    if config.validation != "from_train":
        return dataset
    train = dataset.splits["train"]
    kept, held_out, _ = stratified_split(train.labels, (config.validation_fraction, 0.0), config.seed)
    return replace(dataset, splits={**dataset.splits, "train": train.take(kept), "val": train.take(held_out)})


def learning_rate_schedule(config: TrainConfig, learning_rate: float, total_steps: int):
    """The run's learning rate over `total_steps` (a Keras schedule, or a number for a constant rate)."""
    import keras

    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    if config.schedule == "one_cycle":
        warmup = int(ONE_CYCLE_WARMUP * total_steps)
        return keras.optimizers.schedules.CosineDecay(
            ONE_CYCLE_START * learning_rate,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=learning_rate,
            warmup_steps=warmup,
        )
    return learning_rate


def make_optimizer(config: TrainConfig, learning_rate: float, total_steps: int):
    """The run's optimizer at `learning_rate`, decayed over `total_steps` by its schedule."""
    import keras

    learning_rate = learning_rate_schedule(config, learning_rate, total_steps)
    averaging = {"use_ema": True, "ema_momentum": config.weight_averaging} if config.weight_averaging else {}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, **averaging)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, **averaging)
    return keras.optimizers.Adam(learning_rate, **averaging)


def failure_message(error: BaseException) -> str:
    """The one line a user reads for a failed run: the disk, the memory, or the error itself."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"{type(error).__name__}: {error}"


def train_run(run: RunWriter, dataset: Dataset | None = None, observers: Sequence = ()) -> RunState:
    """Train the run here and return its final state. `dataset`: already loaded (a remote node gets it from the
    head); by default it is loaded from the run's config. `observers`: more Keras callbacks for every fit phase
    (benchmarks watch a run with them). A failure that cannot even be recorded (the disk is full) raises, so
    that the process around it can report it by other means."""
    try:
        config = TrainConfig.from_dict({k: v for k, v in run.config().items() if k != "created"})
        return _train(run, config, dataset, observers)
    except StoppedBeforeTrainingError as stop:
        run.log(str(stop))
        run.set_status(RunState.STOPPED, message=str(stop), finished=time.time())
        return RunState.STOPPED
    except Exception as error:  # the run's record of what went wrong, for the user
        details = traceback.format_exc()
        message = failure_message(error)
        with contextlib.suppress(OSError):
            run.log(details)
        run.set_status(
            RunState.FAILED, error=message, message=f"failed: {message}", traceback=details, finished=time.time()
        )
        return RunState.FAILED


def _check_stop(run: RunWriter, when: str) -> None:
    if run.stop_requested():
        raise StoppedBeforeTrainingError(f"stopped {when}: no model")


def _load_dataset(run: RunWriter, config: TrainConfig) -> Dataset:
    def progress(done: int, total: int, message: str) -> None:
        _check_stop(run, "while loading its dataset")

    return create_dataset(config.dataset, cache_dir=load_settings().cache_dir, progress=progress)


def _train(run: RunWriter, config: TrainConfig, dataset: Dataset | None, observers: Sequence) -> RunState:
    import keras

    from galaxy_core.models import create_model, model_info
    from galaxy_core.prediction import VIEW_COUNT
    from galaxy_core.training.callback import RunMetrics
    from galaxy_core.training.device import configure_device

    device = configure_device()
    run.set_status(RunState.RUNNING, device=device.describe(), message="loading its dataset", started=time.time())
    run.log(f"device: {device.describe()}")
    _check_stop(run, "while loading its dataset")
    dataset = dataset if dataset is not None else _load_dataset(run, config)
    if config.label_changes:
        before = len(dataset.splits["train"])
        dataset = dataset.with_training_labels_changed(config.label_changes)
        run.log(
            f"{len(config.label_changes)} training labels changed ({config.label_changes_from or 'a label review'}): "
            f"{before} training images, {len(dataset.splits['train'])} kept"
        )
    _check_stop(run, "while loading its dataset")
    if config.kind == "label_review":
        from galaxy_core.training.folds import review_labels

        return review_labels(run, config, dataset, observers)
    dataset = with_validation_source(dataset, config)
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    run.log(f"dataset {dataset.name}: {sizes}, classes {list(dataset.class_names)}")
    run.set_status(RunState.RUNNING, message="building its model")
    keras.utils.set_random_seed(config.seed)
    model = create_model(
        config.model, dataset.splits["train"].images.shape[1:], dataset.num_classes, **config.model_options
    )
    _check_stop(run, "while building its model")
    recipe = model_info(config.model).recipe
    fine_tune = bool(recipe.fine_tune_prefix and recipe.fine_tune_epochs)
    planned = config.planned_epochs
    weights = getattr(model, "weights_source", None)
    run.set_status(
        RunState.RUNNING,
        message="training",
        class_names=list(dataset.class_names),
        parameters=model.count_params(),
        weights_source=weights,
        dataset_sizes=sizes,
        epochs_done=0,
    )
    run.log(f"model {config.model}: {model.count_params():,} parameters" + (f"; {weights}" if weights else ""))
    has_val = bool(len(dataset.splits["val"]))
    metrics = RunMetrics(
        run,
        dataset.splits["val"],
        dataset.num_classes,
        len(dataset.splits["train"]),
        batch_size=config.batch_size,
        planned_epochs=planned,
        monitor=config.monitor if has_val else "loss",
        patience=config.patience if config.early_stopping else None,
        evaluation_images=VIEW_COUNT * len(dataset.splits["test"]),  # the final test evaluation's predictions
    )
    fit = partial(_fit, model, [metrics, *observers], config, dataset)
    fit(epochs=config.epochs, learning_rate=config.learning_rate)
    if fine_tune and not metrics.stopped_by_request:
        for layer in model.layers:
            if layer.name.startswith(recipe.fine_tune_prefix):
                layer.trainable = True
        run.log(f"fine-tuning {recipe.fine_tune_prefix}* at {recipe.fine_tune_learning_rate:g}")
        metrics.new_phase()
        done = metrics.epochs_done
        fit(
            epochs=done + recipe.fine_tune_epochs,
            initial_epoch=done,
            learning_rate=recipe.fine_tune_learning_rate,
        )
    done = metrics.epochs_done
    if done == 0:
        raise StoppedBeforeTrainingError("stopped during its first epoch, before any epoch finished: no model")
    run.save_model(model, "final")
    run.set_status(RunState.RUNNING, message="evaluating on the test split")
    best = keras.saving.load_model(run.best_model_path) if metrics.best_saved else model
    summary = _evaluate(best, run, dataset)
    figures = (
        {
            "test_accuracy": summary["accuracy"],
            "test_balanced_accuracy": summary["balanced_accuracy"],
            "test_balanced_accuracy_tta": summary["tta"]["balanced_accuracy"],
        }
        if summary
        else {}
    )
    evaluated = "evaluated" if summary else "no test split to evaluate"
    if metrics.stopped_by_request:
        state, message = RunState.STOPPED, f"stopped after {done} of {planned} epochs, {evaluated}"
    else:
        early = " (early stopping)" if done < planned else ""
        state, message = RunState.FINISHED, f"finished after {done} of {planned} epochs{early}, {evaluated}"
    run.log(message + "".join(f"; {k} {v:.4f}" for k, v in figures.items()))
    run.set_status(state, message=message, finished=time.time(), **figures)
    return state


def _fit(
    model, watchers: list, config: TrainConfig, dataset: Dataset, *, epochs: int, learning_rate: float, initial_epoch=0
):
    """One fit phase, watched by the run's metrics callback first (validation, best checkpoint, early stopping,
    stop), then by any observers."""
    import keras

    from galaxy_core.training.callback import AveragedWeights

    steps = math.ceil(len(dataset.splits["train"]) / config.batch_size)
    model.compile(
        optimizer=make_optimizer(config, learning_rate, steps * (epochs - initial_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batches, weights = training_inputs(config, dataset)
    model.fit(
        batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        class_weight=weights,
        callbacks=[
            *([AveragedWeights()] if config.weight_averaging else []),  # first: the others see the averaged weights
            *watchers,
            keras.callbacks.TensorBoard(watchers[0].run.tensorboard_dir, write_graph=False, profile_batch=0),
        ],
        shuffle=False,  # the pipeline shuffles, with the run's seed
        verbose=0,
    )


def _evaluate(model, run: RunWriter, dataset: Dataset) -> dict | None:
    """Test-split predictions and metrics, plain and averaged over the 8 flips and rotations (TTA), saved for the
    evaluation pages; None without a test split."""
    from galaxy_core.evaluation import summarize
    from galaxy_core.prediction import predict_views

    test = dataset.splits["test"]
    if not len(test):
        return None
    views = predict_views(model, test.images)
    probabilities, tta_probabilities = views[0], views.mean(axis=0)
    run.save_predictions(
        probabilities=probabilities,
        tta_probabilities=tta_probabilities,
        labels=test.labels,
        source_ids=test.source_ids,
    )
    class_names = list(dataset.class_names)
    summary = summarize(test.labels, probabilities.argmax(axis=1), class_names)
    summary["tta"] = summarize(test.labels, tta_probabilities.argmax(axis=1), class_names)
    run.save_evaluation(summary)
    return summary
