"""The Keras callbacks through which a run's figures, checkpoints and progress leave the training loop, and stop
requests come in: one purpose each, composed by each kind of run (galaxy_core.training.kinds).

In a fit's callback list, in this order: `StopOnRequest` (it must see a stop first), `ValidationMetrics` (puts the
validation figures into the epoch's logs for those after it), `BestCheckpoint` and `EarlyStop` (both follow one
`Monitor`, with an explicit mode), `ProgressReport` (metrics records, progress and the time left), then anything
else (TensorBoard, a benchmark's observer). An epoch cut short by a stop is neither validated nor checkpointed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from galaxy_core.data import Split
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix

BATCH_RECORD_SECONDS = 0.5
PACE_BATCHES = 2  # batches after the first (which builds the training graph) before an ETA is given
PROGRESS_STATUS_SECONDS = 2.0  # how often the progress says how far the current epoch has come
VALIDATION_BATCH = 256
MODES = ("max", "min")


class StopOnRequest(keras.callbacks.Callback):
    """Ends training at the batch after a stop is requested (the Stop button, `galaxy-lab stop`), and logs it once."""

    def __init__(self, run):
        super().__init__()
        self.run = run
        self.requested = False

    def on_train_batch_end(self, batch, logs=None):
        self.check()

    def check(self) -> bool:
        """Whether a stop was requested, acted on (training ends after this batch) the first time it is seen."""
        if not self.requested and self.run.stop_requested():
            self.requested = True
            self.model.stop_training = True
            self.run.log("stop requested: training ends here")
        return self.requested


class ValidationMetrics(keras.callbacks.Callback):
    """At the end of each whole epoch, validation figures (val_loss, val_accuracy, val_balanced_accuracy) from one
    pass over the val split in batches, into the epoch's logs; nothing when training was stopped in the epoch, and
    validation itself stops between batches once a stop is requested."""

    def __init__(self, validation: Split, num_classes: int, stop: StopOnRequest):
        super().__init__()
        self.validation, self.num_classes, self.stop = validation, num_classes, stop
        self.images_per_second: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and not self.stop.requested:
            logs.update(self.validate())

    def validate(self) -> dict:
        images, labels = self.validation.images, np.asarray(self.validation.labels)
        if not len(labels):
            return {}
        batches, started = [], time.perf_counter()
        for start in range(0, len(labels), VALIDATION_BATCH):
            if self.stop.check():
                return {}
            chunk = images[start : start + VALIDATION_BATCH].astype(np.float32)
            batches.append(np.asarray(self.model.predict_on_batch(chunk)))
        probabilities = np.concatenate(batches).astype(np.float64)
        self.images_per_second = len(labels) / (time.perf_counter() - started)
        chosen = probabilities[np.arange(len(labels)), labels]
        predicted = probabilities.argmax(axis=1)
        matrix = confusion_matrix(labels, predicted, self.num_classes)
        return {
            "val_loss": float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0)))),
            "val_accuracy": float(np.mean(predicted == labels)),
            "val_balanced_accuracy": balanced_accuracy(matrix),
        }


@dataclass
class Monitor:
    """A figure of the epoch's logs to follow, and whether higher ("max") or lower ("min") is better; it keeps the
    best value seen across every fit phase of a run."""

    key: str
    mode: str
    best: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"a monitor's mode is one of {MODES}, not {self.mode!r}")

    def value(self, logs) -> float | None:
        value = (logs or {}).get(self.key)
        return None if value is None or math.isnan(value) else float(value)

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best so far (recording it when it does)."""
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best = value
        return better


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the run's "best" model at the end of each whole epoch whose monitored figure beats every earlier one
    (its monitor is shared with nothing: early stopping keeps its own); `keep(model)` saves it another way (a
    transfer run's head keeps its best weights in memory, to be set into the whole network)."""

    def __init__(self, run, monitor: Monitor, keep: Callable | None = None):
        super().__init__()
        self.run, self.monitor = run, monitor
        self.keep = keep or (lambda model: run.save_model(model, "best"))
        self.saved = False

    def on_epoch_end(self, epoch, logs=None):
        value = self.monitor.value(logs)
        if value is not None and not self.model.stop_training and self.monitor.improved(value):
            self.keep(self.model)
            self.saved = True


class EarlyStop(keras.callbacks.Callback):
    """Stops training after `patience` whole epochs in a row without an improvement of the monitored figure over
    the best of the run; each fit phase starts counting afresh."""

    def __init__(self, run, monitor: Monitor, patience: int):
        super().__init__()
        self.run, self.monitor, self.patience = run, monitor, patience
        self.epochs_without_improvement = 0

    def on_train_begin(self, logs=None):
        self.epochs_without_improvement = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self.monitor.value(logs)
        if value is None or self.model.stop_training:
            return
        if self.monitor.improved(value):
            self.epochs_without_improvement = 0
            return
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= self.patience:
            self.model.stop_training = True
            self.run.log(f"early stopping: no better {self.monitor.key} for {self.patience} epochs")


class ProgressReport(keras.callbacks.Callback):
    """What a run reports as it trains, across all its fit phases:

    - a metrics line per batch (at most every 0.5 s, for smooth live curves) and per whole epoch (the epoch's logs,
      validation included, its learning rate, pace and the time left); an epoch cut short is a "partial_epoch"
      line, neither validated nor counted;
    - the run's progress: batches done in the epoch under way (every 2 s), epochs done, the best validation
      balanced accuracy, and the time left (ETA): during the first epoch from the pace of the batches after the
      first (which builds the training graph; no ETA before there is a pace), after it the epochs left times a
      whole epoch's time (training, validation, checkpoint, and what runs between epochs; the first epoch counted
      without its graph building, and left out once there are others), plus the final test evaluation of
      `evaluation_images` at validation's pace (`validation_pace()`). Early stopping can only end a run sooner;
    - its stage: `message` ("training") from the end of each fit's first batch on.
    """

    def __init__(
        self,
        run,
        train_images: int,
        batch_size: int,
        planned_epochs: int,
        *,
        evaluation_images: int = 0,
        validation_pace: Callable[[], float | None] = lambda: None,
    ):
        super().__init__()
        self.run, self.train_images, self.planned_epochs = run, train_images, planned_epochs
        self.steps_per_epoch = math.ceil(train_images / batch_size)
        self.evaluation_images, self.validation_pace = evaluation_images, validation_pace
        self.epoch_seconds: list[float] = []  # training only: the images-per-second figure
        self.cycle_seconds: list[float] = []  # the whole epoch: training, validation, checkpoint, the rest
        self.last_epoch_end: float | None = None
        self.first_batch_end: float | None = None  # of the run
        self.last_batch_end = self.graph_seconds = 0.0  # the first batch's time, graph building included
        self.best_val_balanced_accuracy: float | None = None
        self.message, self.said_message = "training", False

    @property
    def epochs_done(self) -> int:
        return len(self.epoch_seconds)

    def on_train_begin(self, logs=None):
        self.said_message = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        self.batches_done = 0
        self.last_batch_record = 0.0
        self.last_progress = self.epoch_started

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.batches_done = batch + 1
        now = time.perf_counter()
        self.last_batch_end = now
        first = self.first_batch_end is None
        if first:  # the graph is built: the run is training now
            self.first_batch_end, self.last_progress = now, now
            self.graph_seconds = now - self.epoch_started
        if not self.said_message:
            self.said_message = True
            self.run.report_progress(message=self.message, batches_done=batch + 1, steps_per_epoch=self.steps_per_epoch)
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
        if not first and now - self.last_progress >= PROGRESS_STATUS_SECONDS:
            self.last_progress = now
            self._report_batches(now)

    def _report_batches(self, now: float) -> None:
        """The batches done in this epoch; before the first epoch ends, an ETA from the pace of the batches after
        the first (which builds the training graph, many times slower), once PACE_BATCHES have given one."""
        fields = {"batches_done": self.batches_done, "steps_per_epoch": self.steps_per_epoch}
        paced = self.batches_done - 1
        if not self.epoch_seconds and paced >= PACE_BATCHES:
            seconds_per_batch = (now - self.first_batch_end) / paced
            fields["eta_seconds"] = seconds_per_batch * (self.planned_epochs * self.steps_per_epoch - self.batches_done)
        self.run.report_progress(**fields)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_started
        figures = {key: float(value) for key, value in (logs or {}).items() if isinstance(value, int | float)}
        if self.batches_done < self.steps_per_epoch:
            record = {"kind": "partial_epoch", "epoch": epoch + 1, "batches": self.batches_done}
            self.run.append_metrics({**record, "of_batches": self.steps_per_epoch, **figures})
            return
        self.epoch_seconds.append(seconds)
        balanced = figures.get("val_balanced_accuracy")
        if balanced is not None:
            self.best_val_balanced_accuracy = max(balanced, self.best_val_balanced_accuracy or 0.0)
        eta = self._eta(max(0, self.planned_epochs - (epoch + 1)))
        self.run.append_metrics(
            {
                "kind": "epoch",
                "epoch": epoch + 1,
                **figures,
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "epoch_seconds": seconds,
                "images_per_second": self.train_images / seconds,
                # The paces of its training steps alone and of validation: what the next run's estimate reads.
                "training_images_per_second": self.train_images / max(1e-9, self.last_batch_end - self.epoch_started),
                "validation_images_per_second": self.validation_pace(),
                "eta_seconds": eta,
            }
        )
        self.run.report_progress(
            epochs_done=epoch + 1,
            batches_done=0,
            best_val_balanced_accuracy=self.best_val_balanced_accuracy,
            eta_seconds=eta,
        )

    def _eta(self, epochs_left: int) -> float:
        """Called once per whole epoch, at its very end: an epoch's cycle runs from the end of the one before
        (so it holds whatever Keras and the other callbacks do in between) to its own end."""
        now = time.perf_counter()
        cycle = now - (self.last_epoch_end or self.epoch_started)
        if not self.cycle_seconds and self.first_batch_end is not None and self.steps_per_epoch > 1:
            # The first epoch's time, less its first batch's building of the training graph.
            pace = (self.last_batch_end - self.first_batch_end) / (self.steps_per_epoch - 1)
            cycle -= max(0.0, self.graph_seconds - pace)
        self.cycle_seconds.append(cycle)
        self.last_epoch_end = now
        typical = self.cycle_seconds[1:] or self.cycle_seconds
        pace = self.validation_pace()
        evaluation = self.evaluation_images / pace if pace else 0.0
        return epochs_left * float(np.mean(typical)) + evaluation


class FoldProgress(keras.callbacks.Callback):
    """A label review's progress over all its folds (epochs done, the fold under way, time left) and a metrics line
    per epoch."""

    def __init__(self, run, epochs_per_fold: int, folds: int):
        super().__init__()
        self.run, self.epochs_per_fold, self.folds = run, epochs_per_fold, folds
        self.epochs_done = 0
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        self.epochs_done += 1
        planned = self.epochs_per_fold * self.folds
        fold = min(self.folds, self.epochs_done // self.epochs_per_fold + 1)
        seconds_per_epoch = (time.monotonic() - self.started) / self.epochs_done
        self.run.report_progress(
            message=f"training fold {fold} of {self.folds}",
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
