"""The one callback through which metrics leave the training loop, and stop requests come in."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.training.store import Run

BATCH_RECORD_SECONDS = 0.5


class RunMetrics(keras.callbacks.Callback):
    """Appends a line per batch (at most every 0.5 s, for smooth live curves) and per epoch to the run's
    metrics, and stops training at the next batch once a stop is requested.

    At the end of each epoch it evaluates the validation images in one pass and adds val_loss, val_accuracy and
    val_balanced_accuracy to the epoch's logs, so that callbacks after it (early stopping, checkpoints) can
    monitor them. Place it first in the callback list.
    """

    def __init__(
        self,
        run: Run,
        val_images,
        val_labels,
        num_classes: int,
        train_images: int,
        epochs: int,
        batch_size: int,
        epoch_offset: int = 0,
        on_record=None,
    ):
        super().__init__()
        self.on_record = on_record  # also called with each record, e.g. to print progress in a terminal
        self.run, self.val_images, self.val_labels = run, val_images, np.asarray(val_labels)
        self.num_classes, self.train_images, self.epochs = num_classes, train_images, epochs
        self.batch_size, self.epoch_offset = batch_size, epoch_offset
        self.steps_per_epoch = math.ceil(train_images / batch_size)
        self.epoch_seconds: list[float] = []
        self.last_batch_record = 0.0
        self.stopped_by_request = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        if batch == 0 or now - self.last_batch_record >= BATCH_RECORD_SECONDS:
            self.last_batch_record = now
            epoch = self.epoch_offset + len(self.epoch_seconds)
            self.record(
                {
                    "kind": "batch",
                    "epoch": epoch,
                    "step": epoch * self.steps_per_epoch + batch + 1,
                    "loss": float(logs.get("loss", math.nan)),
                    "accuracy": float(logs.get("accuracy", math.nan)),
                }
            )
        if self.run.stop_requested_at() is not None:
            self.stopped_by_request = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self.epoch_started
        self.epoch_seconds.append(seconds)
        validation = self.validate()
        logs.update(validation)
        remaining = self.epochs - (epoch + 1)
        self.record(
            {
                "kind": "epoch",
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", math.nan)),
                "accuracy": float(logs.get("accuracy", math.nan)),
                **validation,
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "epoch_seconds": seconds,
                "images_per_second": self.train_images / seconds,
                "eta_seconds": remaining * float(np.mean(self.epoch_seconds)),
            }
        )

    def record(self, values: dict) -> None:
        self.run.append_metrics(values)
        if self.on_record is not None:
            self.on_record(values)

    def validate(self) -> dict:
        if not len(self.val_labels):
            return {}
        probabilities = self.model.predict(self.val_images, batch_size=256, verbose=0).astype(np.float64)
        chosen = probabilities[np.arange(len(self.val_labels)), self.val_labels]
        predicted = probabilities.argmax(axis=1)
        matrix = confusion_matrix(self.val_labels, predicted, self.num_classes)
        return {
            "val_loss": float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0)))),
            "val_accuracy": float(np.mean(predicted == self.val_labels)),
            "val_balanced_accuracy": balanced_accuracy(matrix),
        }
