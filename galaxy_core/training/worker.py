"""The training worker: one process per run, `python -m galaxy_core.training.worker RUN_DIR`.

It reads the run's config, trains, and writes everything to the run folder: status, metrics, log, checkpoints,
TensorBoard events and the final test evaluation. It never touches Streamlit; the app only reads the folder.
A crash ends the run as "failed" with its traceback; what was written before stays.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from galaxy_core.data import create_dataset
from galaxy_core.data.dataset import stratified_split
from galaxy_core.settings import load_settings
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.store import Run, epoch_records

# Called with each metrics record, for a terminal's progress line.
RecordCallback = Callable[[dict], None]


def _optimizer(config: TrainConfig, learning_rate: float, total_steps: int):
    import keras

    if config.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.Adam(learning_rate)


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights that make every class count as much in the loss: total / (classes x class count)."""
    counts = np.bincount(labels, minlength=num_classes)
    return {index: float(len(labels) / (num_classes * count)) for index, count in enumerate(counts) if count}


def training_inputs(config: TrainConfig, dataset):
    """(the shuffled, augmented training batches, the class weights or None) as a run's fit receives them."""
    from galaxy_core.data.pipeline import make_tf_dataset

    train = dataset.splits["train"]
    batches = make_tf_dataset(
        train.images,
        train.labels,
        batch_size=config.batch_size,
        augment=config.augment,
        shuffle=True,
        seed=config.seed,
    )
    return batches, class_weights(train.labels, dataset.num_classes) if config.class_weighting else None


def _monitored(config: TrainConfig, dataset) -> tuple[str, str]:
    """(the figure early stopping and the best checkpoint follow, "min" or "max"): training loss without val."""
    monitor = config.monitor if len(dataset.splits["val"]) else "loss"
    return monitor, "min" if monitor.endswith("loss") else "max"


def _fit(model, run, config, dataset, *, epochs: int, initial_epoch: int, learning_rate: float, on_record, best=None):
    """One fit phase; returns the metrics callback (it knows whether a stop was requested). `best`: the best
    monitored value of an earlier phase, which this phase's checkpoint must beat to replace best.keras."""
    import keras

    from galaxy_core.training.callback import RunMetrics

    train, val = dataset.splits["train"], dataset.splits["val"]
    steps = math.ceil(len(train) / config.batch_size)
    model.compile(
        optimizer=_optimizer(config, learning_rate, steps * (epochs - initial_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    metrics = RunMetrics(
        run,
        val.images,
        val.labels,
        dataset.num_classes,
        len(train),
        epochs,
        config.batch_size,
        epoch_offset=initial_epoch,
        on_record=on_record,
    )
    monitor, mode = _monitored(config, dataset)
    callbacks = [
        metrics,
        keras.callbacks.ModelCheckpoint(
            run.best_model_path, monitor=monitor, mode=mode, save_best_only=True, initial_value_threshold=best
        ),
        keras.callbacks.TensorBoard(run.tensorboard_dir, write_graph=False, profile_batch=0),
    ]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=config.patience, restore_best_weights=True
            )
        )
    batches, weights = training_inputs(config, dataset)
    model.fit(
        batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        class_weight=weights,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles, with the run's seed
        verbose=0,
    )
    return metrics


def _evaluate(model, run: Run, dataset) -> dict | None:
    """Test-split predictions and metrics, plain and averaged over the 8 flips and rotations (TTA), saved for the
    evaluation pages; None without a test split."""
    from galaxy_core.evaluation import summarize
    from galaxy_core.inference import predict_views

    test = dataset.splits["test"]
    if not len(test):
        return None
    views = predict_views(model, test.images)
    probabilities, tta_probabilities = views[0], views.mean(axis=0)
    np.savez(
        run.predictions_path,
        probabilities=probabilities,
        tta_probabilities=tta_probabilities,
        labels=test.labels,
        source_ids=test.source_ids,
    )
    class_names = list(dataset.class_names)
    summary = summarize(test.labels, probabilities.argmax(axis=1), class_names)
    summary["tta"] = summarize(test.labels, tta_probabilities.argmax(axis=1), class_names)
    run.evaluation_path.write_text(json.dumps(summary, indent=2))
    return summary


def with_validation_source(dataset, config: TrainConfig):
    """The dataset as training sees it: with validation="from_train", a stratified share of the training split
    (seeded by the run) replaces the dataset's val split; the test split never changes."""
    if config.validation != "from_train":
        return dataset
    train = dataset.splits["train"]
    kept, held_out, _ = stratified_split(train.labels, (config.validation_fraction, 0.0), config.seed)
    return replace(dataset, splits={**dataset.splits, "train": train.take(kept), "val": train.take(held_out)})


def train_run(run: Run, on_record: RecordCallback | None = None) -> str:
    """Train the run in this process; returns its final state. Never raises for a failed run."""
    try:
        config = TrainConfig.from_dict({k: v for k, v in run.config().items() if k != "created"})
        run.set_status("running", pid=os.getpid(), started=time.time())
        return _train(run, config, on_record)
    except Exception as error:  # the run's record of what went wrong, for the user
        details = traceback.format_exc()
        run.log(details)
        run.set_status("failed", error=f"{type(error).__name__}: {error}", traceback=details)
        return "failed"


def _train(run: Run, config: TrainConfig, on_record: RecordCallback | None) -> str:
    import keras

    from galaxy_core.models import create_model, model_info
    from galaxy_core.training.device import configure_device

    device = configure_device()
    run.set_status("running", device=device.describe())
    run.log(f"device: {device.describe()}")
    dataset = with_validation_source(create_dataset(**config.dataset, cache_dir=load_settings().cache_dir), config)
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    run.log(f"dataset {dataset.name}: {sizes}, classes {list(dataset.class_names)}")
    keras.utils.set_random_seed(config.seed)
    model = create_model(
        config.model, dataset.splits["train"].images.shape[1:], dataset.num_classes, **config.model_options
    )
    weights = getattr(model, "weights_source", None)
    run.set_status(
        "running",
        class_names=list(dataset.class_names),
        parameters=model.count_params(),
        weights_source=weights,
        dataset_sizes=sizes,
    )
    run.log(f"model {config.model}: {model.count_params():,} parameters" + (f"; {weights}" if weights else ""))
    metrics = _fit(
        model,
        run,
        config,
        dataset,
        epochs=config.epochs,
        initial_epoch=0,
        learning_rate=config.learning_rate,
        on_record=on_record,
    )
    recipe = model_info(config.model).recipe
    if recipe.fine_tune_prefix and recipe.fine_tune_epochs and not metrics.stopped_by_request:
        for layer in model.layers:
            if layer.name.startswith(recipe.fine_tune_prefix):
                layer.trainable = True
        done = len(metrics.epoch_seconds)
        monitor, mode = _monitored(config, dataset)
        seen = [record[monitor] for record in epoch_records(run.metrics()) if monitor in record]
        best = (min if mode == "min" else max)(seen, default=None)
        run.log(f"fine-tuning {recipe.fine_tune_prefix}* at {recipe.fine_tune_learning_rate:g}")
        metrics = _fit(
            model,
            run,
            config,
            dataset,
            epochs=done + recipe.fine_tune_epochs,
            initial_epoch=done,
            learning_rate=recipe.fine_tune_learning_rate,
            on_record=on_record,
            best=best,
        )
    model.save(run.final_model_path)
    best = keras.saving.load_model(run.best_model_path) if run.best_model_path.exists() else model
    summary = _evaluate(best, run, dataset)
    state = "stopped" if metrics.stopped_by_request else "finished"
    figures = (
        {
            "test_accuracy": summary["accuracy"],
            "test_balanced_accuracy": summary["balanced_accuracy"],
            "test_balanced_accuracy_tta": summary["tta"]["balanced_accuracy"],
        }
        if summary
        else {}
    )
    run.log(f"{state}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    run.set_status(state, finished=time.time(), **figures)
    return state


def main(argv: list[str] | None = None) -> int:
    from galaxy_core.training.manager import JobManager

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m galaxy_core.training.worker RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    state = train_run(Run(run_dir))
    # Hand the freed slot to the next queued run, even if nobody has the app open.
    JobManager.from_settings(load_settings(), run_dir.parent).schedule()
    return 0 if state in ("finished", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
