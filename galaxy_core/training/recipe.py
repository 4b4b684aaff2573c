"""What every kind of run shares: its dataset (loaded the same way on this machine and on a cluster's head), the
class weights, the optimizer and its schedule, the input pipeline, and one fit phase."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from galaxy_core.data import Dataset, Split, create_dataset
from galaxy_core.data.dataset import stratified_split
from galaxy_core.errors import InvalidInputError
from galaxy_core.settings import Settings
from galaxy_core.training.config import ONE_CYCLE_START, ONE_CYCLE_WARMUP, TrainConfig
from galaxy_core.training.lifecycle import StoppedBeforeTrainingError


def load_run_dataset(config: TrainConfig, settings: Settings, stop_requested: Callable[[], bool]) -> Dataset:
    """The run's dataset (from the settings' cache when it is there, within their dataset memory budget);
    StoppedBeforeTrainingError as soon as a stop is requested while it loads."""

    def progress(done: int, total: int, message: str) -> None:
        if stop_requested():
            raise StoppedBeforeTrainingError("stopped while loading its dataset: no model")

    progress(0, 0, "")
    return create_dataset(
        config.dataset, cache_dir=settings.cache_dir, progress=progress, memory_limit_mb=settings.dataset_memory_mb
    )


def few_labels(dataset: Dataset, config: TrainConfig) -> Dataset:
    """The dataset with its training split cut to the config's share (train_fraction) or number of images of each
    class (train_per_class), each class drawn with the run's seed; as it is when neither is set. InvalidInputError
    when a class has fewer images than asked."""
    if config.train_fraction >= 1 and not config.train_per_class:
        return dataset
    train, rng = dataset.splits["train"], np.random.default_rng(config.seed)
    kept = []
    for label, name in enumerate(dataset.class_names):
        members = np.flatnonzero(train.labels == label)
        wanted = config.train_per_class or max(1, round(config.train_fraction * len(members)))
        if wanted > len(members):
            raise InvalidInputError(
                f"{config.train_per_class} training images of each class were asked for, and {name} has {len(members)}"
            )
        kept.append(rng.permutation(members)[:wanted])
    subset = train.take(np.sort(np.concatenate(kept)))
    return replace(dataset, splits={**dataset.splits, "train": subset})


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights that make every class count as much in the loss: total / (classes x class count)."""
    counts = np.bincount(labels, minlength=num_classes)
    return {index: float(len(labels) / (num_classes * count)) for index, count in enumerate(counts) if count}


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


def training_inputs(config: TrainConfig, train: Split, num_classes: int, seed: int | None = None):
    """(the shuffled, augmented training batches, the class weights or None) as a fit receives them."""
    from galaxy_core.data.pipeline import make_tf_dataset

    batches = make_tf_dataset(
        train.images,
        train.labels,
        batch_size=config.batch_size,
        augment=config.augment,
        shuffle=True,
        seed=config.seed if seed is None else seed,
    )
    return batches, class_weights(train.labels, num_classes) if config.class_weighting else None


def create_training_state(model, batches) -> None:
    """Create a compiled model's optimizer, loss and metric variables for `batches` (a tf.data.Dataset) before its
    first step. Keras does this up front only under a distribution strategy; otherwise the first traced training
    step creates them, and TensorFlow then traces the step a second time without them (measured on the recommended
    recipe: the first batch 10.7 s -> 5.4 s, the weights after it the same to the bit; tests/test_training.py)."""
    model._symbolic_build(data_batch=batches.element_spec)


def fit_phase(
    model,
    config: TrainConfig,
    train: Split,
    num_classes: int,
    callbacks: Sequence,
    *,
    epochs: int,
    learning_rate: float,
    initial_epoch: int = 0,
    seed: int | None = None,
    whole_epochs: bool = False,
) -> None:
    """Compile the model for the recipe at `learning_rate` (decayed over this phase's steps) and fit it on the
    training split from `initial_epoch` to `epochs`, watched by `callbacks` (after the weight averaging's swap, so
    that they see the averaged weights). `whole_epochs`: each epoch's steps run as one TensorFlow call and the
    callbacks see its end only (the same steps and weights; for a small network, whose steps cost less than Keras'
    work between them)."""
    from galaxy_core.training.callbacks import AveragedWeights

    steps = math.ceil(len(train) / config.batch_size)
    model.compile(
        optimizer=make_optimizer(config, learning_rate, steps * (epochs - initial_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps if whole_epochs else 1,
    )
    batches, weights = training_inputs(config, train, num_classes, seed)
    create_training_state(model, batches)
    model.fit(
        batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        class_weight=weights,
        callbacks=[*([AveragedWeights()] if config.weight_averaging else []), *callbacks],
        shuffle=False,  # the pipeline shuffles, with the run's seed
        verbose=0,
    )
