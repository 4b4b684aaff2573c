"""How long a run will take on this machine, said before it starts: the recipe's pace, from the newest run of the
same step cost or from a short throughput probe, cached per recipe.

The probe builds the run's model, feeds it random images of the run's shape through the run's own input pipeline
for a few seconds (after the step has been traced), and times predictions: pixels do not change a step's cost.
It runs in a process of its own at a low priority (`measure`), so a page never waits for it, a crash cannot reach
the server and first visits to other pages keep the CPU; its result is kept in the cache folder, keyed by what
sets a step's cost and by the machine's core count, with how long the probe took (what the page says the next one
will take). One probe runs at a time, only for a recipe a page is asking about, and none while a run is queued or
trains (it would slow the run and read a busy machine; one under way is ended, and one that finds a run queued
when it is done keeps no figure): a run's own pace is then the better figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.files import write_json_atomically
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds import run_kind
from galaxy_core.training.records import epoch_records, number
from galaxy_core.training.store import RunStore

PROBE_SECONDS = 4.0
PROBE_IMAGES = 512
CACHE_FILE = "throughput.json"
# Building the model, loading the dataset and saving checkpoints, besides the epochs (measured: 5-15 s).
FIXED_SECONDS = 10.0
# What a page says a probe takes before this machine has timed one (measured on 2 idle cores: the presets' probes
# took 15-19 s, start to result).
FIRST_PROBE_GUESS_SECONDS = 20.0
# A probe no page has asked about for this long is for a recipe nobody has chosen any more (pages ask every 2 s).
UNWANTED_SECONDS = 6.0
# A probe's exit status when a run was queued while it measured: it kept no figure, and is started again.
TIMED_A_BUSY_MACHINE = 75
# How long an ended probe has to exit cleanly (it answers between two steps) before it is killed.
END_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Throughput:
    train_images_per_second: float
    predict_images_per_second: float
    run_id: str | None = None  # the run whose pace it is; None: a probe's


@dataclass
class _Probe:
    process: subprocess.Popen
    started: float  # time.monotonic()
    wanted: float  # the last time a page asked for it


@dataclass(frozen=True)
class Measuring:
    """A probe under way, waiting its turn or held while runs train: what a page says while it waits."""

    seconds_so_far: float
    expected_seconds: float  # how long the last probe here took
    waiting: bool  # behind another recipe's probe
    held: bool = False  # a run is queued or training: no probe until none is


HELD = Measuring(0.0, 0.0, waiting=False, held=True)


_probes: dict[tuple[str, str], _Probe] = {}  # this process's probes, by key and cache folder
_probes_lock = threading.Lock()  # a server's sessions ask from threads of their own


def probe_key(config: TrainConfig) -> str:
    """What sets the cost of a step: the model and its options, the input shape, the batch, augmentation, cores."""
    parts = [config.model, config.model_options, config.input_shape, config.batch_size, config.augment.enabled]
    return hashlib.sha256(json.dumps([*parts, os.cpu_count()], sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_throughput(config: TrainConfig, cache_dir: Path) -> Throughput | None:
    try:
        entry = _cache_entries(cache_dir).get(probe_key(config))
        return Throughput(float(entry["train_images_per_second"]), float(entry["predict_images_per_second"]))
    except (KeyError, ValueError, TypeError):  # none yet, or a damaged entry: probe again
        return None


def _cache_entries(cache_dir: Path) -> dict:
    try:
        entries = json.loads((Path(cache_dir) / CACHE_FILE).read_text())
    except (OSError, ValueError):  # none yet, or a damaged file
        return {}
    return entries if isinstance(entries, dict) else {}


def save_throughput(
    config: TrainConfig, cache_dir: Path, throughput: Throughput, probe_seconds: float | None = None
) -> None:
    """Keep the recipe's throughput (and how long its probe took) in the cache folder."""
    path = Path(cache_dir) / CACHE_FILE
    entries = _cache_entries(cache_dir)
    entries[probe_key(config)] = {
        "train_images_per_second": throughput.train_images_per_second,
        "predict_images_per_second": throughput.predict_images_per_second,
        **({"probe_seconds": probe_seconds, "measured_at": time.time()} if probe_seconds is not None else {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, entries)


def last_probe_seconds(cache_dir: Path) -> float | None:
    """How long the newest probe in the cache folder took, start to result."""
    timed = [entry for entry in _cache_entries(cache_dir).values() if isinstance(entry, dict)]
    timed = [entry for entry in timed if isinstance(entry.get("probe_seconds"), int | float)]
    newest = max(timed, key=lambda entry: entry.get("measured_at", 0), default=None)
    return float(newest["probe_seconds"]) if newest else None


def pace_of_runs(config: TrainConfig, summaries) -> Throughput | None:
    """The pace of the newest of `summaries` (RunSummary, newest first) that shares this recipe's step cost and
    recorded whole epochs after its first (which builds the training graph) on this machine (not on a Ray node):
    its median training and validation images per second."""
    key = probe_key(config)
    for summary in summaries:
        if summary.epochs_done < 2 or not summary.traits.paces_its_recipe or summary.executor == "ray":
            continue
        try:
            if probe_key(TrainConfig.from_dict(summary.config)) != key:
                continue
        except (ValueError, TypeError):  # a config this version cannot read: not this recipe
            continue
        later = [m for m in epoch_records(summary.run.metrics()) if (number(m.get("epoch")) or 0) >= 2]
        train, predict = _paces(later, "training_images_per_second"), _paces(later, "validation_images_per_second")
        if train and predict:
            return Throughput(float(np.median(train)), float(np.median(predict)), run_id=summary.id)
    return None


def _paces(records: list[dict], key: str) -> list[float]:
    """The records' figures under `key` that are paces (positive numbers); a damaged one is none."""
    return [pace for pace in (number(record.get(key)) for record in records) if pace is not None and pace > 0]


def measure_throughput(config: TrainConfig, seconds: float = PROBE_SECONDS) -> Throughput:
    """Time the run's training step and prediction here (imports TensorFlow; takes `seconds` plus tracing)."""

    from galaxy_core.data.pipeline import make_tf_dataset
    from galaxy_core.models import create_model
    from galaxy_core.training.recipe import create_training_state

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (PROBE_IMAGES, *config.input_shape), dtype=np.uint8)
    labels = rng.integers(0, 3, PROBE_IMAGES)
    batches = make_tf_dataset(images, labels, batch_size=config.batch_size, augment=config.augment).repeat()
    model = create_model(config.model, config.input_shape, 3, **config.model_options)
    model.compile(optimizer=config.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    create_training_state(model, batches)
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
    """One epoch: its training images, then validation (as the run's kind says)."""
    work = run_kind(config.kind).workload(config, split_sizes)
    return (
        work.trained_per_epoch / throughput.train_images_per_second
        + work.validated_per_epoch / throughput.predict_images_per_second
    )


def expected_seconds(config: TrainConfig, throughput: Throughput, split_sizes: dict[str, int]) -> float:
    """A run's whole time if it trains every planned epoch: the epochs, its final predictions and the fixed
    start-up; early stopping can only shorten it."""
    kind = run_kind(config.kind)
    evaluation = kind.workload(config, split_sizes).predicted_at_the_end / throughput.predict_images_per_second
    return FIXED_SECONDS + kind.planned_epochs(config) * epoch_seconds(config, throughput, split_sizes) + evaluation


def measure(config: TrainConfig, cache_dir: Path, runs_dir: Path) -> Measuring | None:
    """Measure this recipe's throughput in a process of its own, unless it is cached; asked again (a page does
    every 2 s while it waits), it says how far the probe is. One probe at a time: another recipe's probe that no
    page has asked about for UNWANTED_SECONDS is ended (its recipe is no longer chosen), one still wanted goes
    first. None when cached, or when the probe ended without a result (say nothing rather than probe in a loop).

    No probe runs while a run of `runs_dir` is queued or training: it would slow the run down and time a busy
    machine. One under way is ended then (`held`), and a probe that sees a run come while it measured keeps no
    figure and is started again once none is active."""
    if cached_throughput(config, cache_dir) is not None:
        return None
    with _probes_lock:
        if runs_active(runs_dir):
            for key, probe in list(_probes.items()):
                if probe.process.poll() is None:
                    _end(key)
            return HELD
        return _measure(config, cache_dir, runs_dir)


def runs_active(runs_dir: Path) -> bool:
    return bool(RunStore(runs_dir).runs(active_only=True))


def _end(key: tuple[str, str]) -> None:
    """End a probe: SIGTERM, which it answers by exiting through Python's exit handlers (TensorFlow removes the
    source files it wrote to the temporary folder for each traced function there), then SIGKILL if it lingers."""
    process = _probes.pop(key).process
    process.terminate()
    try:
        process.wait(timeout=END_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _measure(config: TrainConfig, cache_dir: Path, runs_dir: Path) -> Measuring | None:
    key, now = (probe_key(config), str(cache_dir)), time.monotonic()
    expected = last_probe_seconds(cache_dir) or FIRST_PROBE_GUESS_SECONDS
    probe = _probes.get(key)
    if probe is not None and probe.process.poll() == TIMED_A_BUSY_MACHINE:
        del _probes[key]  # a run came while it measured: measure again now that none is active
        probe = None
    if probe is not None:
        probe.wanted = now
        running = probe.process.poll() is None
        return Measuring(now - probe.started, expected, waiting=False) if running else None
    for other_key, other in list(_probes.items()):
        if other.process.poll() is None:
            if now - other.wanted < UNWANTED_SECONDS:
                return Measuring(0.0, expected, waiting=True)
            _end(other_key)
    arguments = [json.dumps(config.to_dict()), str(cache_dir), str(runs_dir), str(time.time())]
    process = subprocess.Popen(
        [sys.executable, "-m", "galaxy_core.training.estimate", *arguments],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _probes[key] = _Probe(process, started=now, wanted=now)
    return Measuring(0.0, expected, waiting=False)


def main(arguments: list[str]) -> None:
    from galaxy_core.runtime import import_tensorflow

    config_json, cache_dir, runs_dir, started = arguments
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # exit handlers run: nothing left behind
    os.nice(10)  # the pages a class is opening come first; on an idle machine the figure is the same
    config = TrainConfig.from_dict(json.loads(config_json))
    Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a cache that cannot be written fails before any work
    import_tensorflow()
    throughput = measure_throughput(config)
    if runs_active(Path(runs_dir)):  # queued while it measured (no page was there to end it): a busy figure
        sys.exit(TIMED_A_BUSY_MACHINE)
    save_throughput(config, Path(cache_dir), throughput, probe_seconds=time.time() - float(started))


if __name__ == "__main__":
    main(sys.argv[1:])
