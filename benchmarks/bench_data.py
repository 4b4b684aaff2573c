"""Data pipeline figures on gz1-3class at 64 px (see docs/benchmarks.md).

1. Cold load (decode, crop, resize, cache) against one pass of keras.utils.image_dataset_from_directory over
   the same folders (goal: ours >= 1.5x faster).
2. Warm load from the on-disk cache (goal <= 0.5 s).
3. Training throughput of a small CNN fed by our pipeline with augmentation on, against the same model fed from
   a pre-built in-memory tensor dataset (the compute-only limit; goal >= 90%).

    .venv/bin/python benchmarks/bench_data.py [--data PATH] [--steps N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.data import AugmentOptions, create_dataset
from galaxy_core.data.pipeline import make_tf_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
IMAGE_SIZE = 64
BATCH_SIZE = 64


def warm_file_cache(root: Path) -> int:
    """Read every file once so that both loaders start from the same warm OS page cache."""
    total = 0
    for path in root.rglob("*.jpeg"):
        total += len(path.read_bytes())
    return total


def time_ours_cold(root: Path) -> float:
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        create_dataset("folder", path=str(root), image_size=IMAGE_SIZE, crop_fraction=0.4, cache_dir=cache)
        return time.perf_counter() - started


def time_keras_pass(root: Path) -> float:
    import keras

    started = time.perf_counter()
    for split in ("train", "val", "test"):
        dataset = keras.utils.image_dataset_from_directory(
            root / split, image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=BATCH_SIZE, shuffle=False, verbose=False
        )
        for _ in dataset:
            pass
    return time.perf_counter() - started


def time_warm(root: Path, repeats: int = 5) -> float:
    with tempfile.TemporaryDirectory() as cache:
        create_dataset("folder", path=str(root), image_size=IMAGE_SIZE, crop_fraction=0.4, cache_dir=cache)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            create_dataset("folder", path=str(root), image_size=IMAGE_SIZE, crop_fraction=0.4, cache_dir=cache)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def small_cnn(num_classes: int):
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def images_per_second(model, dataset, steps: int) -> float:
    """Throughput of model.fit over `steps` batches after a warm-up epoch of 5 batches."""
    import keras

    model.fit(dataset.take(5), epochs=1, verbose=0)

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.started

    clock = Clock()
    model.fit(dataset.take(steps), epochs=1, verbose=0, callbacks=[clock])
    return steps * BATCH_SIZE / clock.seconds


def throughput(images: np.ndarray, labels: np.ndarray, steps: int) -> tuple[float, float]:
    import keras
    import tensorflow as tf

    repeated = make_tf_dataset(images, labels, batch_size=BATCH_SIZE, augment=AugmentOptions(), shuffle=True, seed=0)
    ours = repeated.repeat()
    in_memory = (
        tf.data.Dataset.from_tensor_slices((tf.constant(images, tf.float32), tf.constant(labels, tf.int32)))
        .batch(BATCH_SIZE)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    keras.utils.set_random_seed(0)
    ours_rate = images_per_second(small_cnn(3), ours, steps)
    keras.utils.set_random_seed(0)
    limit_rate = images_per_second(small_cnn(3), in_memory, steps)
    return ours_rate, limit_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=60, help="training batches timed per pipeline")
    parser.add_argument("--repeats", type=int, default=5, help="cold loads timed per loader")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")

    megabytes = warm_file_cache(args.data) / 1e6
    print(f"gz1-3class: {megabytes:.0f} MB of JPEG, {IMAGE_SIZE} px, {os.cpu_count()} CPU cores")
    # Alternate the two loaders and take medians: this 2-core machine's timings vary by +-20% run to run.
    keras_times, ours_times = [], []
    for _ in range(args.repeats):
        keras_times.append(time_keras_pass(args.data))
        ours_times.append(time_ours_cold(args.data))
    keras_seconds, ours_seconds = statistics.median(keras_times), statistics.median(ours_times)
    print(
        f"cold load, ours (decode+crop+resize+cache), median of {args.repeats}: {ours_seconds:.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in ours_times)})"
    )
    print(
        f"one pass of keras image_dataset_from_directory, median of {args.repeats}: {keras_seconds:.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in keras_times)})"
    )
    print(f"cold-load speed-up: {keras_seconds / ours_seconds:.2f}x (goal >= 1.5x)")
    print(f"warm load (median of 5): {time_warm(args.data):.3f} s (goal <= 0.5 s)")

    dataset = create_dataset("folder", path=str(args.data), image_size=IMAGE_SIZE, crop_fraction=0.4)
    train = dataset.splits["train"]
    ours_rate, limit_rate = throughput(train.images, train.labels, args.steps)
    print(f"training, our pipeline with augmentation: {ours_rate:.0f} img/s")
    print(f"training, in-memory tensors (compute-only limit): {limit_rate:.0f} img/s")
    print(f"pipeline efficiency: {100 * ours_rate / limit_rate:.1f}% (goal >= 90%)")


if __name__ == "__main__":
    main()
