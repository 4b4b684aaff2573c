"""Training runs in this process: config checks, the run store, the procedure, stops in every phase, failures.

The training service (queue, worker processes, faults) is tested in test_service.py."""

import errno
import json
import logging
import shutil
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, DatasetTooLargeError
from galaxy_core.errors import InvalidInputError
from galaxy_core.training import RunNotFoundError, RunState, RunStore, TrainConfig
from galaxy_core.training.client import QueueFullError, ServiceClient, new_run, train_in_this_process
from galaxy_core.training.kinds.transfer import NO_AUGMENTATION, FeatureSplit
from galaxy_core.training.procedure import train_run
from galaxy_core.training.recipe import class_weights
from tests.helpers import TINY_DATA, saved_balanced_accuracy, tiny_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "alexnet"}, "unknown model 'alexnet'"),
        ({"epochs": 0}, "epochs must be 1-500"),
        ({"optimizer": "adagrad"}, "optimizer must be one of"),
        ({"learning_rate": 0}, "learning_rate must be"),
        ({"monitor": "val_f1"}, "monitor must be one of"),
        ({"dataset": {}}, "a dataset spec names its source"),
        ({"dataset": {"name": "synthetic", "num_images": 2.5}}, "num_images must be a int, got 2.5"),
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


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [  # the rate at steps 0, 15, 30 (the one cycle's peak), 65 and 100 of 100
        ("constant", [1e-2, 1e-2, 1e-2, 1e-2, 1e-2]),
        ("cosine", [1e-2, 1e-2 * (1 + np.cos(np.pi * 0.15)) / 2, 1e-2 * (1 + np.cos(np.pi * 0.3)) / 2, None, 0.0]),
        ("one_cycle", [4e-4, (4e-4 + 1e-2) / 2, 1e-2, 5e-3, 0.0]),
    ],
)
def test_learning_rate_schedules(schedule, expected):
    from galaxy_core.training.recipe import learning_rate_schedule

    rate = learning_rate_schedule(tiny_config(schedule=schedule), 1e-2, 100)
    for step, value in zip((0, 15, 30, 65, 100), expected, strict=True):
        if value is not None:
            got = float(rate(step)) if callable(rate) else rate
            assert got == pytest.approx(value, abs=1e-7), (schedule, step)


@pytest.mark.parametrize(
    ("stop_after_first_epoch", "policy"), [(False, "float32"), (True, "float32"), (True, "mixed_float16")]
)
def test_weight_averaging_is_what_validation_sees_and_what_the_model_keeps(stop_after_first_epoch, policy):
    """The callbacks after AveragedWeights (validation, checkpoints) see the averaged weights; training goes on
    from the raw ones; the model ends with the averaged weights, also when it stops early, and with a GPU's mixed
    precision (Keras wraps the optimizer in a loss-scaling one)."""
    import keras

    from galaxy_core.training.callbacks import AveragedWeights
    from galaxy_core.training.recipe import make_optimizer

    seen = {"raw": [], "averaged": []}

    def recorder(kind):
        def record(epoch, logs):
            seen[kind].append([variable.numpy().copy() for variable in model.trainable_variables])
            model.stop_training = stop_after_first_epoch

        return keras.callbacks.LambdaCallback(on_epoch_end=record)

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
        model.compile(make_optimizer(tiny_config(weight_averaging=0.9), 0.1, 30), "sparse_categorical_crossentropy")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    images, labels = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2
    model.fit(
        images,
        labels,
        batch_size=4,
        epochs=3,
        verbose=0,
        callbacks=[recorder("raw"), AveragedWeights(), recorder("averaged")],
    )
    epochs = 1 if stop_after_first_epoch else 3
    assert len(seen["raw"]) == len(seen["averaged"]) == epochs
    for raw, averaged in zip(seen["raw"], seen["averaged"], strict=True):
        assert not np.allclose(raw[0], averaged[0])  # an average of the steps, not the last step
    kept = [variable.numpy() for variable in model.trainable_variables]
    assert all(np.allclose(k, a) for k, a in zip(kept, seen["averaged"][-1], strict=True))
    with pytest.raises(ValueError, match="weight_averaging must be 0"):
        tiny_config(weight_averaging=1.0)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_the_first_training_step_is_traced_once_and_learns_the_same(monkeypatch, policy):
    """The optimizer's, loss's and metrics' variables exist before the first step (recipe.create_training_state), so
    TensorFlow traces the step once instead of twice; the weights after training are the same to the bit as
    without it (with a GPU's mixed precision too)."""
    import keras

    from galaxy_core.data.dataset import Split
    from galaxy_core.models import create_model
    from galaxy_core.training import recipe

    rng = np.random.default_rng(0)
    train = Split(
        rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8), np.arange(48) % 3, np.arange(48), np.full((48, 2), 16)
    )
    config = tiny_config(weight_averaging=0.9)

    def trained(prepare: bool):
        if not prepare:
            monkeypatch.setattr(recipe, "create_training_state", lambda model, batches: None)
        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = create_model(config.model, (16, 16, 3), 3, **config.model_options)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        traces, step = [], model.train_step
        model.train_step = lambda data: (traces.append(1), step(data))[1]  # Python runs it once per trace
        recipe.fit_phase(model, config, train, 3, [], epochs=2, learning_rate=0.01)
        monkeypatch.undo()
        return len(traces), [variable.numpy() for variable in model.weights]

    prepared_traces, prepared = trained(prepare=True)
    plain_traces, plain = trained(prepare=False)
    assert (prepared_traces, plain_traces) == (1, 2)
    assert len(prepared) == len(plain) and all(np.array_equal(a, b) for a, b in zip(prepared, plain, strict=True))


def test_whole_epochs_in_one_call_train_the_same_weights():
    """A head's epochs run as one TensorFlow call each (recipe.fit_phase's whole_epochs): the same steps on the same
    batches, so the same weights as one call per step; the callbacks see each epoch's end."""
    import keras

    from galaxy_core.training import recipe

    rng = np.random.default_rng(1)
    count = 150  # 3 batches of 64, the last one short
    train = FeatureSplit(rng.normal(size=(count, 12)).astype("float32"), np.arange(count) % 3)
    config = tiny_config(batch_size=64, augment=NO_AUGMENTATION)

    def trained(whole_epochs: bool):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((12,))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(inputs)))
        initial, ends = [variable.numpy() for variable in model.weights], []
        watcher = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(batch))
        recipe.fit_phase(model, config, train, 3, [watcher], epochs=2, learning_rate=0.05, whole_epochs=whole_epochs)
        return initial, ends, [variable.numpy() for variable in model.weights]

    (initial, stepwise_ends, stepwise), (_, whole_ends, whole) = trained(False), trained(True)
    assert stepwise_ends == [0, 1, 2, 0, 1, 2] and whole_ends == [2, 2]
    assert not np.allclose(initial[0], stepwise[0])  # it trained
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(stepwise, whole, strict=True))


def test_class_weights_balance_the_classes():
    weights = class_weights(np.array([0] * 70 + [1] * 20 + [2] * 10), 3)
    assert weights == pytest.approx({0: 100 / 210, 1: 100 / 60, 2: 100 / 30})


def test_store_reads_tolerantly(isolated_settings, caplog):
    store = RunStore(isolated_settings["runs"])
    run = new_run(store, tiny_config(), MACHINE_TEACHER)
    assert run.summary().state is RunState.QUEUED
    run.append_metrics({"kind": "epoch", "epoch": 1, "loss": 0.5})
    with (run.path / "metrics.jsonl").open("a") as file:
        file.write('{"kind": "epoch", "epo')  # a line being written when the reader looks
    assert [m["epoch"] for m in run.metrics()] == [1]
    records, offset = run.read_metrics()
    assert len(records) == 1 and run.read_metrics(offset) == ([], offset)  # the unfinished line waits
    broken = isolated_settings["runs"] / "20990101-000000-broken"
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    shutil.copy(run.path / "config.json", broken / "config.json")
    lost = isolated_settings["runs"] / "20990101-000001-lost"
    lost.mkdir()
    (lost / "status.json").write_text('{"state": "finished"}')
    (isolated_settings["runs"] / "20990101-000002-not-a-run").mkdir()
    (isolated_settings["runs"] / "notes.txt").write_text("not a run")
    with caplog.at_level(logging.WARNING):
        summaries, damaged = store.scan()
    assert [summary.id for summary in summaries] == [run.id]
    assert "damaged run folder" in caplog.text
    assert [(run.id, run.reason) for run in damaged] == [
        ("20990101-000001-lost", "config.json: No such file or directory"),
        (
            "20990101-000000-broken",
            "a file is not valid JSON (Expecting property name enclosed in double quotes at line 1)",
        ),
    ]
    for bad in ["../secret", "a/b", "", ".hidden", "x" * 200, f"{run.id}\n"]:
        with pytest.raises(RunNotFoundError):
            store.get(bad)
    with pytest.raises(ValueError, match="'exploded' is not a valid RunState"):
        run.move_to("exploded")


def test_a_damaged_status_reads_as_missing_fields_not_a_crash(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    run.move_to("running", pid=-1, pid_start="x", test_balanced_accuracy=True)
    run.report_progress(epochs_done="2", class_names=[1], eta_seconds=float("nan"))
    summary = run.summary()
    assert (summary.pid, summary.pid_start, summary.test_balanced_accuracy, summary.class_names) == (None,) * 3 + ((),)
    assert (summary.epochs_done, summary.eta_seconds) == (0, None)
    (run.path / "progress.json").write_text("[1, 2")  # damaged: read as no progress at all
    assert run.summary().message == "training"
    (run.path / "status.json").write_text('{"state": "dancing"}')
    with pytest.raises(ValueError, match="no known state"):
        run.summary()


def test_runs_queued_in_the_same_second_get_folders_of_their_own(isolated_settings, monkeypatch):
    tags = iter(["cb0b", "cb0b", "cb0b", "77aa"])  # the second run draws a tag the first took, twice
    monkeypatch.setattr("galaxy_core.training.store.secrets", SimpleNamespace(token_hex=lambda _: next(tags)))
    monkeypatch.setattr("galaxy_core.training.store.datetime", _FrozenClock)
    store = RunStore(isolated_settings["runs"])
    same = tiny_config(seed=5)
    first, second = new_run(store, same, MACHINE_TEACHER), new_run(store, same, MACHINE_TEACHER)
    assert (first.id[-4:], second.id[-4:]) == ("cb0b", "77aa")
    assert {**first.config(), "created": 0} == {**second.config(), "created": 0}


def test_a_run_being_queued_is_never_listed_half_made(isolated_settings, monkeypatch):
    """A page listing the runs while one is being queued (a class pressing Train at once) sees it whole or not at
    all, never as a damaged folder."""
    import galaxy_core.training.store as store_module

    store, seen = RunStore(isolated_settings["runs"]), []
    write = store_module.write_json_atomically

    def write_then_look(path, value):
        write(path, value)
        seen.append(store.scan())

    monkeypatch.setattr(store_module, "write_json_atomically", write_then_look)
    run = new_run(store, tiny_config(), MACHINE_TEACHER)
    monkeypatch.undo()
    assert seen and all(not damaged and all(s.id == run.id for s in found) for found, damaged in seen), seen
    assert [summary.id for summary in store.runs()] == [run.id] and run.summary().state is RunState.QUEUED
    assert sorted(path.name for path in store.root.iterdir()) == [run.id]  # nothing left beside it


class _FrozenClock:
    @staticmethod
    def now(tz):
        return datetime(2026, 12, 4, 8, 8, 6, tzinfo=tz)


def test_a_run_writes_every_artifact(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(early_stopping=True, patience=1), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    summary = run.summary()
    assert summary.state is RunState.FINISHED and summary.device == "CPU, float32"
    assert summary.message.startswith("finished after ") and summary.message.endswith(", evaluated")
    assert summary.test_balanced_accuracy == pytest.approx(saved_balanced_accuracy(run))
    assert summary.class_names == ("edge", "smooth", "spiral")
    for path in (run.best_model_path, run.final_model_path, run.evaluation_path, run.predictions_path):
        assert path.is_file(), path
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]  # atomic writes left nothing behind
    assert list(run.tensorboard_dir.rglob("events.out.tfevents.*"))
    epochs = [m for m in run.metrics() if m["kind"] == "epoch"]
    batches = [m for m in run.metrics() if m["kind"] == "batch"]
    assert [e["epoch"] for e in epochs] == list(range(1, summary.epochs_done + 1)) and batches
    assert {
        "val_loss",
        "val_accuracy",
        "val_balanced_accuracy",
        "learning_rate",
        "images_per_second",
        "eta_seconds",
    } <= set(epochs[0])
    assert summary.best_val_balanced_accuracy == max(e["val_balanced_accuracy"] for e in epochs)
    predictions = run.predictions()
    assert predictions["probabilities"].shape == (len(predictions["labels"]), 3)
    assert set(run.evaluation()) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"}
    assert "finished" in run.log_tail()


def test_same_seed_same_curve(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    curves = []
    for _ in range(2):
        run = new_run(store, tiny_config(seed=3), MACHINE_TEACHER)
        train_in_this_process(run)
        curves.append([m["loss"] for m in run.metrics() if m["kind"] == "epoch"])
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)


FIRST_BATCH = "preparing the first batch (building the training graph)"  # the stage just before training


class StopWhen:
    """The run, with a stop requested at the `asks`-th time the procedure asks after the run says `message`."""

    def __init__(self, run, message: str, asks: int = 1):
        self.run, self.message, self.asks, self.armed = run, message, asks, False

    def __getattr__(self, name):
        return getattr(self.run, name)

    def report_progress(self, **fields):
        self.armed = self.armed or fields.get("message") == self.message
        return self.run.report_progress(**fields)

    def stop_requested(self) -> bool:
        self.asks -= self.armed
        return self.armed and self.asks <= 0


def test_a_stop_before_training_keeps_nothing_and_says_when(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    for phase, when in [
        ("loading its dataset", "while loading its dataset"),
        ("building its model", "while building its model"),
    ]:
        run = new_run(store, tiny_config(), MACHINE_TEACHER)
        assert train_in_this_process(StopWhen(run, phase)) == "stopped"
        assert run.summary().message == f"stopped {when}: no model"
        assert not run.final_model_path.exists()
        assert not [m for m in run.metrics() if m["kind"] != "stage"]  # nothing learned, nothing recorded


@pytest.mark.empty_cache
def test_a_stop_while_the_dataset_loads_ends_the_load(isolated_settings):
    # 2000 synthetic galaxies take seconds to render; the load reports its progress every 40.
    config = tiny_config(dataset={**TINY_DATA, "num_images": 2000})
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    # The procedure asks before the load, then at each progress report: the third ask is the second report.
    assert train_in_this_process(StopWhen(run, "loading its dataset", asks=3)) == "stopped"
    assert run.summary().message == "stopped while loading its dataset: no model"
    assert not list(isolated_settings["cache"].rglob("*.npz"))  # the load was abandoned, not finished


def test_a_stop_mid_epoch_records_the_partial_epoch_and_keeps_the_best(isolated_settings):
    # 48 training images in batches of 4: 12 batches an epoch. Training asks after every batch and before each
    # validation batch (6 images: one): the 18th ask is after batch 5 of epoch 2.
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(epochs=5, batch_size=4), MACHINE_TEACHER)
    assert train_in_this_process(StopWhen(run, FIRST_BATCH, asks=12 + 1 + 5)) == "stopped"
    summary = run.summary()
    assert summary.message == "stopped after 1 of 5 epochs, evaluated" and summary.epochs_done == 1
    assert summary.has_test_results and run.best_model_path.is_file() and run.final_model_path.is_file()
    kinds = [(m["kind"], m["epoch"]) for m in run.metrics() if m["kind"] in ("epoch", "partial_epoch")]
    assert kinds == [("epoch", 1), ("partial_epoch", 2)]
    partial = run.metrics()[-1]
    assert (partial["batches"], partial["of_batches"]) == (5, 12)


def test_a_stop_in_the_first_epoch_keeps_no_model(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(epochs=5, batch_size=4), MACHINE_TEACHER)
    assert train_in_this_process(StopWhen(run, FIRST_BATCH, asks=2)) == "stopped"
    assert run.summary().message == "stopped during its first epoch, before any epoch finished: no model"
    assert not run.best_model_path.exists() and not run.final_model_path.exists()


def test_the_first_epoch_reports_its_batches_and_an_eta_before_it_ends(isolated_settings, monkeypatch):
    import galaxy_core.training.callbacks as callbacks

    monkeypatch.setattr(callbacks, "PROGRESS_STATUS_SECONDS", 0.0)  # every batch, for the test
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(epochs=5, batch_size=4), MACHINE_TEACHER)
    # 48 training images in batches of 4: 12 an epoch. Training asks after every batch: the 7th ask is after the 7th.
    assert train_in_this_process(StopWhen(run, FIRST_BATCH, asks=7)) == "stopped"
    progress = run.progress()
    assert (progress["batches_done"], progress["steps_per_epoch"]) == (7, 12)
    assert progress["eta_seconds"] > 0
    batches = [m for m in run.metrics() if m["kind"] == "batch"]
    assert batches and all(b["steps_per_epoch"] == 12 for b in batches)
    summary = replace(run.summary(), state=RunState.RUNNING)  # as it was, mid-epoch
    assert summary.epochs_text() == "0/5, batch 7/12"
    assert summary.progress == pytest.approx(7 / 12 / 5)


def test_a_crash_ends_as_failed_with_its_traceback(isolated_settings):
    config = tiny_config(dataset={"name": "folder", "path": str(isolated_settings["data"] / "missing")})
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "failed"
    summary = run.summary()
    assert "does not exist" in summary.error and "Traceback" in summary.traceback
    assert summary.message.startswith("failed: DatasetError:")


class FullDisk:
    """The run, on a disk that is full by the time the first checkpoint is written."""

    def __init__(self, run):
        self.run = run

    def __getattr__(self, name):
        return getattr(self.run, name)

    def save_model(self, model, which):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_fails_the_run_with_that_cause(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    assert train_in_this_process(FullDisk(run)) == "failed"
    assert run.summary().message == "failed: no space left on device"


def test_validation_can_be_held_out_of_the_training_split(isolated_settings):
    config = tiny_config(validation="from_train", validation_fraction=0.25)
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    # 60 synthetic galaxies: 48 train, 6 val, 6 test; a quarter of the 48 is held out and the val split unused.
    assert run.progress()["dataset_sizes"] == {"train": 36, "val": 12, "test": 6}


def test_a_fine_tune_phase_keeps_the_best_checkpoint_of_the_first(isolated_settings):
    config = tiny_config(
        dataset={**TINY_DATA, "image_size": 32},
        model="vgg16_fixed",
        model_options={"weights": "none"},
        monitor="val_balanced_accuracy",
    )
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    assert "fine-tuning block5_*" in run.log_tail()
    epochs = [m for m in run.metrics() if m["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 2 + 5 + 1))  # 2 epochs, then 5 of fine-tuning
    summary = run.summary()  # one count of the planned epochs, the fine-tuning phase included, for every reader
    assert (summary.epochs_done, summary.epochs_planned, summary.epochs_text()) == (7, 7, "7/7")
    assert summary.message == "finished after 7 of 7 epochs, evaluated"
    # best.keras was last written at the end of the best epoch over both phases (the first with the highest
    # val_balanced_accuracy), just before that epoch's record, not at the start of the second phase.
    best = max(range(len(epochs)), key=lambda i: (epochs[i]["val_balanced_accuracy"], -i))
    written = run.best_model_path.stat().st_mtime
    assert (epochs[best - 1]["time"] if best else 0) <= written <= epochs[best]["time"]
    if best + 1 < len(epochs):
        assert written < epochs[best + 1]["time"]


def test_the_server_limits_refuse_runs_clearly(isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # the service runs, and can start nothing
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    client = ServiceClient(isolated_settings["runs"], max_queued=2, max_epochs=10)
    with pytest.raises(QueueFullError, match=r"at most 10 epochs per run, not 11$"):
        client.submit(tiny_config(epochs=11), MACHINE_TEACHER)
    # A bound on what a run trains in all: 5 folds of 3 epochs are 15.
    with pytest.raises(QueueFullError, match=r"at most 10 epochs per run, not 15 \(3 asked for, over all its"):
        client.submit(tiny_config(epochs=3, kind="label_review", folds=5), MACHINE_TEACHER)
    kinds = "challenge_score, ensemble, label_review, seed_ensemble, train, transfer"
    with pytest.raises(InvalidInputError, match=f"unknown run kind 'dance'; the kinds are {kinds}"):
        client.submit(tiny_config(kind="dance"), MACHINE_TEACHER)
    with pytest.raises(InvalidInputError, match="folds must be a whole number from 2 to 10, got 11"):
        client.submit(tiny_config(kind="label_review", folds=11), MACHINE_TEACHER)
    with pytest.raises(DatasetTooLargeError, match="above this server's limit of 1 MB"):
        ServiceClient(client.store.root, dataset_memory_mb=1).submit(
            tiny_config(dataset={**TINY_DATA, "image_size": 64}), MACHINE_TEACHER
        )
    client.submit(tiny_config(), MACHINE_TEACHER)
    client.submit(tiny_config(), MACHINE_TEACHER)
    with pytest.raises(QueueFullError, match="2 runs are already waiting"):
        client.submit(tiny_config(), MACHINE_TEACHER)
    assert len(client.store.runs()) == 2


def test_a_remote_run_fills_the_run_folder_through_its_events(isolated_settings):
    """The Ray path without Ray: a RemoteRun trains here, and its events are applied to an empty run folder."""
    from galaxy_core.data import create_dataset
    from galaxy_core.training.ray_executor import RemoteRun, apply_events

    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    remote = RemoteRun(run.id, run.config(), {})
    dataset = create_dataset(DatasetSpec.from_dict(TINY_DATA))
    outcome = train_run(remote, dataset)
    assert (outcome.state, outcome.message) == ("finished", "finished after 2 of 2 epochs, evaluated")
    apply_events(run, remote.news(stop=False))
    made = {p.relative_to(remote.tensorboard_dir): p.read_bytes() for p in remote.tensorboard_dir.rglob("*.v2")}
    remote.close()
    assert run.progress()["epochs_done"] == 2 and run.progress()["class_names"] == ["edge", "smooth", "spiral"]
    assert outcome.fields["test_balanced_accuracy"] == run.evaluation()["balanced_accuracy"]
    for name in ("best.keras", "final.keras", "evaluation.json", "predictions.npz"):
        assert (run.path / name).stat().st_size > 0
    assert [m["epoch"] for m in run.metrics() if m["kind"] == "epoch"] == [1, 2]
    sent = {p.relative_to(run.tensorboard_dir): p.read_bytes() for p in run.tensorboard_dir.rglob("*.v2")}
    assert made and sent == made  # every TensorBoard file arrived whole
    assert not remote.folder.exists()


def test_remote_files_land_only_inside_the_run_folder(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    name = "train/events.out.tfevents.1795933658.node-1.13147.0.v2"
    run.append_tensorboard(name, 0, b"abc")
    run.append_tensorboard(name, 3, b"def")
    assert (run.tensorboard_dir / name).read_bytes() == b"abcdef"
    for bad in ["../escape", "/etc/passwd", "train/../../x", "", ".", "train/..hidden"]:
        with pytest.raises(ValueError, match="not a TensorBoard file name"):
            run.append_tensorboard(bad, 0, b"x")


def test_folds_are_stratified_seeded_and_cover_every_image():
    from galaxy_core.training.kinds.label_review import stratified_folds

    labels = np.array([0] * 10 + [1] * 6 + [2] * 3)
    folds = stratified_folds(labels, 3, seed=1)
    assert set(folds) == {0, 1, 2}
    for label in (0, 1, 2):  # each class dealt round the folds
        counts = np.bincount(folds[labels == label], minlength=3)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(folds, stratified_folds(labels, 3, seed=1))
    assert not np.array_equal(folds, stratified_folds(labels, 3, seed=2))
