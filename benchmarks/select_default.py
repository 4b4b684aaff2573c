"""Train candidate architectures on gz1-3class under the same wall-time budget and print their balanced accuracy.

This is how the recommended default model was chosen (README, "The default model"): the candidate with the best
validation balanced accuracy wins; test figures are printed for the record, not used to choose.

    .venv/bin/python benchmarks/select_default.py [--budget-minutes 6] [--models resnet_small ...]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from galaxy_core.data import AugmentOptions, create_dataset
from galaxy_core.data.pipeline import make_tf_dataset
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix, per_class_metrics
from galaxy_core.models import create_model

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


class BudgetCosine(keras.callbacks.Callback):
    """Cosine learning-rate decay over as many epochs as fit the time budget (measured after epoch 1);
    keeps the weights of the epoch with the best validation balanced accuracy."""

    def __init__(self, base_lr, budget_s, val_images, val_labels, num_classes):
        super().__init__()
        self.base_lr, self.budget_s = base_lr, budget_s
        self.val_images, self.val_labels, self.num_classes = val_images, val_labels, num_classes
        self.total_epochs, self.best, self.best_weights, self.history = None, -1.0, None, []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        if self.total_epochs:
            progress = min(1.0, epoch / self.total_epochs)
            self.model.optimizer.learning_rate.assign(self.base_lr * 0.5 * (1 + math.cos(math.pi * progress)))

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.started
        if self.total_epochs is None:
            self.total_epochs = max(2, int(self.budget_s / elapsed))
        predicted = self.model.predict(self.val_images, batch_size=256, verbose=0).argmax(axis=1)
        score = balanced_accuracy(confusion_matrix(self.val_labels, predicted, self.num_classes))
        self.history.append(score)
        if score > self.best:
            self.best, self.best_weights = score, self.model.get_weights()
        if epoch + 1 >= self.total_epochs or elapsed > self.budget_s:
            self.model.stop_training = True


def run(name, dataset, budget_s, batch_size, learning_rate, options):
    train, val, test = (dataset.splits[s] for s in ("train", "val", "test"))
    counts = np.bincount(train.labels, minlength=dataset.num_classes)
    class_weight = {i: len(train.labels) / (dataset.num_classes * c) for i, c in enumerate(counts)}
    keras.utils.set_random_seed(0)
    model = create_model(name, train.images.shape[1:], dataset.num_classes, **options)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    pipeline = make_tf_dataset(
        train.images, train.labels, batch_size=batch_size, augment=AugmentOptions(), shuffle=True, seed=0
    )
    tracker = BudgetCosine(learning_rate, budget_s, val.images, val.labels, dataset.num_classes)
    started = time.perf_counter()
    model.fit(pipeline, epochs=1000, class_weight=class_weight, callbacks=[tracker], verbose=0)
    seconds = time.perf_counter() - started
    model.set_weights(tracker.best_weights)
    matrix = confusion_matrix(
        test.labels, model.predict(test.images, batch_size=256, verbose=0).argmax(1), dataset.num_classes
    )
    recalls = " ".join(
        f"{n}={m.recall:.2f}" for n, m in zip(dataset.class_names, per_class_metrics(matrix), strict=True)
    )
    print(
        f"| {name} {options or ''} | {model.count_params():,} | {len(tracker.history)} | {seconds / 60:.1f} | "
        f"{tracker.best:.3f} | {balanced_accuracy(matrix):.3f} | {np.trace(matrix) / matrix.sum():.3f} | "
        f"{recalls} |",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget-minutes", type=float, default=6.0)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument(
        "--models", nargs="*", default=["resnet_small", "inception_small", "densenet_small", "practice1", "custom_cnn"]
    )
    args = parser.parse_args()
    dataset = create_dataset("folder", path=str(args.data), image_size=args.image_size, crop_fraction=0.4)
    print(
        f"gz1-3class at {args.image_size} px, crop 0.4, augmentation on, balanced class weights, Adam "
        f"{args.learning_rate:g} with cosine decay, batch {args.batch_size}, {args.budget_minutes:g} min each"
    )
    print(
        "| model | parameters | epochs | minutes | val balanced acc (best epoch) | test balanced acc | "
        "test acc | test recall per class |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        run(name, dataset, args.budget_minutes * 60, args.batch_size, args.learning_rate, {})


if __name__ == "__main__":
    main()
