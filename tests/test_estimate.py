"""Presets, the expected duration before a run starts (throughput probe, cache, arithmetic), the ETA during it,
and observers of a run's fit."""

import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from galaxy_core.training import RunStore, estimate
from galaxy_core.training.callbacks import ProgressReport
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import DEFAULT_MODEL, PRESETS, preset_config, recommended_config
from tests.helpers import rewrite_status, tiny_config, wait_for

SYNTHETIC = DatasetSpec.of("synthetic", num_images=60)


@pytest.fixture(autouse=True)
def no_probe_left_running():
    """Each test starts with no probe of this process running (one runs at a time), and leaves none."""
    yield
    for probe in estimate._probes.values():
        probe.process.kill()
        probe.process.wait()
    estimate._probes.clear()


def test_presets_set_model_size_and_settings_and_take_single_changes():
    quick = preset_config(SYNTHETIC, "quick")
    preset = PRESETS["quick"]
    assert quick.model == preset.model and quick.input_shape == (preset.image_size, preset.image_size, 3)
    assert quick.epochs == preset.settings["epochs"] and quick.model_options == preset.settings.get("model_options", {})
    changed = preset_config(SYNTHETIC, "quick", image_size=32, epochs=3)
    assert changed.input_shape[0] == 32 and changed.epochs == 3
    assert preset_config(SYNTHETIC).model == DEFAULT_MODEL
    with pytest.raises(ValueError, match="unknown preset 'slow'; the presets are recommended, quick, thorough"):
        preset_config(SYNTHETIC, "slow")
    # Another model takes its own recipe, and none of the default model's options.
    other = recommended_config(SYNTHETIC, "custom_cnn")
    assert other.model_options == {} and other.input_shape[0] == SYNTHETIC.preprocess.image_size


def test_expected_seconds_adds_epochs_validation_and_the_final_evaluation():
    config = tiny_config(epochs=3)
    rates = estimate.Throughput(train_images_per_second=100.0, predict_images_per_second=1000.0)
    sizes = {"train": 1000, "val": 100, "test": 50}
    assert estimate.epoch_seconds(config, rates, sizes) == pytest.approx(10 + 0.1)
    expected = estimate.FIXED_SECONDS + 3 * 10.1 + 8 * 50 / 1000
    assert estimate.expected_seconds(config, rates, sizes) == pytest.approx(expected)
    held_out = tiny_config(epochs=3, validation="from_train", validation_fraction=0.1)
    assert estimate.epoch_seconds(held_out, rates, sizes) == pytest.approx(9 + 0.1)
    # A label review of 4 folds: each fold's network trains on 3/4 of the training split, validates on nothing, and
    # predicts its own quarter once; 3 epochs per fold.
    review = tiny_config(epochs=3, kind="label_review", folds=4)
    assert estimate.epoch_seconds(review, rates, sizes) == pytest.approx(750 / 100)
    expected = estimate.FIXED_SECONDS + 4 * 3 * 7.5 + 1000 / 1000
    assert estimate.expected_seconds(review, rates, sizes) == pytest.approx(expected)


def test_the_probe_key_follows_what_sets_a_steps_cost():
    base = tiny_config()
    assert estimate.probe_key(base) == estimate.probe_key(tiny_config(epochs=9, seed=3, learning_rate=0.01))
    assert estimate.probe_key(base) != estimate.probe_key(tiny_config(batch_size=32))
    assert estimate.probe_key(base) != estimate.probe_key(tiny_config(model_options={"blocks": 2}))
    assert estimate.probe_key(base) != estimate.probe_key(
        tiny_config(dataset={**base.dataset.to_dict(), "image_size": 20})
    )


@pytest.mark.throughput_probe
def test_a_probe_measures_in_its_own_process_once_caches_and_times_itself(tmp_path):
    config = tiny_config()
    assert estimate.cached_throughput(config, tmp_path) is None
    started = time.monotonic()
    first = estimate.measure(config, tmp_path, tmp_path / "runs")
    assert first == estimate.Measuring(0.0, estimate.FIRST_PROBE_GUESS_SECONDS, waiting=False)  # no probe timed yet
    time.sleep(0.5)
    again = estimate.measure(config, tmp_path, tmp_path / "runs")  # still running: the same probe, further on
    assert not again.waiting and again.seconds_so_far >= 0.5
    assert [key for key in estimate._probes if key[1] == str(tmp_path)] == [(estimate.probe_key(config), str(tmp_path))]
    wait_for(lambda: estimate.cached_throughput(config, tmp_path), timeout=120)
    took = time.monotonic() - started
    rates = estimate.cached_throughput(config, tmp_path)
    assert rates.train_images_per_second > 0 and rates.predict_images_per_second > 0 and rates.run_id is None
    assert estimate.measure(config, tmp_path, tmp_path / "runs") is None  # cached
    # It timed itself from the moment it was started: what the next probe is said to take.
    assert 0.5 <= estimate.last_probe_seconds(tmp_path) <= took
    other = estimate.measure(tiny_config(batch_size=8), tmp_path, tmp_path / "runs")
    assert other.expected_seconds == estimate.last_probe_seconds(tmp_path)
    (tmp_path / estimate.CACHE_FILE).write_text("{not json")
    assert estimate.cached_throughput(config, tmp_path) is None  # a damaged cache means: probe again


@pytest.mark.throughput_probe
def test_one_probe_at_a_time_and_only_for_a_recipe_still_chosen(tmp_path, monkeypatch):
    """A second recipe waits while the first one's probe is still asked about; once nobody has asked about the
    first for UNWANTED_SECONDS (its page chose another recipe), the second's probe ends it and starts."""
    monkeypatch.setattr(estimate, "UNWANTED_SECONDS", 1.0)
    first, second = tiny_config(), tiny_config(batch_size=8)
    assert not estimate.measure(first, tmp_path, tmp_path / "runs").waiting
    assert estimate.measure(second, tmp_path, tmp_path / "runs").waiting
    probe = estimate._probes[(estimate.probe_key(first), str(tmp_path))].process
    time.sleep(1.2)  # nobody asks about the first recipe any more
    assert not estimate.measure(second, tmp_path, tmp_path / "runs").waiting
    assert probe.poll() is not None  # ended
    assert estimate.cached_throughput(first, tmp_path) is None


@pytest.mark.throughput_probe
def test_no_probe_runs_while_a_run_is_queued_or_training(tmp_path):
    """A probe under way when a run is queued is ended (it would slow the run and time a busy machine), none
    starts while runs are active; one that finds a run queued when it is done (no page was there to end it) keeps
    no figure; the recipe is measured once the runs have ended."""
    config, runs = tiny_config(), tmp_path / "runs"
    assert estimate.measure(config, tmp_path, runs) is not None
    probe = estimate._probes[(estimate.probe_key(config), str(tmp_path))].process
    queued = new_run(RunStore(runs), tiny_config(), MACHINE_TEACHER)
    assert estimate.measure(config, tmp_path, runs).held
    assert probe.poll() is not None  # ended
    assert estimate.measure(tiny_config(batch_size=8), tmp_path, runs).held
    assert not [key for key in estimate._probes if key[1] == str(tmp_path)]  # and none started
    rewrite_status(queued, "stopped")
    again = estimate.measure(config, tmp_path, runs)
    assert again is not None and not again.held and not again.waiting
    probe = estimate._probes[(estimate.probe_key(config), str(tmp_path))].process
    queued = new_run(RunStore(runs), tiny_config(), MACHINE_TEACHER)  # nobody asks about the probe meanwhile
    assert probe.wait(timeout=120) == estimate.TIMED_A_BUSY_MACHINE
    assert estimate.cached_throughput(config, tmp_path) is None
    rewrite_status(queued, "stopped")
    assert not estimate.measure(config, tmp_path, runs).held  # started again
    wait_for(lambda: estimate.cached_throughput(config, tmp_path), timeout=120)


@pytest.mark.throughput_probe
def test_a_probe_writes_nothing_to_the_temporary_folder_and_an_ended_one_leaves_nothing(tmp_path, monkeypatch):
    """A server ends probes all term (a recipe no longer chosen, a run queued): they must not fill /tmp. TensorFlow's
    autograph writes a source file per function it converts to the temporary folder (removed only as the process
    exits normally); the probe's functions are not converted, so from its start to its own end it writes none there,
    and one ended half-way leaves none."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # the probe's process would make its files there
    config, cache, runs = tiny_config(), tmp_path / "cache", tmp_path / "runs"
    assert estimate.measure(config, cache, runs) is not None
    probe = estimate._probes[(estimate.probe_key(config), str(cache))].process
    while probe.poll() is None:  # importing TensorFlow, building its input pipeline, tracing and timing its step
        assert list(temporary.iterdir()) == []
        time.sleep(0.05)
    assert estimate.cached_throughput(config, cache) is not None  # it measured to its end
    other = tiny_config(batch_size=8)
    assert estimate.measure(other, cache, runs) is not None
    probe = estimate._probes[(estimate.probe_key(other), str(cache))].process
    wait_for(lambda: "libtensorflow" in (Path("/proc") / str(probe.pid) / "maps").read_text(), timeout=120)
    new_run(RunStore(runs), tiny_config(), MACHINE_TEACHER)  # a run is queued
    assert estimate.measure(other, cache, runs).held  # ended
    assert probe.poll() is not None and (estimate.probe_key(other), str(cache)) not in estimate._probes
    assert list(temporary.iterdir()) == []


@pytest.mark.throughput_probe
def test_a_failed_probe_is_not_started_again_in_a_loop(tmp_path):
    config = tiny_config()
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the cache folder cannot be created: the probe fails
    assert estimate.measure(config, blocked / "cache", tmp_path / "runs") is not None
    # Once it has ended without a result, it is not started again: no caption waits for it any more.
    wait_for(lambda: estimate.measure(config, blocked / "cache", tmp_path / "runs") is None, timeout=120)
    assert estimate.measure(config, blocked / "cache", tmp_path / "runs") is None and not (blocked / "cache").exists()


def test_a_recipes_pace_comes_from_the_newest_run_that_trained_it(isolated_settings):
    """A run's epochs after the first give the pace of its training steps alone and of validation, for any recipe
    of the same step cost; a run of one epoch (graph building only) or of another step cost gives none."""
    store = RunStore(isolated_settings["runs"])
    one_epoch = new_run(store, tiny_config(epochs=1), MACHINE_TEACHER)
    assert train_in_this_process(one_epoch) == "finished"
    assert estimate.pace_of_runs(tiny_config(), store.runs()) is None
    run = new_run(store, tiny_config(epochs=3), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    pace = estimate.pace_of_runs(tiny_config(epochs=9, seed=4), store.runs())
    later = [m for m in run.metrics() if m["kind"] == "epoch" and m["epoch"] >= 2]
    assert pace.run_id == run.id
    assert pace.train_images_per_second == pytest.approx(np.median([m["training_images_per_second"] for m in later]))
    assert pace.predict_images_per_second == pytest.approx(
        np.median([m["validation_images_per_second"] for m in later])
    )
    # Training alone goes faster than the whole epoch, which validates too.
    assert all(m["training_images_per_second"] > m["images_per_second"] for m in later)
    assert estimate.pace_of_runs(tiny_config(batch_size=8), store.runs()) is None
    # A damaged record or config is not a pace, and never an error on the page that asks.
    run.append_metrics({"kind": "epoch", "epoch": "4", "training_images_per_second": "fast"})
    run.append_metrics({"kind": "epoch", "epoch": 5, "training_images_per_second": -1.0})
    assert estimate.pace_of_runs(tiny_config(), store.runs()) == pace
    config = json.loads((run.path / "config.json").read_text())
    (run.path / "config.json").write_text(json.dumps({**config, "augment": {"sideways": True}}))
    assert estimate.pace_of_runs(tiny_config(), store.runs()) is None


class FakeRun:
    def __init__(self):
        self.records, self.statuses = [], []

    def append_metrics(self, record):
        self.records.append(record)

    def report_progress(self, **fields):
        self.statuses.append(fields)

    def stop_requested(self):
        return False


def test_the_eta_leaves_out_the_first_epoch_and_adds_the_final_evaluation(monkeypatch):
    import galaxy_core.training.callbacks as callbacks

    clock = iter([100.0, 110.0, 122.0])  # the end of epochs 1, 2 and 3
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    pace = {"images_per_second": None}
    report = ProgressReport(
        FakeRun(), 100, 10, 10, evaluation_images=800, validation_pace=lambda: pace["images_per_second"]
    )
    report.epoch_started = 70.0  # epoch 1 began at 70: it took 30 s (tracing included)
    assert report._eta(9) == pytest.approx(9 * 30.0)  # one epoch known: it is all there is
    pace["images_per_second"] = 400.0  # the 800 final predictions: 2 s
    assert report._eta(8) == pytest.approx(8 * 10.0 + 2.0)  # epoch 2 (100 to 110); the first left out
    assert report._eta(7) == pytest.approx(7 * 11.0 + 2.0)  # epochs 2 and 3: 10 and 12 s


class EpochCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch + 1, "val_balanced_accuracy" in (logs or {})))


def test_observers_watch_every_epoch_after_the_runs_own_metrics(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(epochs=2), MACHINE_TEACHER)
    counter = EpochCounter()
    started = time.perf_counter()
    assert train_in_this_process(run, observers=[counter]) == "finished"
    assert counter.epochs == [(1, True), (2, True)]  # validation figures are in the logs it sees
    eta = [m["eta_seconds"] for m in run.metrics() if m["kind"] == "epoch"]
    assert 0 < eta[0] < time.perf_counter() - started
