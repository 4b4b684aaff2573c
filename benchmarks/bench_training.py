"""Training overhead: a run through the worker (our callback, checkpoints, TensorBoard, validation) against a bare
model.fit on the same arrays, model and pipeline (goal >= 95%), and how soon a written metric is visible to a reader.

    .venv/bin/python benchmarks/bench_training.py [--epochs 4] [--model practice1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.models import create_model
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import recommended_config
from galaxy_core.training.recipe import training_inputs
from galaxy_core.training.records import epoch_records

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = [time.time()]

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.time())


def seconds_per_epoch(ends: list[float]) -> float:
    """Median epoch time, leaving out the first epoch (graph tracing)."""
    return statistics.median(b - a for a, b in itertools.pairwise(ends[1:]))


def bare_fit(config, dataset) -> float:
    train = dataset.splits["train"]
    keras.utils.set_random_seed(config.seed)
    model = create_model(config.model, train.images.shape[1:], dataset.num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    clock = EpochClock()
    batches, weights = training_inputs(config, dataset.splits["train"], dataset.num_classes)  # as a run's fit
    model.fit(
        batches,
        epochs=config.epochs,
        class_weight=weights,
        callbacks=[clock],
        shuffle=False,
        verbose=0,
    )
    return seconds_per_epoch(clock.ends)


def worker_fit(config, runs_dir) -> float:
    run = new_run(RunStore(runs_dir), config, MACHINE_TEACHER)
    started = time.time()
    train_in_this_process(run)
    epochs = epoch_records(run.metrics())
    return seconds_per_epoch([started] + [e["time"] for e in epochs])


def visibility_delays(runs_dir, writes: int = 200) -> list[float]:
    """Seconds from a metric's append to a polling reader seeing it (the reader polls every millisecond)."""
    run = RunStore(runs_dir).create({"note": "visibility"}, name="probe", planned_epochs=0)
    delays, seen = [], threading.Event()
    done = False

    def reader():
        count = 0
        while not done:
            records = run.metrics()
            if len(records) > count:
                delays.append(time.time() - records[-1]["time"])
                count = len(records)
                seen.set()
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    for index in range(writes):
        seen.clear()
        run.append_metrics({"kind": "probe", "index": index})
        seen.wait(timeout=2)
    done = True
    thread.join()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--model", default="practice1")
    args = parser.parse_args()
    spec = (
        DatasetSpec.of("folder", path=str(GZ1)).with_preprocess(crop_fraction=0.4)
        if GZ1.is_dir()
        else DatasetSpec.of("synthetic")
    )
    config = recommended_config(spec, args.model, epochs=args.epochs, early_stopping=False, schedule="constant")
    dataset = create_dataset(spec)
    images = len(dataset.splits["train"])
    with tempfile.TemporaryDirectory() as runs_dir:
        bare = bare_fit(config, dataset)
        worker = worker_fit(config, runs_dir)
        delays = visibility_delays(runs_dir)
    print(
        f"{spec.get('path', spec['name'])}: {images} training images, {config.model}, batch {config.batch_size}, "
        f"{args.epochs} epochs (first left out)"
    )
    print(f"bare model.fit: {images / bare:.0f} img/s ({bare:.1f} s/epoch)")
    print(
        f"through the worker (metrics, validation, checkpoint, TensorBoard): {images / worker:.0f} img/s "
        f"({worker:.1f} s/epoch)"
    )
    print(f"worker throughput: {100 * bare / worker:.1f}% of bare fit (goal >= 95%)")
    print(
        f"metric written -> visible to a reader: median {1000 * statistics.median(delays):.1f} ms, "
        f"max {1000 * max(delays):.1f} ms over {len(delays)} writes (the Train page polls every 2 s)"
    )


if __name__ == "__main__":
    main()
