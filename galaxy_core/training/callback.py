"""The callbacks through which metrics and checkpoints leave the training loop, and stop requests come in: a
training run's and a label review's."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from galaxy_core.data import Split
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.store import RunState

BATCH_RECORD_SECONDS = 0.5
PROGRESS_STATUS_SECONDS = 2.0  # how often the status says how far the current epoch has come
VALIDATION_BATCH = 256


class StopOnRequest(keras.callbacks.Callback):
    """Ends training at the batch after a stop is requested (the Stop button, `galaxy-lab stop`), and logs it once."""

    def __init__(self, run):
        super().__init__()
        self.run = run
        self.stopped_by_request = False

    def on_train_batch_end(self, batch, logs=None):
        self.check_stop()

    def check_stop(self) -> bool:
        """Whether a stop was requested, acted on (training ends after this batch) the first time it is seen."""
        if not self.stopped_by_request and self.run.stop_requested():
            self.stopped_by_request = True
            self.model.stop_training = True
            self.run.log("stop requested: training ends here")
        return self.stopped_by_request


class RunMetrics(StopOnRequest):
    """Watches a run's fit phases (one instance for all of them):

    - appends a line per batch (at most every 0.5 s, for smooth live curves) and per epoch to the run's metrics;
    - validates at the end of each epoch in one pass (val_loss, val_accuracy, val_balanced_accuracy);
    - saves the best checkpoint when the monitored figure improves, and stops after `patience` epochs without
      improvement (early stopping; None: never);
    - stops at the next batch once a stop is requested, also between validation batches. An epoch cut short
      is recorded as a "partial_epoch" line: it is neither validated nor counted;
    - estimates the time left (ETA): during the first epoch from the batches' pace; after it, the epochs left
      times a whole epoch's time (training, validation, checkpoint, and what runs between epochs; the first
      epoch, which traces the graph, left out once there are others), plus the final test evaluation of
      `evaluation_images` images at validation's pace. Early stopping can only make a run end sooner.
    """

    def __init__(
        self,
        run,
        validation: Split,
        num_classes: int,
        train_images: int,
        *,
        batch_size: int,
        planned_epochs: int,
        monitor: str,
        patience: int | None,
        evaluation_images: int = 0,
    ):
        super().__init__(run)
        self.validation, self.num_classes = validation, num_classes
        self.train_images, self.planned_epochs = train_images, planned_epochs
        self.steps_per_epoch = math.ceil(train_images / batch_size)
        self.monitor, self.patience = monitor, patience
        self.higher_is_better = not monitor.endswith("loss")
        self.best_value: float | None = None
        self.best_saved = False
        self.best_val_balanced_accuracy: float | None = None
        self.epoch_seconds: list[float] = []  # training only: the images-per-second figure
        self.cycle_seconds: list[float] = []  # the whole epoch: training, validation, checkpoint, the rest
        self.last_epoch_end: float | None = None
        self.evaluation_images = evaluation_images
        self.validation_images_per_second: float | None = None
        self.new_phase()

    @property
    def epochs_done(self) -> int:
        return len(self.epoch_seconds)

    def new_phase(self) -> None:
        """Before a fit phase: early stopping counts afresh (the best checkpoint still has to be beaten)."""
        self.epochs_without_improvement = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        self.batches_done = 0
        self.last_batch_record = 0.0
        self.last_progress_status = self.epoch_started

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.batches_done = batch + 1
        now = time.perf_counter()
        if batch == 0 or now - self.last_batch_record >= BATCH_RECORD_SECONDS:
            self.last_batch_record = now
            self.run.append_metrics(
                {
                    "kind": "batch",
                    "epoch": self.epochs_done,
                    "step": self.epochs_done * self.steps_per_epoch + batch + 1,
                    "steps_per_epoch": self.steps_per_epoch,
                    "loss": float(logs.get("loss", math.nan)),
                    "accuracy": float(logs.get("accuracy", math.nan)),
                }
            )
        if now - self.last_progress_status >= PROGRESS_STATUS_SECONDS:
            self.last_progress_status = now
            self._report_progress(now)
        super().on_train_batch_end(batch, logs)

    def _report_progress(self, now: float) -> None:
        """The batches done in this epoch; before the first epoch ends, an ETA from the batches' pace."""
        fields = {"batches_done": self.batches_done, "steps_per_epoch": self.steps_per_epoch}
        if not self.epoch_seconds:
            seconds_per_batch = (now - self.epoch_started) / self.batches_done
            fields["eta_seconds"] = seconds_per_batch * (self.planned_epochs * self.steps_per_epoch - self.batches_done)
        self.run.set_status(RunState.RUNNING, **fields)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_started
        figures = {key: float((logs or {}).get(key, math.nan)) for key in ("loss", "accuracy")}
        if self.batches_done < self.steps_per_epoch:
            self.run.append_metrics(
                {
                    "kind": "partial_epoch",
                    "epoch": epoch + 1,
                    "batches": self.batches_done,
                    "of_batches": self.steps_per_epoch,
                    **figures,
                }
            )
            return
        self.epoch_seconds.append(seconds)
        validation = self.validate()
        figures.update(validation)
        if logs is not None:
            logs.update(validation)  # for the callbacks after this one (TensorBoard)
        if "val_balanced_accuracy" in validation:
            self.best_val_balanced_accuracy = max(
                validation["val_balanced_accuracy"], self.best_val_balanced_accuracy or 0.0
            )
        self._follow_monitor(figures.get(self.monitor))
        eta = self._eta(max(0, self.planned_epochs - (epoch + 1)))
        self.run.append_metrics(
            {
                "kind": "epoch",
                "epoch": epoch + 1,
                **figures,
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "epoch_seconds": seconds,
                "images_per_second": self.train_images / seconds,
                "eta_seconds": eta,
            }
        )
        self.run.set_status(
            RunState.RUNNING,
            epochs_done=epoch + 1,
            batches_done=0,
            best_val_balanced_accuracy=self.best_val_balanced_accuracy,
            eta_seconds=eta,
        )

    def _eta(self, epochs_left: int) -> float:
        """Called once per whole epoch, at its very end: an epoch's cycle runs from the end of the one before
        (so it holds whatever Keras and the other callbacks do in between) to its own checkpoint."""
        now = time.perf_counter()
        self.cycle_seconds.append(now - (self.last_epoch_end or self.epoch_started))
        self.last_epoch_end = now
        typical = self.cycle_seconds[1:] or self.cycle_seconds
        evaluation = (
            self.evaluation_images / self.validation_images_per_second if self.validation_images_per_second else 0.0
        )
        return epochs_left * float(np.mean(typical)) + evaluation

    def _follow_monitor(self, value: float | None) -> None:
        """Save the best checkpoint on an improvement; stop early after `patience` epochs without one."""
        if value is None or math.isnan(value):
            return  # validation was cut short by a stop
        improved = self.best_value is None or (
            value > self.best_value if self.higher_is_better else value < self.best_value
        )
        if improved:
            self.best_value, self.epochs_without_improvement = value, 0
            self.run.save_model(self.model, "best")
            self.best_saved = True
            return
        self.epochs_without_improvement += 1
        if self.patience is not None and self.epochs_without_improvement >= self.patience:
            self.model.stop_training = True
            self.run.log(f"early stopping: no better {self.monitor} for {self.patience} epochs")

    def validate(self) -> dict:
        """Validation figures in one pass over the val split, in batches; {} without one or after a stop."""
        images, labels = self.validation.images, np.asarray(self.validation.labels)
        if not len(labels):
            return {}
        batches, started = [], time.perf_counter()
        for start in range(0, len(labels), VALIDATION_BATCH):
            if self.check_stop():
                return {}
            chunk = images[start : start + VALIDATION_BATCH].astype(np.float32)
            batches.append(np.asarray(self.model.predict_on_batch(chunk)))
        probabilities = np.concatenate(batches).astype(np.float64)
        self.validation_images_per_second = len(labels) / (time.perf_counter() - started)
        chosen = probabilities[np.arange(len(labels)), labels]
        predicted = probabilities.argmax(axis=1)
        matrix = confusion_matrix(labels, predicted, self.num_classes)
        return {
            "val_loss": float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0)))),
            "val_accuracy": float(np.mean(predicted == labels)),
            "val_balanced_accuracy": balanced_accuracy(matrix),
        }


class ReviewProgress(StopOnRequest):
    """A review run's progress in its status (epochs over all folds, time left) and its stop request, checked
    after every batch."""

    def __init__(self, run, config: TrainConfig):
        super().__init__(run)
        self.config = config
        self.epochs_done = 0
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_by_request:
            return
        self.epochs_done += 1
        planned = self.config.planned_epochs
        fold = min(self.config.folds, self.epochs_done // self.config.epochs + 1)
        seconds_per_epoch = (time.monotonic() - self.started) / self.epochs_done
        self.run.set_status(
            RunState.RUNNING,
            message=f"training fold {fold} of {self.config.folds}",
            epochs_done=self.epochs_done,
            eta_seconds=seconds_per_epoch * (planned - self.epochs_done),
        )
        self.run.append_metrics({"kind": "review_epoch", "epoch": self.epochs_done, "loss": float(logs["loss"])})


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """With weight averaging on (the optimizer's `use_ema`): the callbacks after this one see the averaged weights
    at each epoch's end (validation, checkpoints), training goes on from the raw ones, and the model ends with the
    averaged weights, also when it stops early (Keras's own swap leaves them only after the last planned epoch)."""

    def __init__(self) -> None:
        super().__init__(swap_on_epoch=True)
        self._averaged: list[np.ndarray] = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._averaged = [keras.ops.convert_to_numpy(variable) for variable in self.model.trainable_variables]

    def on_train_end(self, logs=None):
        for variable, value in zip(self.model.trainable_variables, self._averaged, strict=False):
            variable.assign(value)
