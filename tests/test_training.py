"""Training runs: config checks, the run store, the worker in-process and as a process, stop, crash, recovery."""

import json
import logging
import os
import signal
import time

import numpy as np
import pytest

from galaxy_core.training import JobManager, RunNotFoundError, RunStore, TrainConfig
from galaxy_core.training.worker import class_weights, train_run

TINY_DATA = {"name": "synthetic", "num_images": 60, "image_size": 16}
TINY_MODEL = {"blocks": 1, "filters": 4, "convs_per_block": 1}


def tiny_config(**overrides) -> TrainConfig:
    values = {
        "dataset": TINY_DATA,
        "model": "custom_cnn",
        "model_options": TINY_MODEL,
        "epochs": 2,
        "batch_size": 16,
        "early_stopping": False,
    }
    return TrainConfig(**{**values, **overrides})


def wait_for(predicate, timeout=120.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "alexnet"}, "unknown model 'alexnet'"),
        ({"epochs": 0}, "epochs must be 1-500"),
        ({"optimizer": "adagrad"}, "optimizer must be one of"),
        ({"learning_rate": 0}, "learning_rate must be"),
        ({"monitor": "val_f1"}, "monitor must be one of"),
        ({"dataset": {}}, "dataset must name its source"),
        ({"model": "practice3"}, "practice3 needs images of at least 50 px; the dataset is set to 16 px"),
        ({"validation": "test_split"}, "validation must be one of"),
        ({"validation_fraction": 0.7}, "validation_fraction must be between 0 and 0.5"),
    ],
)
def test_bad_settings_are_refused_before_any_work(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_config_round_trips_through_json():
    config = tiny_config()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown training settings \['epoch'\]"):
        TrainConfig.from_dict({**config.to_dict(), "epoch": 3})


def test_class_weights_balance_the_classes():
    weights = class_weights(np.array([0] * 70 + [1] * 20 + [2] * 10), 3)
    assert weights == pytest.approx({0: 100 / 210, 1: 100 / 60, 2: 100 / 30})


def test_store_reads_tolerantly(isolated_settings, caplog):
    store = RunStore(isolated_settings["runs"])
    run = store.create(tiny_config().to_dict(), "custom_cnn")
    assert run.status()["state"] == "queued"
    run.append_metrics({"kind": "epoch", "epoch": 1, "loss": 0.5})
    with (run.path / "metrics.jsonl").open("a") as file:
        file.write('{"kind": "epoch", "epo')  # a line being written when the reader looks
    assert [m["epoch"] for m in run.metrics()] == [1]
    broken = isolated_settings["runs"] / "20990101-000000-broken"
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    (isolated_settings["runs"] / "notes.txt").write_text("not a run")
    with caplog.at_level(logging.WARNING):
        assert [r.id for r, _, _ in store.runs()] == [run.id]
    assert "skipping run folder" in caplog.text
    for bad in ["../secret", "a/b", "", ".hidden", "x" * 200]:
        with pytest.raises(RunNotFoundError):
            store.get(bad)
    with pytest.raises(ValueError, match="state must be one of"):
        run.set_status("exploded")


def test_a_run_writes_every_artifact(isolated_settings):
    run = RunStore(isolated_settings["runs"]).create(tiny_config(early_stopping=True, patience=1).to_dict(), "c")
    records = []
    assert train_run(run, on_record=records.append) == "finished"
    status = run.status()
    assert status["state"] == "finished" and status["device"] == "CPU, float32"
    assert 0 <= status["test_balanced_accuracy"] <= 1 and status["class_names"] == ["edge", "smooth", "spiral"]
    for path in (run.best_model_path, run.final_model_path, run.evaluation_path, run.predictions_path):
        assert path.is_file(), path
    assert list(run.tensorboard_dir.rglob("events.out.tfevents.*"))
    epochs = [m for m in run.metrics() if m["kind"] == "epoch"]
    batches = [m for m in run.metrics() if m["kind"] == "batch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and batches
    assert {
        "val_loss",
        "val_accuracy",
        "val_balanced_accuracy",
        "learning_rate",
        "images_per_second",
        "eta_seconds",
    } <= set(epochs[0])
    assert [r["kind"] for r in records] == [m["kind"] for m in run.metrics()]  # the terminal saw every record
    predictions = np.load(run.predictions_path)
    assert predictions["probabilities"].shape == (len(predictions["labels"]), 3)
    assert set(run.evaluation()) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"}
    assert "finished" in run.log_tail()


def test_same_seed_same_curve(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    curves = []
    for _ in range(2):
        run = store.create(tiny_config().to_dict(), "c")
        train_run(run)
        curves.append([m["loss"] for m in run.metrics() if m["kind"] == "epoch"])
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)


def test_a_stop_request_ends_the_run_at_the_next_batch(isolated_settings):
    run = RunStore(isolated_settings["runs"]).create(tiny_config(epochs=50).to_dict(), "c")
    run.request_stop()
    assert train_run(run) == "stopped"
    assert len([m for m in run.metrics() if m["kind"] == "epoch"]) == 1  # the epoch in progress ends it
    assert run.final_model_path.exists() and run.evaluation_path.exists()


def test_a_crash_ends_as_failed_with_its_traceback(isolated_settings):
    config = tiny_config(dataset={"name": "folder", "path": str(isolated_settings["data"] / "missing")})
    run = RunStore(isolated_settings["runs"]).create(config.to_dict(), "c")
    assert train_run(run) == "failed"
    status = run.status()
    assert "does not exist" in status["error"] and "Traceback" in status["traceback"]


def test_manager_runs_the_queue_in_background_processes(isolated_settings):
    manager = JobManager(isolated_settings["runs"], max_concurrent=1)
    first = manager.submit(tiny_config())
    second = manager.submit(tiny_config(seed=1))
    assert first.status()["state"] == "running" and second.status()["state"] == "queued"
    wait_for(lambda: second.status()["state"] == "finished")  # started by the first worker when it ended
    assert first.status()["state"] == "finished"
    assert second.evaluation() is not None


def test_stop_and_sigkill_in_background(isolated_settings):
    manager = JobManager(isolated_settings["runs"], max_concurrent=2, stop_timeout=60)
    stopped = manager.submit(tiny_config(epochs=400))
    killed = manager.submit(tiny_config(epochs=400, seed=2))
    wait_for(lambda: any(m["kind"] == "epoch" for m in stopped.metrics()))
    wait_for(lambda: any(m["kind"] == "epoch" for m in killed.metrics()))
    manager.stop(stopped.id)
    os.kill(killed.status()["pid"], signal.SIGKILL)
    wait_for(lambda: stopped.status()["state"] == "stopped")
    seen = len(killed.metrics())
    wait_for(lambda: not manager.schedule() and killed.status()["state"] == "interrupted")
    assert len(killed.metrics()) >= seen > 0  # nothing written before the kill is lost
    assert "ended without finishing" in killed.status()["message"]


def test_a_queued_run_stops_at_once(isolated_settings):
    manager = JobManager(isolated_settings["runs"], max_concurrent=0)
    run = manager.submit(tiny_config())
    assert manager.stop(run.id)["state"] == "stopped"


def test_validation_can_be_held_out_of_the_training_split(isolated_settings):
    config = tiny_config(validation="from_train", validation_fraction=0.25)
    run = RunStore(isolated_settings["runs"]).create(config.to_dict(), "c")
    assert train_run(run) == "finished"
    # 60 synthetic galaxies: 48 train, 6 val, 6 test; a quarter of the 48 is held out and the val split unused.
    assert run.status()["dataset_sizes"] == {"train": 36, "val": 12, "test": 6}


def test_a_fine_tune_phase_keeps_the_best_checkpoint_of_the_first(isolated_settings):
    config = tiny_config(
        dataset={**TINY_DATA, "image_size": 32},
        model="vgg16_fixed",
        model_options={"weights": "none"},
        monitor="val_balanced_accuracy",
    )
    run = RunStore(isolated_settings["runs"]).create(config.to_dict(), "vgg16_fixed")
    assert train_run(run) == "finished"
    assert "fine-tuning block5_*" in run.log_tail()
    epochs = [m for m in run.metrics() if m["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 2 + 5 + 1))  # 2 epochs, then 5 of fine-tuning
    # best.keras was last written at the end of the best epoch over both phases (the first with the highest
    # val_balanced_accuracy), not at the start of the second phase.
    best = max(range(len(epochs)), key=lambda i: (epochs[i]["val_balanced_accuracy"], -i))
    written = run.best_model_path.stat().st_mtime
    assert epochs[best]["time"] <= written
    if best + 1 < len(epochs):
        assert written < epochs[best + 1]["time"]


def test_the_server_limits_refuse_runs_clearly(isolated_settings):
    from galaxy_core.training.manager import QueueFullError

    manager = JobManager(isolated_settings["runs"], max_concurrent=0, max_queued=2, max_epochs=10)
    with pytest.raises(QueueFullError, match="at most 10 epochs per run, not 11"):
        manager.submit(tiny_config(epochs=11))
    manager.submit(tiny_config())
    manager.submit(tiny_config())
    with pytest.raises(QueueFullError, match="2 runs are already waiting"):
        manager.submit(tiny_config())
    assert len(manager.store.runs()) == 2
