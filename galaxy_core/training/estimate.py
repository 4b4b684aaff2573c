"""How long a run will take on this machine, said before it starts: a short throughput probe, cached per recipe.

The probe builds the run's model, feeds it random images of the run's shape through the run's own input pipeline
for a few seconds (after the step has been traced), and times predictions: pixels do not change a step's cost.
It runs in a process of its own at a low priority (`start_probe`), so a page never waits for it, a crash cannot
reach the server and first visits to other pages keep the CPU; its result is kept in the cache folder, keyed by
what sets a step's cost and by the machine's core count. A probe taken while other runs train measures a busy
machine: the estimate then errs long.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.files import write_json_atomically
from galaxy_core.prediction import VIEW_COUNT
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds import run_kind

PROBE_SECONDS = 4.0
PROBE_IMAGES = 512
CACHE_FILE = "throughput.json"
# Building the model, loading the dataset and saving checkpoints, besides the epochs (measured: 5-15 s).
FIXED_SECONDS = 10.0

_probes: dict[tuple[str, str], subprocess.Popen] = {}  # this process's probes, by key and cache folder


@dataclass(frozen=True)
class Throughput:
    train_images_per_second: float
    predict_images_per_second: float


def probe_key(config: TrainConfig) -> str:
    """What sets the cost of a step: the model and its options, the input shape, the batch, augmentation, cores."""
    parts = [config.model, config.model_options, config.input_shape, config.batch_size, config.augment.enabled]
    return hashlib.sha256(json.dumps([*parts, os.cpu_count()], sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_throughput(config: TrainConfig, cache_dir: Path) -> Throughput | None:
    try:
        entry = json.loads((Path(cache_dir) / CACHE_FILE).read_text()).get(probe_key(config))
        return Throughput(**entry) if entry else None
    except (OSError, ValueError, TypeError):  # none yet, or a damaged file: probe again
        return None


def save_throughput(config: TrainConfig, cache_dir: Path, throughput: Throughput) -> None:
    path = Path(cache_dir) / CACHE_FILE
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        entries = {}
    entries[probe_key(config)] = {
        "train_images_per_second": throughput.train_images_per_second,
        "predict_images_per_second": throughput.predict_images_per_second,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, entries)


def measure_throughput(config: TrainConfig, seconds: float = PROBE_SECONDS) -> Throughput:
    """Time the run's training step and prediction here (imports TensorFlow; takes `seconds` plus tracing)."""

    from galaxy_core.data.pipeline import make_tf_dataset
    from galaxy_core.models import create_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (PROBE_IMAGES, *config.input_shape), dtype=np.uint8)
    labels = rng.integers(0, 3, PROBE_IMAGES)
    batches = make_tf_dataset(images, labels, batch_size=config.batch_size, augment=config.augment).repeat()
    model = create_model(config.model, config.input_shape, 3, **config.model_options)
    model.compile(optimizer=config.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = max(1, PROBE_IMAGES // config.batch_size)
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)  # traces the step
    trained, started = 0, time.perf_counter()
    while trained == 0 or time.perf_counter() - started < seconds:
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
        trained += steps * config.batch_size
    train_rate = trained / (time.perf_counter() - started)
    model.predict_on_batch(images[:256])  # traced
    started = time.perf_counter()
    model.predict_on_batch(images.astype(np.float32))
    predict_rate = len(images) / (time.perf_counter() - started)
    return Throughput(train_rate, predict_rate)


def epoch_seconds(config: TrainConfig, throughput: Throughput, split_sizes: dict[str, int]) -> float:
    """One epoch: its training images, then validation (a label review's fold trains on the other folds and
    does not validate)."""
    train, val = split_sizes.get("train", 0), split_sizes.get("val", 0)
    if config.kind == "label_review":
        return train * (config.folds - 1) / config.folds / throughput.train_images_per_second
    if config.validation == "from_train":
        val = math.ceil(train * config.validation_fraction)
        train -= val
    return train / throughput.train_images_per_second + val / throughput.predict_images_per_second


def expected_seconds(config: TrainConfig, throughput: Throughput, split_sizes: dict[str, int]) -> float:
    """A run's whole time if it trains every planned epoch: the epochs, the final test evaluation over 8 views (a
    label review's: the training split predicted once, fold by fold; a seed ensemble's: by each network), and the
    fixed start-up; early stopping can only shorten it."""
    predicted = (
        split_sizes.get("train", 0) if config.kind == "label_review" else VIEW_COUNT * split_sizes.get("test", 0)
    )
    if config.kind == "seed_ensemble":
        predicted *= config.ensemble_size
    evaluation = predicted / throughput.predict_images_per_second
    planned = run_kind(config.kind).planned_epochs(config)
    return FIXED_SECONDS + planned * epoch_seconds(config, throughput, split_sizes) + evaluation


def start_probe(config: TrainConfig, cache_dir: Path) -> bool:
    """Start measuring this recipe's throughput in a process of its own, unless it is cached or being measured;
    True while a probe runs (for a page to say so and look again)."""
    if cached_throughput(config, cache_dir) is not None:
        return False
    key = (probe_key(config), str(cache_dir))
    if key in _probes:  # still measuring; or it ended without a result: say nothing rather than probe in a loop
        return _probes[key].poll() is None
    _probes[key] = subprocess.Popen(
        [sys.executable, "-m", "galaxy_core.training.estimate", json.dumps(config.to_dict()), str(cache_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return True


def main(arguments: list[str]) -> None:
    from galaxy_core.runtime import import_tensorflow

    config_json, cache_dir = arguments
    os.nice(10)  # the pages a class is opening come first; on an idle machine the figure is the same
    config = TrainConfig.from_dict(json.loads(config_json))
    Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a cache that cannot be written fails before any work
    import_tensorflow()
    save_throughput(config, Path(cache_dir), measure_throughput(config))


if __name__ == "__main__":
    main(sys.argv[1:])
