"""The "train" kind: one model trained on the training split (with its model's fine-tuning phase, if it has one),
validated each epoch, its best checkpoint kept, then evaluated on the test split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from galaxy_core.data import Dataset
from galaxy_core.training.config import MONITOR_MODES, TrainConfig
from galaxy_core.training.kinds.registry import register_kind
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError
from galaxy_core.training.recipe import fit_phase, with_validation_source
from galaxy_core.training.records import KindTraits


def planned_epochs(config: TrainConfig) -> int:
    """Its own epochs, then its model's fine-tuning phase, if any."""
    from galaxy_core.models import model_info

    recipe = model_info(config.model).recipe
    return config.epochs + (recipe.fine_tune_epochs if recipe.fine_tune_prefix else 0)


@dataclass
class TrainingCallbacks:
    """The callbacks that watch a training run's fit phases (galaxy_core.training.callbacks), in their order."""

    stop: object
    validation: object
    checkpoint: object
    early_stop: object | None
    progress: object
    tensorboard: object

    @classmethod
    def for_run(cls, run, config: TrainConfig, dataset: Dataset, planned: int) -> TrainingCallbacks:
        import keras

        from galaxy_core.answers.prediction import VIEW_COUNT
        from galaxy_core.training.callbacks import ProgressReport, StopOnRequest, ValidationMetrics

        stop = StopOnRequest(run)
        validation = ValidationMetrics(dataset.splits["val"], dataset.num_classes, stop)
        progress = ProgressReport(
            run,
            len(dataset.splits["train"]),
            config.batch_size,
            planned,
            evaluation_images=VIEW_COUNT * len(dataset.splits["test"]),  # the final test evaluation's predictions
            validation_pace=lambda: validation.images_per_second,
        )
        tensorboard = keras.callbacks.TensorBoard(run.tensorboard_dir, write_graph=False, profile_batch=0)
        watchers = cls(stop, validation, None, None, progress, tensorboard)
        return watchers.with_own_checkpoint(run, config, dataset)

    def with_own_checkpoint(
        self, run, config: TrainConfig, dataset: Dataset, keep: Callable | None = None
    ) -> TrainingCallbacks:
        """The same stop, validation, progress and TensorBoard with a best checkpoint and early stopping of their
        own (a seed ensemble's next network); `keep(model)` keeps the best (default: the run's best model)."""
        from galaxy_core.training.callbacks import BestCheckpoint, EarlyStop, Monitor

        key = config.monitor if len(dataset.splits["val"]) else "loss"
        return replace(
            self,
            checkpoint=BestCheckpoint(run, Monitor(key, MONITOR_MODES[key]), keep=keep),
            early_stop=EarlyStop(run, Monitor(key, MONITOR_MODES[key]), config.patience)
            if config.early_stopping
            else None,
        )

    def in_order(self, observers: Sequence = ()) -> list:
        first = [self.stop, self.validation, self.checkpoint, self.early_stop, self.progress, self.tensorboard]
        return [callback for callback in first if callback is not None] + list(observers)


def build_model(run, config: TrainConfig, dataset: Dataset):
    import keras

    from galaxy_core.models import create_model

    run.report_progress(message="building its model")
    keras.utils.set_random_seed(config.seed)
    model = create_model(
        config.model, dataset.splits["train"].images.shape[1:], dataset.num_classes, **config.model_options
    )
    if run.stop_requested():
        raise StoppedBeforeTrainingError("stopped while building its model: no model")
    weights = getattr(model, "weights_source", None)
    run.report_progress(
        message="preparing the first batch (building the training graph)",
        class_names=list(dataset.class_names),
        parameters=model.count_params(),
        weights_source=weights,
        dataset_sizes={name: len(split) for name, split in dataset.splits.items()},
        epochs_done=0,
    )
    run.log(f"model {config.model}: {model.count_params():,} parameters" + (f"; {weights}" if weights else ""))
    run.append_metrics({"kind": "stage", "stage": "model built"})
    return model


def fit_phases(model, run, config: TrainConfig, dataset: Dataset, watchers: TrainingCallbacks, observers) -> None:
    """The recipe's epochs, then (unless stopped) its model's fine-tuning phase with the named layers unfrozen; the
    epochs are counted on from those the run's progress has done already (another network's, in a seed ensemble)."""
    from galaxy_core.models import model_info

    train, classes, callbacks = dataset.splits["train"], dataset.num_classes, watchers.in_order(observers)

    def phase(epochs: int, learning_rate: float) -> None:
        done = watchers.progress.epochs_done
        fit_phase(
            model,
            config,
            train,
            classes,
            callbacks,
            epochs=done + epochs,
            initial_epoch=done,
            learning_rate=learning_rate,
        )

    phase(config.epochs, config.learning_rate)
    recipe = model_info(config.model).recipe
    if not (recipe.fine_tune_prefix and recipe.fine_tune_epochs) or watchers.stop.requested:
        return
    for layer in model.layers:
        if layer.name.startswith(recipe.fine_tune_prefix):
            layer.trainable = True
    run.log(f"fine-tuning {recipe.fine_tune_prefix}* at {recipe.fine_tune_learning_rate:g}")
    phase(recipe.fine_tune_epochs, recipe.fine_tune_learning_rate)


def evaluate_test_split(model, run, dataset: Dataset, views=None) -> dict:
    """Test-split predictions and metrics, plain and averaged over the 8 flips and rotations (TTA), saved for the
    evaluation pages; returns the run's test figures ({} without a test split). `views`: the model's probabilities
    of the 8 views, (8, N, classes), when the caller has them (a transfer run's head, from cached features)."""
    from galaxy_core.answers.prediction import predict_views
    from galaxy_core.evaluation import summarize

    test = dataset.splits["test"]
    if not len(test):
        return {}
    views = predict_views(model, test.images) if views is None else views
    probabilities, tta_probabilities = views[0], views.mean(axis=0)
    run.save_arrays(
        "predictions",
        probabilities=probabilities,
        tta_probabilities=tta_probabilities,
        labels=test.labels,
        source_ids=test.source_ids,
    )
    class_names = list(dataset.class_names)
    summary = summarize(test.labels, probabilities.argmax(axis=1), class_names)
    summary["tta"] = summarize(test.labels, tta_probabilities.argmax(axis=1), class_names)
    run.save_evaluation(summary)
    return {
        "test_accuracy": summary["accuracy"],
        "test_balanced_accuracy": summary["balanced_accuracy"],
        "test_balanced_accuracy_tta": summary["tta"]["balanced_accuracy"],
    }


@register_kind("train", title="{model}", planned_epochs=planned_epochs, traits=KindTraits(paces_its_recipe=True))
def train_model(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """Train, keep the best checkpoint and the final model, evaluate the best on the test split."""
    import keras

    dataset = with_validation_source(dataset, config)
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    run.log(f"dataset {dataset.name}: {sizes}, classes {list(dataset.class_names)}")
    model = build_model(run, config, dataset)
    planned = planned_epochs(config)
    watchers = TrainingCallbacks.for_run(run, config, dataset, planned)
    fit_phases(model, run, config, dataset, watchers, observers)
    done = watchers.progress.epochs_done
    if done == 0:
        raise StoppedBeforeTrainingError("stopped during its first epoch, before any epoch finished: no model")
    run.save_model(model, "final")
    run.report_progress(message="evaluating on the test split")
    best = keras.saving.load_model(run.best_model_path) if watchers.checkpoint.saved else model
    figures = evaluate_test_split(best, run, dataset)
    evaluated = "evaluated" if figures else "no test split to evaluate"
    if watchers.stop.requested:
        outcome = Outcome(RunState.STOPPED, f"stopped after {done} of {planned} epochs, {evaluated}", figures)
    else:
        early = " (early stopping)" if done < planned else ""
        outcome = Outcome(RunState.FINISHED, f"finished after {done} of {planned} epochs{early}, {evaluated}", figures)
    run.log(outcome.message + "".join(f"; {key} {value:.4f}" for key, value in figures.items()))
    return outcome
